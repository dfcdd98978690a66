"""A project zip built by Python opens in the real page with the project's classes (its
order, its own names) and each example's role as the project file gave it."""

import json

import pytest

from ..harness import BRAND_TRAIN, MOBILENET_H5, serve_wsgi
from .conftest import open_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLASSES = [("Windows (Microsoft)", "Windows (Microsoft)"), ("Apple: macOS/iOS", "Apple_ macOS_iOS"),
           ("android", "android")]


@pytest.fixture(scope="module")
def project_site(tmp_path_factory, feature_cache):
    import zipfile

    from tfjs_transfer import cli

    root = tmp_path_factory.mktemp("project-site")
    examples = []
    with zipfile.ZipFile(root / "project.zip", "w") as zf:
        for name, folder in CLASSES:
            stem = name.split()[0].split(":")[0].lower()
            for i in range(10):
                path = f"{folder}/{stem}-{i}.jpg"
                zf.write(BRAND_TRAIN / f"{stem}-{i}.jpg", path)
                examples.append({"path": path, "role": "valid" if i < 2 else "train"})
        zf.writestr("project.json", json.dumps({
            "format": "tfjs-transfer-project/1", "name": "logos", "created_by": "tfjs-transfer page",
            "classes": [{"name": n, "folder": f} for n, f in CLASSES], "examples": examples}))
    out = root / "site"
    assert cli.main(["build", "--data", str(root / "project.zip"), "--weights", str(MOBILENET_H5),
                     "--out", str(out), "--cache", str(feature_cache), "--recipe", "tutorial", "--quiet"]) == 0
    return out, {e["path"]: e["role"] for e in examples}


def test_the_page_opens_a_project_zip_site_with_its_classes_and_roles(page, project_site):
    from tfjs_transfer.serve import create_app

    out, role_of = project_site
    with serve_wsgi(create_app(out)) as url:
        open_app(page, url)
        got = page.evaluate("""() => {
            const p = window.tfjsTransfer.project();
            return { classes: p.classes, examples: p.examples.map((e) => ({ id: e.id, label: e.label, role: e.role })) };
        }""")
        # the page's worker may still be fetching (its warm-up, the pack): leave before the server stops
        page.goto("about:blank")
    assert got["classes"] == [n for n, _ in CLASSES]
    images = {e["path"]: e for e in json.loads((out / "images.json").read_text())["images"]}
    folder_of = dict(CLASSES)
    assert len(got["examples"]) == len(role_of) == 30
    for e in got["examples"]:
        source = images[e["id"]]
        assert e["label"] == source["label"]
        assert e["role"] == role_of[f"{folder_of[e['label']]}/{source['source']}"]

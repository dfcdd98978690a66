"""The page and Teachable Machine's layout, both ways, in Chromium: the "Teachable Machine /
ml5 (zip)" download loaded by `@teachablemachine/image` 0.8.5 on TF.js 1.3.1 (the consumer
setup of test_tm_export.py), and a `tm` export (as its three files and as its zip) loaded
into the page through the load-model input. The page feeds a loaded TM model as TM scales
(x / 127 - 1) where the site uses 127.5; on the logo site that moves probabilities by under
1e-6, so the page's TM predictions are held to PROB_ATOL of the site's."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from .conftest import open_app
from .test_page import (PREDICTION, PROB_ATOL, TEST_IMAGES, in_label_order, num_tensors, python_reference,  # noqa: F401
                        state, test_paths, upload)
from .test_tm_export import PROB_ATOL_ORIGINAL, TM_SCRIPT, consumer_site, references, tm_export  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TM_FIELDS = {"tfjsVersion", "tmVersion", "packageVersion", "packageName", "modelName", "timeStamp", "labels",
             "userMetadata", "imageSize"}
MESSAGE = "[data-testid=message]"


def download_tm_zip(page, folder: Path) -> Path:
    with page.expect_download() as info:
        page.click("[data-testid=download-tm]")
    download = info.value
    target = folder / download.suggested_filename
    download.save_as(target)
    return target


def load_model_files(page, files) -> str:
    """Picks files in the load-model input; returns the page's message once it changes."""
    page.evaluate(f"document.querySelector('{MESSAGE}').textContent = ''")
    page.set_input_files("[data-testid=load-model]", [str(f) for f in files])
    page.wait_for_function(f"document.querySelector('{MESSAGE}').textContent !== ''")
    return page.inner_text(MESSAGE)


def test_download_tm_zip_loads_in_teachable_machine(page, site_url, built_site, consumer_site, references,
                                                    tmp_path):
    open_app(page, site_url)
    before = num_tensors(page)
    path = download_tm_zip(page, tmp_path)
    assert path.name == "tfjs-transfer-tm.zip"
    assert num_tensors(page) == before
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["metadata.json", "model.json", "weights.bin"]
        model_json = json.loads(z.read("model.json"))
        meta = json.loads(z.read("metadata.json"))
        weights = z.read("weights.bin")
    manifest = json.loads((built_site / "manifest.json").read_text())
    assert set(meta) == TM_FIELDS
    assert meta["labels"] == manifest["labels"] and meta["imageSize"] == 224
    assert (meta["tfjsVersion"], meta["packageName"], meta["packageVersion"]) == ("1.3.1", "@teachablemachine/image",
                                                                                  "0.8.5")
    assert model_json["weightsManifest"][0]["paths"] == ["weights.bin"]
    specs = model_json["weightsManifest"][0]["weights"]
    assert {s["dtype"] for s in specs} == {"float32"}
    assert len(weights) == 4 * sum(int(np.prod(s["shape"])) for s in specs)
    assert '"Functional"' not in json.dumps(model_json["modelTopology"])

    # @teachablemachine/image on TF.js 1.3.1 loads the page's zip and names the logos as the site does
    root, base, _ = consumer_site
    folder = root / "tm-page"
    shutil.rmtree(folder, ignore_errors=True)
    with zipfile.ZipFile(path) as z:
        z.extractall(folder)
    names = list(TEST_IMAGES)
    consumer = page.context.new_page()
    consumer.goto(base + "tm.html")
    got = consumer.evaluate(TM_SCRIPT.replace('"tm/', '"tm-page/'), [[f"img/{n}" for n in names]])
    consumer.close()
    labels = references["labels"]
    assert got["tfjs"] == "1.3.1" and got["labels"] == labels
    probs = np.array([[dict(got["out"][f"img/{n}"])[label] for label in labels] for n in names])
    diff = np.abs(probs - references["site_original"]).max()
    print(f"\npage's tm zip in @teachablemachine/image: load {got['loadMs']:.0f} ms, "
          f"max |diff| vs site {diff:.3g}, zip {path.stat().st_size} bytes")
    assert diff < PROB_ATOL_ORIGINAL
    assert [labels[int(i)] for i in probs.argmax(1)] == list(TEST_IMAGES.values())


def _tm_zip(folder: Path, out: Path, entries=None) -> Path:
    entries = entries or {name: name for name in ("model.json", "weights.bin", "metadata.json")}
    with zipfile.ZipFile(out, "w") as z:
        for arcname, name in entries.items():
            z.write(folder / name, arcname)
    return out


@pytest.mark.parametrize("as_zip", [False, True], ids=["files", "zip"])
def test_load_tm_export_and_predict(as_zip, page, site_url, tm_export, test_paths, python_reference, tmp_path):
    folder = tm_export[0]
    files = ([_tm_zip(folder, tmp_path / "my-model.zip")] if as_zip
             else [folder / n for n in ("model.json", "weights.bin", "metadata.json")])
    open_app(page, site_url)
    message = load_model_files(page, files)
    assert "Teachable Machine model" in message, message
    assert state(page) == "ready"
    loaded = num_tensors(page)
    labels = python_reference["labels"]
    rows = []
    for path, expected in zip(test_paths, TEST_IMAGES.values()):
        result = upload(page, path)
        assert result[0]["label"] == expected
        assert page.get_attribute(PREDICTION, "data-head") == "browser"
        assert "x / 127 - 1" in page.inner_text(PREDICTION)
        rows.append(in_label_order(result, labels))
    assert num_tensors(page) == loaded
    diff = np.abs(np.array(rows) - python_reference["probabilities"]).max()
    print(f"\npage with the tm export ({'zip' if as_zip else 'files'}): max |diff| vs Python {diff:.3g}")
    assert diff <= PROB_ATOL


def test_broken_tm_exports_say_what_is_wrong(page, site_url, tm_export, tmp_path):
    folder = tm_export[0]
    bad_labels = tmp_path / "labels" / "metadata.json"
    bad_labels.parent.mkdir()
    meta = json.loads((folder / "metadata.json").read_text())
    bad_labels.write_text(json.dumps({**meta, "labels": meta["labels"][:-1]}))
    cases = {
        "no-model.zip": ({"weights.bin": "weights.bin", "metadata.json": "metadata.json"}, "has no model.json"),
        "no-weights.zip": ({"model.json": "model.json", "metadata.json": "metadata.json"}, "has no weights.bin"),
        "escape.zip": ({"model.json": "model.json", "weights.bin": "weights.bin", "metadata.json": "metadata.json",
                        "../evil.txt": "labels.txt"}, "../evil.txt points outside the zip"),
    }
    open_app(page, site_url)
    before = num_tensors(page)
    for name, (entries, expected) in cases.items():
        message = load_model_files(page, [_tm_zip(folder, tmp_path / name, entries)])
        assert expected in message and name in message, (name, message)
        assert state(page) == "ready"
    shutil.copy(folder / "model.json", bad_labels.parent)
    shutil.copy(folder / "weights.bin", bad_labels.parent)
    mismatched = _tm_zip(bad_labels.parent, tmp_path / "mismatched.zip")
    message = load_model_files(page, [mismatched])
    assert f"outputs {len(meta['labels'])} classes but metadata.json has {len(meta['labels']) - 1} labels" in message
    not_zip = tmp_path / "not-a.zip"
    not_zip.write_bytes(b"not a zip")
    assert "not-a.zip is not a readable zip" in load_model_files(page, [not_zip])
    assert state(page) == "ready"
    assert num_tensors(page) == before
    assert page.get_attribute(PREDICTION, "data-head") == "python"

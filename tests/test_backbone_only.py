"""`build --backbone-only`: a site with the backbone and no data or head, which the page opens
into an empty project; the Python tools that need a head say so in one line."""

import json

import pytest

from tfjs_transfer import cli

from .conftest import BRAND_TEST, BRAND_TRAIN, MOBILENET_H5


@pytest.mark.parametrize("argv, message", [
    (["--backbone-only", "--data", str(BRAND_TRAIN)], "--backbone-only builds a site without data or head"),
    ([], "--data is required"),
    (["--backbone-only", "--folds", "3"], "--folds needs --data"),
])
def test_data_and_backbone_only_go_one_without_the_other(tmp_path, capsys, argv, message):
    assert cli.main(["build", "--weights", "none", "--out", str(tmp_path / "site"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "site").exists()


def test_a_manifest_without_a_head_is_refused_where_one_is_needed(tmp_path):
    from tfjs_transfer import manifest
    from tfjs_transfer.errors import UserError

    manifest.require_head(tmp_path, {"head": {"path": "models/head/model.json"}})
    for m in ({"head": {"path": None, "layers": []}}, {"head": None}, {}):
        with pytest.raises(UserError, match=f"^{tmp_path} has no head: it was built with --backbone-only"):
            manifest.require_head(tmp_path, m)


@pytest.fixture(scope="module")
def backbone_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbone-only")
    web = root / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>stand-in</title>")
    (web / "app.js").write_text("")
    out = root / "site"
    assert cli.main(["build", "--backbone-only", "--weights", str(MOBILENET_H5), "--out", str(out),
                     "--web-dist", str(web), "--recipe", "tutorial", "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_the_manifest_is_the_one_the_page_reads_for_an_empty_project(backbone_site):
    m = json.loads((backbone_site / "manifest.json").read_text())
    assert m["labels"] == [] and m["dataset"] is None and m["images"] is None
    assert m["head"]["path"] is None and m["head"]["recipe"] == "tutorial"
    assert m["head"]["layers"][-1] == {"type": "dense", "units": None, "activation": "softmax"}
    assert m["head"]["layers"][:-1] == [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "relu"}]
    assert m["training"]["recipe"] == "tutorial" and m["training"]["metrics"] is None and m["training"]["history"] is None
    assert m["training"]["hyperparameters"]["epochs"] > 0 and m["training"]["hyperparameters"]["learning_rate"] > 0
    assert m["backbone"]["path"] == "models/backbone/model.json" and m["backbone"]["output_shape"] == [7, 7, 256]
    model_json = json.loads((backbone_site / m["backbone"]["path"]).read_text())
    assert model_json["format"] == "layers-model" and m["backbone"]["roundtrip_max_abs_error"] < 1e-4
    assert not (backbone_site / "images").exists() and not (backbone_site / "images.json").exists()
    assert not (backbone_site / "models" / "head").exists()
    assert sorted(p.name for p in backbone_site.iterdir()) == ["app.js", "index.html", "manifest.json", "models"]


@pytest.mark.slow
def test_an_unchanged_rebuild_is_a_no_op(backbone_site, capsys):
    before = json.loads((backbone_site / "manifest.json").read_text())["built_at"]
    assert cli.main(["build", "--backbone-only", "--weights", str(MOBILENET_H5), "--out", str(backbone_site),
                     "--web-dist", str(backbone_site.parent / "web"), "--recipe", "tutorial"]) == 0
    assert "is up to date" in capsys.readouterr().out
    assert json.loads((backbone_site / "manifest.json").read_text())["built_at"] == before


@pytest.mark.slow
@pytest.mark.parametrize("command", [["predict", "{site}", str(BRAND_TEST / "android.jpg")],
                                     ["evaluate", "{site}", str(BRAND_TRAIN)],
                                     ["export", "{site}", "--format", "keras", "--out", "{tmp}/export"]])
def test_tools_that_need_a_head_refuse_in_one_line(backbone_site, tmp_path, capsys, command):
    argv = [a.format(site=backbone_site, tmp=tmp_path) for a in command]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {backbone_site} has no head: it was built with --backbone-only; "
                   "train in the page or build with --data"]


@pytest.mark.slow
def test_serve_answers_for_a_backbone_only_site(backbone_site):
    from tfjs_transfer.serve import create_app

    client = create_app(backbone_site).test_client()
    assert client.get("/").status_code == 200
    manifest = client.get("/manifest.json")
    assert manifest.status_code == 200 and manifest.get_json()["labels"] == []
    assert client.get("/models/backbone/model.json").status_code == 200
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["labels"] == 0

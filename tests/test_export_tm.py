"""The `tm` export's refusals (fast, on manifest stubs) and its files (slow, from the real
built site). That Teachable Machine and ml5 load it is tests/browser/test_tm_export.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfjs_transfer.errors import UserError
from tfjs_transfer.export_tm import export_tm
from tfjs_transfer.manifest import FORMAT
from tfjs_transfer.preprocess import CAFFE, INCEPTION, MOBILENET

from .conftest import BRAND_TEST


def _stub_site(tmp_path, name: str, preprocessing):
    """A manifest alone: enough for every check made before the models are read."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "manifest.json").write_text(json.dumps({
        "format": FORMAT, "fingerprint": "f", "labels": ["a", "b"],
        "preprocessing": preprocessing.to_manifest(),
        "backbone": {"name": name, "path": "models/backbone/model.json", "keras_path": "../site.python/backbone.h5"},
        "head": {"path": "models/head/model.json", "keras_path": "../site.python/head.h5", "recipe": "default"}}))
    return site


def test_an_unbuilt_site_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"not a built site \(no manifest.json\)"):
        export_tm(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, preprocessing, why", [
    ("inception_v3", INCEPTION, r"it takes 299x299 images, and Teachable Machine and ml5 always feed 224x224"),
    ("vgg16", CAFFE, r"it expects BGR pixels scaled as .*always feed RGB scaled to \[-1, 1\]"),
])
def test_a_backbone_the_libraries_cannot_feed_is_refused(tmp_path, name, preprocessing, why):
    site = _stub_site(tmp_path, name, preprocessing)
    with pytest.raises(UserError, match=f"manifest.json: cannot export {name} as a Teachable Machine model: {why}"):
        export_tm(site, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_out_folder_that_is_not_empty_is_refused_and_left_alone(tmp_path):
    site = _stub_site(tmp_path, "mobilenet_v1_0.25", MOBILENET)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="out: exists and is not an empty folder"):
        export_tm(site, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_failed_export_leaves_nothing(tmp_path):
    # The stub's Keras models are missing: the export stops before writing anything.
    site = _stub_site(tmp_path, "mobilenet_v1_0.25", MOBILENET)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UserError):
        export_tm(site, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.slow
def test_the_export_is_one_float32_model_in_teachable_machines_layout(built_site, tmp_path):
    from tfjs_transfer.convert import load_tfjs
    from tfjs_transfer.predict import Predictor

    out = tmp_path / "empty"
    out.mkdir()  # an empty folder is fine
    report = export_tm(built_site, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(report["files"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folder left behind"

    model_json = json.loads((out / "model.json").read_text())
    text = json.dumps(model_json["modelTopology"])
    assert '"Functional"' not in text and '"class_name": "Model"' in text
    (group,) = model_json["weightsManifest"]
    assert group["paths"] == ["weights.bin"]
    assert {w["dtype"] for w in group["weights"]} == {"float32"}
    assert "quantization" not in json.dumps(group)

    metadata = json.loads((out / "metadata.json").read_text())
    assert set(metadata) == {"tfjsVersion", "tmVersion", "packageVersion", "packageName", "modelName",
                             "timeStamp", "labels", "userMetadata", "imageSize"}
    predictor = Predictor(built_site)
    assert metadata["labels"] == predictor.labels and metadata["imageSize"] == 224
    assert (out / "labels.txt").read_text().splitlines() == predictor.labels
    assert "x / 127 - 1" in (out / "README.md").read_text()

    images = sorted(BRAND_TEST.iterdir())
    exported = load_tfjs(out / "model.json").predict(predictor.pixels(images), verbose=0)
    assert np.abs(exported - predictor.probabilities(images)).max() < 1e-5


@pytest.mark.slow
def test_the_export_command_writes_the_tm_format(built_site, tmp_path, capsys):
    from tfjs_transfer import cli

    out = tmp_path / "tm"
    assert cli.main(["export", str(built_site), "--format", "tm", "--out", str(out)]) == 0
    assert {"model.json", "weights.bin", "metadata.json", "labels.txt", "README.md"} <= {p.name for p in out.iterdir()}
    assert "wrote" in capsys.readouterr().out
    # TF.js 1.3.1 reads float32 only: a quantized tm export is refused before anything is written
    assert cli.main(["export", str(built_site), "--format", "tm", "--quantize", "int8",
                     "--out", str(tmp_path / "q")]) == 2
    assert not (tmp_path / "q").exists()

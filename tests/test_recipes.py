"""Fine-tuning, cross-validation, init-from and the with/without-transfer comparison,
on small generated data (the full-size figures come from `make bench` and the issue notes)."""

import json

import numpy as np
import pytest

from tfjs_transfer import backbones, cli, finetune
from tfjs_transfer.errors import UserError

from .conftest import MOBILENET_H5
from .helpers import make_folders

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web_dist(tmp_path_factory):
    d = tmp_path_factory.mktemp("web")
    (d / "index.html").write_text("<!doctype html><title>stand-in</title>")
    return d


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_folders(tmp_path_factory.mktemp("data") / "d", labels=("red", "green", "blue"), per_class=6)


def build(data, out, web_dist, cache, *extra):
    return cli.main(["build", "--data", str(data), "--weights", str(MOBILENET_H5), "--out", str(out),
                     "--cache", str(cache), "--web-dist", str(web_dist), "--quiet", *extra])


def test_first_trainable_accepts_names_indexes_and_last_n():
    bb = backbones.load_backbone(None, str(MOBILENET_H5))
    n = len(bb.model.layers)
    assert finetune.first_trainable(bb.model, "conv_dw_13") == [l.name for l in bb.model.layers].index("conv_dw_13")
    assert finetune.first_trainable(bb.model, -12) == n - 12
    assert finetune.first_trainable(bb.model, "5") == 5
    with pytest.raises(UserError, match="no layer named"):
        finetune.first_trainable(bb.model, "conv_dw_99")
    with pytest.raises(UserError, match="has %d layers" % n):
        finetune.first_trainable(bb.model, n + 3)


def test_finetune_trains_the_last_layers_and_keeps_batch_norm(data, web_dist, feature_cache, tmp_path):
    import tf_keras as keras

    out = tmp_path / "site"
    # --no-fold: the served backbone as trained, so its layers compare one to one with the original
    assert build(data, out, web_dist, feature_cache, "--recipe", "finetune", "--fine-tune-epochs", "2",
                 "--fine-tune-from", "conv_dw_13", "--epochs", "5", "--no-fold") == 0
    m = json.loads((out / "manifest.json").read_text())
    ft = m["training"]["fine_tune_history"]
    assert ft["first_trainable_layer"] == "conv_dw_13" and len(ft["loss"]) >= 1
    tuned = keras.models.load_model(out / m["backbone"]["keras_path"], compile=False)
    original = backbones.load_backbone(None, str(MOBILENET_H5)).model
    same = lambda name: all(np.array_equal(a, b) for a, b in zip(tuned.get_layer(name).get_weights(),
                                                                  original.get_layer(name).get_weights()))
    assert same("conv_pw_12") and same("conv_pw_13_bn") and not same("conv_pw_13")
    assert m["training"]["metrics"]["train_accuracy"] > 0.9
    assert m["training"]["augmentation"]["rotation_degrees"] == 15  # the recipe's stronger augmentation


def test_folds_report_cross_validated_accuracy(data, web_dist, feature_cache, tmp_path):
    assert build(data, tmp_path / "s", web_dist, feature_cache, "--folds", "3", "--epochs", "5") == 0
    cv = json.loads((tmp_path / "s" / "manifest.json").read_text())["training"]["cross_validation"]
    assert cv["folds"] == 3 and len(cv["per_fold"]) == 3 and 0.5 < cv["accuracy_mean"] <= 1
    assert build(data, tmp_path / "t", web_dist, feature_cache, "--folds", "9") == 2  # 6 images a class


def test_init_from_is_reported_in_the_manifest(data, web_dist, feature_cache, tmp_path):
    out = tmp_path / "s"
    assert cli.main(["build", "--data", str(data), "--weights", "none", "--init-from", str(MOBILENET_H5),
                     "--out", str(out), "--cache", str(feature_cache), "--web-dist", str(web_dist), "--quiet",
                     "--epochs", "3"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert "conv_pw_13" in m["backbone"]["init_from"]["matched"]
    assert "+init-sha256-" in m["backbone"]["weights_id"]


def test_compare_runs_both_and_writes_curves(data, web_dist, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli.main(["compare", str(data), "--weights", str(MOBILENET_H5), "--folds", "2", "--out", str(out),
                     "--web-dist", str(web_dist), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    runs = result["runs"]
    assert set(runs) == {"transfer", "random init"} and runs["random init"]["weights"] == "none"
    assert runs["transfer"]["backbone"] == runs["random init"]["backbone"] == "mobilenet_v1_0.25"
    assert (out / "curves-transfer.png").is_file() and (out / "curves-random-init.png").is_file()

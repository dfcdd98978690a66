"""The whole build on small generated data: the site it writes, and every refusal."""

import json
import shutil
import subprocess
import sys
import time

import pytest

from tfjs_transfer import cli
from tfjs_transfer.build import BuildConfig, build

from .conftest import MOBILENET_H5, ROOT
from .helpers import make_flat, make_folders, make_splits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web_dist(tmp_path_factory):
    """A stand-in page bundle: these tests are about the Python side of the site."""
    d = tmp_path_factory.mktemp("web")
    (d / "index.html").write_text("<!doctype html><title>stand-in</title>")
    (d / "app.js").write_text("")
    return d


def run_build(data, out, feature_cache, web_dist, *extra):
    return cli.main(["build", "--data", str(data), "--weights", str(MOBILENET_H5), "--out", str(out),
                     "--cache", str(feature_cache), "--web-dist", str(web_dist), "--quiet", *extra])


def test_build_writes_a_complete_site(tmp_path, feature_cache, web_dist):
    data = make_folders(tmp_path / "data", per_class=6)
    out = tmp_path / "site"
    assert run_build(data, out, feature_cache, web_dist) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["labels"] == ["blue", "green", "red"]
    assert m["backbone"]["cut_layer"] == "conv_pw_13_relu" and m["backbone"]["output_shape"] == [7, 7, 256]
    assert m["preprocessing"]["scale"] == pytest.approx(1 / 127.5) and m["preprocessing"]["offset"] == -1
    for part in ("backbone", "head"):
        model_json = json.loads((out / m[part]["path"]).read_text())
        assert model_json["format"] == "layers-model" and "TensorFlow.js Converter" in model_json["convertedBy"]
    # the Python-side models beside the site, not in it, saved without optimizer state
    assert m["backbone"]["keras_path"] == "../site.python/backbone.h5" and m["head"]["keras_path"] == "../site.python/head.h5"
    python = tmp_path / "site.python"
    assert sorted(p.name for p in python.iterdir()) == ["backbone.h5", "head.h5", "models.json"]
    assert json.loads((python / "models.json").read_text())["fingerprint"] == m["fingerprint"]
    import h5py

    for name in ("backbone.h5", "head.h5"):
        with h5py.File(python / name) as f:
            assert "model_weights" in f and "optimizer_weights" not in f, name
    assert not list(out.rglob("*.h5")) and not (out / "keras").exists()
    assert m["head"]["roundtrip_max_abs_error"] < 1e-5
    assert m["training"]["metrics"]["train_accuracy"] > 0.9
    assert "val_accuracy" in m["training"]["metrics"]  # 6 per class allow a hold-out
    images = json.loads((out / "images.json").read_text())
    assert len(images["images"]) == 18 and all((out / e["path"]).is_file() for e in images["images"])
    assert (out / "index.html").is_file() and m["versions"]["tensorflowjs"] == "4.22.0"
    assert not list(tmp_path.glob(".site.*")), "staging folders or the lock left behind"
    # features come from the backbone as served (folded), cached under their own key
    assert m["backbone"]["folded"]["batch_norms_folded"] == 27
    keys = [json.loads(k.read_text()) for k in feature_cache.glob("*/key.json")]
    assert any(k.get("model") == "folded" for k in keys)


def test_images_json_roles_are_the_split_the_build_used(tmp_path, feature_cache, web_dist):
    """The page holds out exactly the images Python validated on: images.json's `role`."""
    data = make_folders(tmp_path / "data", per_class=10)
    out = tmp_path / "site"
    assert run_build(data, out, feature_cache, web_dist) == 0
    m = json.loads((out / "manifest.json").read_text())
    images = json.loads((out / "images.json").read_text())["images"]
    valid = [e for e in images if e["role"] == "valid"]
    assert len(valid) == m["training"]["metrics"]["val_count"] == 6
    assert {label: sum(e["label"] == label for e in valid) for label in m["labels"]} == {"blue": 2, "green": 2, "red": 2}
    assert len(images) - len(valid) == m["training"]["metrics"]["train_count"]
    assert all(e["split"] == "train" for e in images)  # the dataset folder is kept beside the role
    # the same seed splits the same way: a rebuild with another seed picks other images
    assert run_build(data, tmp_path / "other", feature_cache, web_dist, "--seed", "1") == 0
    other = json.loads((tmp_path / "other" / "images.json").read_text())["images"]
    assert [e["source"] for e in other if e["role"] == "valid"] != [e["source"] for e in valid]


def test_flat_and_split_layouts_and_test_metrics(tmp_path, feature_cache, web_dist):
    assert run_build(make_flat(tmp_path / "flat"), tmp_path / "s1", feature_cache, web_dist) == 0
    assert run_build(make_splits(tmp_path / "splits"), tmp_path / "s2", feature_cache, web_dist, "--recipe", "tutorial") == 0
    m = json.loads((tmp_path / "s2" / "manifest.json").read_text())
    assert m["dataset"]["per_split"] == {"train": 12, "valid": 4, "test": 4}
    roles = {(e["split"], e["role"]) for e in json.loads((tmp_path / "s2" / "images.json").read_text())["images"]}
    assert roles == {("train", "train"), ("valid", "valid"), ("test", "test")}
    assert {"val_accuracy", "test_accuracy"} <= set(m["training"]["metrics"])
    assert m["head"]["layers"][1] == {"type": "dense", "units": 10, "activation": "relu"}


def test_quantized_build_is_smaller(tmp_path, feature_cache, web_dist):
    data = make_folders(tmp_path / "data", labels=("red", "green"), per_class=3)
    assert run_build(data, tmp_path / "f32", feature_cache, web_dist) == 0
    assert run_build(data, tmp_path / "u8", feature_cache, web_dist, "--quantize", "uint8") == 0
    f32 = json.loads((tmp_path / "f32" / "manifest.json").read_text())["backbone"]["weights_bytes"]
    u8 = json.loads((tmp_path / "u8" / "manifest.json").read_text())["backbone"]
    # kernels in uint8, biases and batch-norm vectors (5% of the weights) in float16: 3.8x against the
    # same graph in float32 (4 bytes a parameter), 3.7x against the folded float32 site
    assert u8["quantization"] == "uint8" and 3.75 < 4 * u8["parameters"] / u8["weights_bytes"] < 4.0
    assert 3.6 < f32 / u8["weights_bytes"] < 3.8
    dtypes = {w["name"]: w["quantization"]["dtype"] for group in json.loads(
        (tmp_path / "u8" / "models" / "backbone" / "model.json").read_text())["weightsManifest"] for w in group["weights"]}
    assert dtypes["conv_pw_13/kernel"] == "uint8" and dtypes["conv_dw_13/depthwise_kernel"] == "uint8"
    assert dtypes["conv_pw_13_bn/moving_variance"] == "float16"
    # uint8 keeps batch-norm separate (one range per tensor cannot hold folded per-channel
    # scales); the convs' channel ranges are equalized into it instead (quantize.py)
    assert u8["folded"] is None and u8["equalized"]["equalized_conv_batch_norm_pairs"] == 27
    assert u8["equalized"]["max_abs_diff"] < 5e-3
    assert json.loads((tmp_path / "f32" / "manifest.json").read_text())["backbone"]["folded"]["batch_norms_folded"] == 27


def _previous_site(tmp_path, feature_cache, web_dist):
    out = tmp_path / "site"
    assert run_build(make_folders(tmp_path / "good", labels=("red", "green"), per_class=3), out,
                     feature_cache, web_dist) == 0
    return out, _pair_state(out)


def _pair_state(out):
    """The site's manifest and every file of its Python-side folder, to compare before and after."""
    python = out.parent / f"{out.name}.python"
    return (out / "manifest.json").read_text(), {p.name: p.read_bytes() for p in sorted(python.iterdir())}


@pytest.mark.parametrize("case,message", [
    ("one_class", "at least 2 classes"),
    ("one_image", "'green' has 1"),
    ("empty", "no images found"),
    ("all_broken", "'green' has 0"),
    ("bad_cut", "no layer named 'nope'"),
    ("bad_weights", "not a Keras model"),
    ("strict", "--strict"),
])
def test_refusals_are_one_clear_line_and_keep_the_previous_site(tmp_path, feature_cache, web_dist, capsys, case, message):
    out, before = _previous_site(tmp_path, feature_cache, web_dist)
    data, extra = tmp_path / "data", []
    if case == "one_class":
        make_folders(data, labels=("red",))
    elif case in ("one_image", "all_broken", "strict", "bad_cut", "bad_weights"):
        make_folders(data, labels=("red", "green"), per_class=3)
        if case == "one_image":
            for p in sorted((data / "green").iterdir())[1:]:
                p.unlink()
        if case in ("all_broken", "strict"):
            for p in (data / "green").iterdir():
                p.write_bytes(b"broken")
        if case == "strict":
            extra = ["--strict"]
        if case == "bad_cut":
            extra = ["--cut", "nope"]
    else:
        data.mkdir()
    capsys.readouterr()
    if case == "bad_weights":
        bad = tmp_path / "w.h5"
        bad.write_bytes(b"nope")
        code = cli.main(["build", "--data", str(data), "--weights", str(bad), "--out", str(out),
                         "--web-dist", str(web_dist), "--quiet"])
    else:
        code = run_build(data, out, feature_cache, web_dist, *extra)
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: " in err and message in err and "Traceback" not in err
    assert _pair_state(out) == before
    assert not list(tmp_path.glob(".site.*"))


def test_output_path_that_is_a_file_is_refused(tmp_path, feature_cache, web_dist, capsys):
    out = tmp_path / "site"
    out.write_text("precious")
    assert run_build(make_flat(tmp_path / "d"), out, feature_cache, web_dist) == 2
    assert "not a folder" in capsys.readouterr().err and out.read_text() == "precious"


def test_a_folder_that_is_not_a_site_is_never_replaced(tmp_path, feature_cache, web_dist, capsys):
    out = tmp_path / "docs"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    assert run_build(make_flat(tmp_path / "d"), out, feature_cache, web_dist) == 2
    assert "refusing to replace" in capsys.readouterr().err and (out / "thesis.tex").exists()


def test_a_failure_mid_build_leaves_the_previous_site(tmp_path, feature_cache, web_dist, monkeypatch):
    out, before = _previous_site(tmp_path, feature_cache, web_dist)
    from tfjs_transfer import convert

    def boom(*a, **k):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(convert, "to_tfjs", boom)
    with pytest.raises(RuntimeError):
        build(BuildConfig(data=make_flat(tmp_path / "d"), weights=str(MOBILENET_H5), out=out,
                          cache_dir=feature_cache, web_dist=web_dist, verbose=0))
    assert _pair_state(out) == before
    assert not list(tmp_path.glob(".site.*"))


def test_the_console_script_prints_no_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "tfjs_transfer.cli", "build", "--data", str(tmp_path / "empty"),
                        "--weights", str(MOBILENET_H5), "--out", str(tmp_path / "site")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_an_unchanged_rebuild_is_a_no_op_and_a_change_rebuilds(tmp_path, feature_cache, web_dist, capsys):
    data = make_folders(tmp_path / "data", labels=("red", "green"), per_class=3)
    out = tmp_path / "site"
    assert run_build(data, out, feature_cache, web_dist) == 0
    first = (out / "manifest.json").read_text()
    capsys.readouterr()
    assert cli.main(["build", "--data", str(data), "--weights", str(MOBILENET_H5), "--out", str(out),
                     "--cache", str(feature_cache), "--web-dist", str(web_dist)]) == 0
    assert "up to date" in capsys.readouterr().out and (out / "manifest.json").read_text() == first
    shutil.rmtree(tmp_path / "site.python")  # the site alone is not up to date: Python's half is gone
    assert run_build(data, out, feature_cache, web_dist) == 0
    assert (tmp_path / "site.python" / "head.h5").is_file()
    from .helpers import shape_image

    shape_image("red", 50).save(data / "red" / "extra.png")
    assert run_build(data, out, feature_cache, web_dist) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["dataset"]["count"] == 7 and m["fingerprint"] != json.loads(first)["fingerprint"]
    assert run_build(data, out, feature_cache, web_dist, "--epochs", "3") == 0  # a setting changed
    assert json.loads((out / "manifest.json").read_text())["training"]["epochs_run"] == 3


def test_two_builds_into_one_out_take_turns(tmp_path, feature_cache, web_dist):
    """Two real processes: the second starts while the first holds the lock, says whom it
    waits for, then builds; the result is the second's site and Python folder, whole."""
    out = tmp_path / "site"
    first_data = make_folders(tmp_path / "a", labels=("red", "green"), per_class=3)
    second_data = make_folders(tmp_path / "b", labels=("red", "green", "blue"), per_class=3)

    def start(data, log):
        args = ["build", "--data", str(data), "--weights", str(MOBILENET_H5), "--out", str(out), "--cache",
                str(feature_cache), "--web-dist", str(web_dist), "--quiet", "--recipe", "pooled", "--epochs", "2"]
        return subprocess.Popen([sys.executable, "-m", "tfjs_transfer.cli", *args], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=open(log, "w"))

    first = start(first_data, tmp_path / "first.log")
    lock = tmp_path / ".site.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
        assert first.poll() is None and time.monotonic() < deadline, "the first build never took the lock"
        time.sleep(0.02)
    second = start(second_data, tmp_path / "second.log")
    assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()
    assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()
    assert f"waiting for the build of {out} running as pid {first.pid}" in (tmp_path / "second.log").read_text()
    m = json.loads((out / "manifest.json").read_text())
    assert m["labels"] == ["blue", "green", "red"] and m["dataset"]["source"] == str(second_data)
    assert json.loads((tmp_path / "site.python" / "models.json").read_text())["fingerprint"] == m["fingerprint"]
    assert not list(tmp_path.glob(".site.*"))


def test_a_streamed_build_trains_from_the_cache_and_serves_a_sample(tmp_path, feature_cache, web_dist, capsys):
    """--stream-features on: the head trains from the cache (the features never in memory, here
    stored as float16), to the in-memory build's metrics; --site-images-per-class caps the served images, and
    images.json says how many each class has in all."""
    data = make_folders(tmp_path / "data", per_class=8)
    common = ("--recipe", "pooled", "--epochs", "12", "--folds", "2")
    assert run_build(data, tmp_path / "mem", feature_cache, web_dist, *common, "--stream-features", "off") == 0
    capsys.readouterr()
    assert cli.main(["build", "--data", str(data), "--weights", str(MOBILENET_H5), "--out", str(tmp_path / "st"),
                     "--cache", str(feature_cache), "--web-dist", str(web_dist), *common,
                     "--stream-features", "on", "--site-images-per-class", "3", "--feature-dtype", "float16"]) == 0
    assert "head training features: on" in capsys.readouterr().out
    mem, st = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("mem", "st"))
    for key in ("train_accuracy", "val_accuracy"):
        assert st["training"]["metrics"][key] == pytest.approx(mem["training"]["metrics"][key], abs=0.2)
    assert st["training"]["metrics"]["train_accuracy"] > 0.9
    assert len(st["training"]["cross_validation"]["per_fold"]) == 2
    assert st["head"]["roundtrip_max_abs_error"] < 1e-5
    images = json.loads((tmp_path / "st" / "images.json").read_text())
    assert images["counts"] == {"blue": 8, "green": 8, "red": 8} and images["per_class_cap"] == 3
    assert sorted(e["label"] for e in images["images"]) == ["blue"] * 3 + ["green"] * 3 + ["red"] * 3
    assert st["images"]["count"] == 9 and st["dataset"]["count"] == 24
    assert len(list((tmp_path / "st" / "images").rglob("*.png"))) == 9
    served = {e["source"] for e in images["images"]}
    roles = {e["source"]: e["role"] for e in json.loads((tmp_path / "mem" / "images.json").read_text())["images"]}
    assert all(e["role"] == roles[e["source"]] for e in images["images"]) and len(served) == 9


def test_streaming_needs_the_cache(tmp_path, feature_cache, web_dist, capsys):
    data = make_folders(tmp_path / "data", labels=("red", "green"), per_class=3)
    code = cli.main(["build", "--data", str(data), "--weights", str(MOBILENET_H5), "--out", str(tmp_path / "s"),
                     "--web-dist", str(web_dist), "--quiet", "--stream-features", "on", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2 and "--stream-features on reads the features from the cache" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_a_streamed_fine_tune_reads_pixels_from_the_files(tmp_path, feature_cache, web_dist, monkeypatch):
    """--recipe finetune with --stream-features on: the head from the cache, then the backbone
    on pixels decoded from the files per batch (finetune.PixelFiles), never all in memory."""
    from tfjs_transfer import features

    monkeypatch.setattr(features, "load_pixels", lambda *a: pytest.fail("all pixels loaded into memory"))
    data = make_folders(tmp_path / "data", per_class=6)
    assert run_build(data, tmp_path / "s", feature_cache, web_dist, "--recipe", "finetune", "--epochs", "8",
                     "--fine-tune-epochs", "2", "--augment-copies", "1", "--stream-features", "on") == 0
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())["training"]
    assert "head_only_train_accuracy" in m["metrics"] and m["metrics"]["train_accuracy"] > 0.9, m["metrics"]
    assert len(m["fine_tune_history"]["loss"]) == 2, m.get("fine_tune_history")

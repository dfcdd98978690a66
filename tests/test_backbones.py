"""The backbone registry, weights by layer name, `imagenet` weights through Keras's cache,
and ImageNet predictions. Nothing is downloaded: architectures are built with weights=none
or read from the shared file, and a Keras cache pre-seeded with that file stands in for the
download, with the network shut behind a refusing proxy."""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from tfjs_transfer import backbones, cli, convert
from tfjs_transfer.dataset import load_rgb
from tfjs_transfer.errors import UserError
from tfjs_transfer.inference import predict_batches
from tfjs_transfer.predict import imagenet_labels
from tfjs_transfer.preprocess import prepare

from .conftest import BRAND_TEST, MOBILENET_H5, ROOT
from .harness import EXAMPLE_TRAIN, KERAS_MOBILENET_NAME


@pytest.mark.parametrize("name,cut,shape,prep", [
    ("mobilenet_v1_0.5", None, (7, 7, 512), (224, "RGB", 1 / 127.5)),
    ("mobilenet_v2", None, (7, 7, 1280), (224, "RGB", 1 / 127.5)),
    ("vgg16", None, (7, 7, 512), (224, "BGR", 1.0)),
    ("inception_v3", None, (2048,), (299, "RGB", 1 / 127.5)),
    ("inception_v3", "mixed7", (17, 17, 768), (299, "RGB", 1 / 127.5)),
])
def test_each_backbone_has_its_own_input_cut_and_preprocessing(name, cut, shape, prep):
    bb = backbones.load_backbone(name, "none", cut)
    assert bb.feature_shape == shape
    p = bb.preprocessing
    assert (p.height, p.channel_order, p.scale) == (prep[0], prep[1], pytest.approx(prep[2]))
    if name == "vgg16":
        assert p.mean == (103.939, 116.779, 123.68)


@pytest.mark.slow
def test_mobilenet_v2_converts_and_quantizes(tmp_path):
    bb = backbones.load_backbone("mobilenet_v2", "none")
    f32 = convert.to_tfjs(bb.model, tmp_path / "f32")
    u8 = convert.to_tfjs(bb.model, tmp_path / "u8", "uint8")
    # uint8 kernels, float16 biases and batch-norm vectors (quantize.py): 3.9x here
    assert 3.7 < f32["weights_bytes"] / u8["weights_bytes"] < 4.0
    x = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    assert convert.roundtrip_error(bb.model, tmp_path / "f32" / "model.json", x) < 1e-3


def test_init_from_copies_matching_layers_by_name(tmp_path):
    donor = backbones.load_backbone(None, str(MOBILENET_H5))
    target = backbones.load_backbone(None, "none")
    report = backbones.init_from(target, MOBILENET_H5)
    assert "conv1" in report["matched"] and "conv_pw_13" in report["matched"]
    assert not report["shape_mismatch"]
    np.testing.assert_array_equal(target.full.get_layer("conv_pw_5").get_weights()[0],
                                  donor.full.get_layer("conv_pw_5").get_weights()[0])
    other = backbones.load_backbone("mobilenet_v1_0.5", "none")
    report = backbones.init_from(other, MOBILENET_H5)
    assert "conv_pw_1" in report["shape_mismatch"] and not report["matched"][:0]
    bad = tmp_path / "x.h5"
    bad.write_text("no")
    with pytest.raises(UserError, match="x.h5: not a Keras model"):
        backbones.init_from(target, bad)


def test_imagenet_labels_are_shipped():
    labels = imagenet_labels()
    assert len(labels) == 1000 and labels[0].startswith("tench") and labels[409] == "analog clock"


def test_predict_imagenet_with_the_shared_mobilenet_top(capsys):
    assert cli.main(["predict", "--imagenet", str(MOBILENET_H5), str(BRAND_TEST / "android.jpg"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert len(result["top"]) == 5 and result["top"][0]["label"] in imagenet_labels()
    assert sum(t["probability"] for t in result["top"]) <= 1.0 + 1e-6


@pytest.fixture
def refusing_proxy():
    """An HTTP(S) proxy address on a bound port that does not listen: any download through it
    is refused at once, so a test can neither reach the internet nor wait for it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{s.getsockname()[1]}"
        yield {"HTTPS_PROXY": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "http_proxy": proxy,
               "NO_PROXY": "", "no_proxy": ""}


@pytest.fixture
def keras_home(tmp_path, monkeypatch, refusing_proxy):
    """A Keras cache pre-seeded with the shared MobileNet under the name Keras downloads it as."""
    home = tmp_path / "keras"
    (home / "models").mkdir(parents=True)
    shutil.copyfile(MOBILENET_H5, home / "models" / KERAS_MOBILENET_NAME)
    monkeypatch.setenv("KERAS_HOME", str(home))
    for name, value in refusing_proxy.items():
        monkeypatch.setenv(name, value)
    return home


def test_imagenet_loads_from_the_keras_cache_with_the_shared_files_features(keras_home):
    shared = backbones.load_backbone(None, str(MOBILENET_H5))
    cached = backbones.load_backbone(None, "imagenet")
    assert cached.full.name == "mobilenet_0.25_224"
    x = np.stack([prepare(load_rgb(p), shared.preprocessing) for p in sorted(BRAND_TEST.iterdir())])
    np.testing.assert_array_equal(predict_batches(cached.model, x, 4), predict_batches(shared.model, x, 4))
    np.testing.assert_array_equal(predict_batches(cached.full, x, 4), predict_batches(shared.full, x, 4))


def test_imagenet_fingerprint_is_the_cached_files_content(keras_home):
    fingerprint = backbones.weights_fingerprint("imagenet")
    # the same content as the shared file: the same id, so the two share cached features
    assert fingerprint == backbones.weights_fingerprint(str(MOBILENET_H5)) == backbones.load_backbone(
        "mobilenet_v1_0.25", "imagenet").weights_id
    assert fingerprint.startswith("sha256-6f6d625ca80290d7")
    (keras_home / "models" / KERAS_MOBILENET_NAME).write_bytes(b"other weights under the same name")
    assert backbones.weights_fingerprint("imagenet") not in (fingerprint, "imagenet")
    with pytest.raises(UserError, match=f"{KERAS_MOBILENET_NAME}: not a readable ImageNet weights file for "
                                        "mobilenet_v1_0.25 .*delete it to download it again"):
        backbones.load_backbone(None, "imagenet")


def test_imagenet_without_a_cached_file_or_network_is_one_clear_error(tmp_path, refusing_proxy):
    empty = tmp_path / "keras"
    env = {**os.environ, **refusing_proxy, "KERAS_HOME": str(empty)}
    r = subprocess.run([sys.executable, "-m", "tfjs_transfer.cli", "build", "--data", str(EXAMPLE_TRAIN),
                        "--weights", "imagenet", "--out", str(tmp_path / "site"), "--no-cache"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    url = backbones.IMAGENET_URL + "mobilenet/" + KERAS_MOBILENET_NAME
    assert r.stderr.strip().splitlines()[-1].startswith(
        f"error: could not download the ImageNet weights for mobilenet_v1_0.25 from {url} "
        f"into {empty / 'models' / KERAS_MOBILENET_NAME} (")
    assert "--weights PATH" in r.stderr
    assert not list((empty / "models").iterdir()) and not (tmp_path / "site").exists()

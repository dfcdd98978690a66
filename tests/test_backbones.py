"""The backbone registry, weights by layer name, and ImageNet predictions. Nothing is
downloaded: architectures are built with weights=none or read from the shared file."""

import json

import numpy as np
import pytest

from tfjs_transfer import backbones, cli, convert
from tfjs_transfer.errors import UserError
from tfjs_transfer.predict import imagenet_labels

from .conftest import BRAND_TEST, MOBILENET_H5


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

"""pipeline/fold.py: folding batch-norms and paddings into convs keeps every backbone's
features, on chains (MobileNet v1), residual graphs (MobileNet v2) and branches
(InceptionV3), and leaves alone what it cannot fold exactly."""

import numpy as np
import pytest

from tfjs_transfer import backbones, fold
from tfjs_transfer.dataset import load_rgb
from tfjs_transfer.preprocess import prepare

from .conftest import BRAND_TRAIN, MOBILENET_H5


def randomize_batch_norms(model, seed=0):
    """Non-trivial statistics, so a wrong fold cannot hide behind gamma=1, mean=0, var=1."""
    import tf_keras as keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if "variance" in w.name or "gamma" in w.name
                               else rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.weights])


def test_mobilenet_v1_folds_27_batch_norms_and_5_paddings_and_keeps_the_features():
    bb = backbones.load_backbone(None, str(MOBILENET_H5))
    x = np.stack([prepare(load_rgb(p), bb.preprocessing) for p in sorted(BRAND_TRAIN.glob("*.jpg"))[::10]])
    folded, report = fold.fold_batch_norms(bb.model, x)
    assert (report.batch_norms, report.paddings) == (27, 5)
    kinds = {type(l).__name__ for l in folded.layers}
    assert "BatchNormalization" not in kinds and "ZeroPadding2D" not in kinds
    # the same graph minus the folded layers (no identity placeholders), other names kept
    assert [l.name for l in folded.layers] == [l.name for l in bb.model.layers if l.name not in report.folded]
    assert len(folded.layers) == len(bb.model.layers) - 32
    # features reach 6 (ReLU6); float32 rounding moves them by ~1e-4
    assert report.max_abs_value == pytest.approx(6.0)
    assert report.max_abs_diff < 5e-3
    assert report.relative_error() < 1e-3
    assert folded.count_params() < bb.model.count_params()  # BN's 4 vectors -> one bias


@pytest.mark.slow
@pytest.mark.parametrize("name,expect_bn,expect_pad", [("mobilenet_v2", 52, 4), ("inception_v3", 94, 0),
                                                       ("vgg16", 0, 0)])
def test_graph_backbones_fold_exactly_with_random_statistics(name, expect_bn, expect_pad):
    bb = backbones.load_backbone(name, "none")
    randomize_batch_norms(bb.model)
    p = bb.preprocessing
    x = np.random.default_rng(1).uniform(-1, 1, (2, p.height, p.width, 3)).astype(np.float32)
    folded, report = fold.fold_batch_norms(bb.model, x)
    assert (report.batch_norms, report.paddings) == (expect_bn, expect_pad)
    if expect_bn == 0:
        assert folded is bb.model and report.max_abs_diff is None
        return
    assert report.relative_error() < 1e-4, report


def test_a_conv_with_two_consumers_or_its_own_activation_is_not_folded():
    import tf_keras as keras

    inp = keras.Input((8, 8, 3))
    shared = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="shared")(inp)
    bn1 = keras.layers.BatchNormalization(name="bn1")(shared)
    side = keras.layers.Activation("relu", name="side")(shared)        # second consumer of `shared`
    act = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="act")(inp)
    bn2 = keras.layers.BatchNormalization(name="bn2")(act)              # BN after a ReLU: not foldable
    plain = keras.layers.Conv2D(4, 3, padding="same", name="plain")(inp)
    bn3 = keras.layers.BatchNormalization(name="bn3")(plain)            # foldable
    model = keras.Model(inp, keras.layers.Concatenate()([bn1, side, bn2, bn3]))
    randomize_batch_norms(model, seed=3)
    x = np.random.default_rng(2).normal(size=(3, 8, 8, 3)).astype(np.float32)
    folded, report = fold.fold_batch_norms(model, x)
    assert report.folded == ["bn3"]
    assert report.max_abs_diff < 1e-5

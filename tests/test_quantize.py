"""pipeline/quantize.py: equalizing conv channel ranges into the batch-norm after them is
exact, and makes the kernels survive per-tensor uint8 better than plain uint8 does."""

import numpy as np

from tfjs_transfer import backbones, quantize
from tfjs_transfer.dataset import load_rgb
from tfjs_transfer.preprocess import prepare

from .conftest import BRAND_TRAIN, MOBILENET_H5


def _uint8(model, patterns):
    import fnmatch

    import tf_keras as keras
    from tensorflowjs import quantization as q

    out = keras.models.clone_model(model)
    out.set_weights([q.dequantize_weights(*q.quantize_weights(
        w.numpy(), np.uint8 if any(fnmatch.fnmatch(w.name.split(":")[0], p) for p in patterns) else np.float16))
        for w in model.weights])
    return out


def _mean_cosine(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(np.mean((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))


def test_equalize_is_exact_and_equalizes_every_kernel():
    bb = backbones.load_backbone(None, str(MOBILENET_H5))
    x = np.stack([prepare(load_rgb(p), bb.preprocessing) for p in sorted(BRAND_TRAIN.glob("*.jpg"))[::15]])
    before = [w.copy() for w in bb.model.get_weights()]
    eq, report = quantize.equalize(bb.model, x)
    assert report.pairs == 27 and report.max_abs_diff < 5e-3      # same function (features up to 6)
    kernel = eq.get_layer("conv_pw_13").get_weights()[0]
    ranges = np.abs(kernel.reshape(-1, kernel.shape[-1])).max(axis=0)
    assert ranges.min() > 0.5 * ranges.max()                        # channel ranges (nearly) equal
    after = bb.model.get_weights()
    assert len(after) == len(before) and all(np.array_equal(a, b) for a, b in zip(after, before)), \
        "equalize changed the input model's weights"
    assert not np.array_equal(kernel, bb.model.get_layer("conv_pw_13").get_weights()[0])  # the copy's did change
    # per-tensor uint8 kernels: closer to the float features once equalized
    reference = bb.model.predict(x, verbose=0)
    plain = _mean_cosine(_uint8(bb.model, ["*"]).predict(x, verbose=0), reference)
    equalized = _mean_cosine(_uint8(eq, quantize.UINT8_WEIGHTS).predict(x, verbose=0), reference)
    assert equalized > plain + 0.02, (plain, equalized)


def test_dtype_maps():
    assert quantize.dtype_map(None) is None
    assert quantize.dtype_map("float16") == {"float16": "*"}
    assert quantize.dtype_map("uint8") == {"uint8": quantize.UINT8_WEIGHTS, "float16": True}

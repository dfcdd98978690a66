import numpy as np
import pytest

from tfjs_transfer import preprocess
from tfjs_transfer.preprocess import Preprocessing


def test_manifest_round_trip_keeps_every_field():
    for prep in (preprocess.MOBILENET, preprocess.CAFFE, preprocess.INCEPTION.with_fit("crop_or_pad")):
        d = prep.to_manifest()
        assert d["resize"] == {"method": "bilinear", "align_corners": False, "half_pixel_centers": False}
        assert Preprocessing.from_manifest(d) == prep


def test_mobilenet_scaling_maps_0_255_to_minus1_1():
    x = np.array([[[0, 127.5, 255]]], np.float32)
    np.testing.assert_allclose(preprocess.normalize(x, preprocess.MOBILENET), [[[-1, 0, 1]]], atol=1e-6)


def test_caffe_is_bgr_minus_imagenet_mean():
    x = np.array([[[10, 20, 30]]], np.float32)
    np.testing.assert_allclose(preprocess.normalize(x, preprocess.CAFFE),
                               [[[30 - 103.939, 20 - 116.779, 10 - 123.68]]], atol=1e-4)


def test_resize_is_tf_resize_bilinear_without_half_pixel_centers():
    """Corner pixels are kept exactly (half_pixel_centers=False), as tf.image.resizeBilinear does in TF.js."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (10, 13, 3), dtype=np.uint8)
    out = preprocess.resize(rgb, Preprocessing(20, 26))
    assert out.shape == (20, 26, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 0], rgb[0, 0])
    # the source pixel for output (i, j) is (i * 10/20, j * 13/26): every other one exactly
    np.testing.assert_allclose(out[::2, ::2], rgb.astype(np.float32), atol=1e-4)


def test_crop_or_pad_keeps_pixels_unresampled():
    rgb = np.full((4, 8, 3), 200, np.uint8)
    out = preprocess.resize(rgb, Preprocessing(6, 6, fit="crop_or_pad"))
    assert out.shape == (6, 6, 3)
    assert out[0].max() == 0 and out[1:5].min() == 200  # padded rows are zero, the rest untouched


def test_unknown_fit_is_rejected():
    with pytest.raises(ValueError):
        preprocess.resize(np.zeros((2, 2, 3), np.uint8), Preprocessing(4, 4, fit="squash"))

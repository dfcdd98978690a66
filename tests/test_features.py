import numpy as np
import pytest

from pipeline import backbones, dataset, features, fold
from pipeline.errors import UserError

from .conftest import MOBILENET_H5
from .helpers import make_folders, shape_image


@pytest.fixture(scope="module")
def mobilenet():
    return backbones.load_backbone(None, str(MOBILENET_H5))


def test_cache_round_trip_and_corruption_is_detected(tmp_path, capsys):
    cache = features.FeatureCache(tmp_path, {"k": 1})
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.put("ab" * 32, a)
    np.testing.assert_array_equal(cache.get("ab" * 32, (3, 4)), a)
    assert cache.get("ab" * 32, (4, 3)) is None  # wrong shape is never used
    cache.put("cd" * 32, a)
    p = cache._path("cd" * 32)
    blob = bytearray(p.read_bytes())
    blob[-1] ^= 0xFF  # one flipped bit in the array
    p.write_bytes(bytes(blob))
    assert cache.get("cd" * 32, (3, 4)) is None and cache.corrupt == 2  # the wrong shape counted too
    assert not p.exists() and "corrupt feature cache entry" in capsys.readouterr().err


def test_keys_separate_backbone_settings(tmp_path):
    assert features.FeatureCache(tmp_path, {"cut": "a"}).dir != features.FeatureCache(tmp_path, {"cut": "b"}).dir


def test_extraction_is_cached_incremental_and_equal_to_uncached(tmp_path, mobilenet):
    root = make_folders(tmp_path / "d", labels=("red", "green"), per_class=3)
    ds = dataset.scan(root)
    cold = features.extract(mobilenet, ds.samples, tmp_path / "cache", verbose=0)
    assert (cold.computed, cold.cached) == (6, 0)
    assert cold.features.shape == (6, 7, 7, 256)
    shape_image("red", 99).save(root / "red" / "new.png")
    warm = features.extract(mobilenet, dataset.scan(root).samples, tmp_path / "cache", verbose=0)
    assert (warm.computed, warm.cached) == (1, 6)
    nocache = features.extract(mobilenet, ds.samples, None, verbose=0)
    np.testing.assert_allclose(nocache.features, cold.features, atol=1e-5)


def test_extraction_with_the_served_model_is_its_own_cache_entry(tmp_path, mobilenet):
    # the build extracts with the folded backbone it serves: its features (equal up to
    # rounding) must never be mixed with the unfolded model's in the cache
    ds = dataset.scan(make_folders(tmp_path / "d", labels=("red", "green"), per_class=2))
    folded, report = fold.fold_batch_norms(mobilenet.model)
    assert report.batch_norms > 0
    plain = features.extract(mobilenet, ds.samples, tmp_path / "cache", verbose=0)
    served = features.extract(mobilenet, ds.samples, tmp_path / "cache", verbose=0, model=folded, model_tag="folded")
    assert (served.computed, served.cached) == (4, 0)
    again = features.extract(mobilenet, ds.samples, tmp_path / "cache", verbose=0, model=folded, model_tag="folded")
    assert (again.computed, again.cached) == (0, 4)
    assert len(list((tmp_path / "cache").iterdir())) == 2
    direct = features.predict_batches(folded, plain_pixels(ds.samples, mobilenet), 32)
    np.testing.assert_allclose(served.features, direct, atol=1e-5)
    assert 0 < np.abs(served.features - plain.features).max() < 1e-2


def plain_pixels(samples, backbone):
    from pipeline import preprocess

    return np.stack([preprocess.prepare(dataset.load_rgb(s.path), backbone.preprocessing) for s in samples])


def test_batched_equals_one_at_a_time(tmp_path, mobilenet):
    ds = dataset.scan(make_folders(tmp_path / "d", labels=("red", "green"), per_class=3))
    one = features.extract(mobilenet, ds.samples, None, batch_size=1, verbose=0)
    many = features.extract(mobilenet, ds.samples, None, batch_size=32, verbose=0)
    np.testing.assert_allclose(one.features, many.features, atol=1e-4)


def test_bad_images_are_skipped_or_refused(tmp_path, mobilenet, capsys):
    root = make_folders(tmp_path / "d", labels=("red", "green"), per_class=2)
    (root / "red" / "broken.jpg").write_bytes(b"not an image")
    samples = dataset.scan(root).samples
    got = features.extract(mobilenet, samples, None, verbose=0)
    assert len(got.samples) == 4 and [s.path.name for s in got.skipped] == ["broken.jpg"]
    assert "broken.jpg" in capsys.readouterr().err
    with pytest.raises(UserError, match="broken.jpg.*--strict"):
        features.extract(mobilenet, samples, None, strict=True, verbose=0)


def test_cut_layer_and_weights_errors_are_clear(tmp_path):
    with pytest.raises(UserError, match="no layer named 'nope'.*conv_pw_12_relu"):
        backbones.load_backbone(None, str(MOBILENET_H5), "nope")
    bad = tmp_path / "weights.h5"
    bad.write_bytes(b"garbage")
    with pytest.raises(UserError, match="weights.h5: not a Keras model"):
        backbones.load_backbone(None, str(bad))
    with pytest.raises(UserError, match="not found"):
        backbones.weights_fingerprint(str(tmp_path / "missing.h5"))
    with pytest.raises(UserError, match="not vgg16"):
        backbones.load_backbone("vgg16", str(MOBILENET_H5))


def test_any_inner_layer_can_be_the_cut():
    bb = backbones.load_backbone(None, str(MOBILENET_H5), "conv_pw_11_relu")
    assert bb.feature_shape == (14, 14, 128)
    assert backbones.spec_for_file(MOBILENET_H5) == "mobilenet_v1_0.25"

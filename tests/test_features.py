import json
import shutil

import numpy as np
import pytest

from tfjs_transfer import backbones, dataset, features, fold, inference
from tfjs_transfer.errors import UserError

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
    direct = inference.predict_batches(folded, plain_pixels(ds.samples, mobilenet), 32)
    np.testing.assert_allclose(served.features, direct, atol=1e-5)
    assert 0 < np.abs(served.features - plain.features).max() < 1e-2


def plain_pixels(samples, backbone):
    from tfjs_transfer import preprocess

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


# --- plan / compute / assemble ----------------------------------------------------------

class FakeCache:
    """What plan and compute use of a ViewCache: views, shape, get, put (recorded), stored."""

    def __init__(self, entries=None, views=1, shape=(2,)):
        self.entries, self.views, self.shape, self.puts = dict(entries or {}), views, shape, []

    def get(self, digest, view):
        return self.entries.get((digest, view))

    def put(self, digest, view, arr):
        self.puts.append((digest, view))
        self.entries[digest, view] = arr

    def stored(self, arr):
        return arr


def files(tmp_path, **contents):
    paths = {}
    for name, data in contents.items():
        paths[name] = tmp_path / f"{name}.jpg"
        if data is not None:
            paths[name].write_bytes(data)
    return paths


def test_plan_finds_hits_misses_duplicates_and_unreadable_files(tmp_path, capsys):
    p = files(tmp_path, a=b"AAA", b=b"BBB", a_again=b"AAA", gone=None, c=b"CCC")
    samples = [dataset.Sample(p["a"], "x"), dataset.Sample(p["b"], "x"), dataset.Sample(p["a_again"], "y"),
               dataset.Sample(p["gone"], "y"), dataset.Sample(p["c"], "y")]
    da, db, dc = (features.file_digest(p[k]) for k in ("a", "b", "c"))
    cached = {(db, 0): np.ones(2, np.float32), (db, 1): np.full(2, 2, np.float32), (da, 0): np.zeros(2, np.float32)}
    plan = features.plan(samples, FakeCache(cached, views=2))
    assert plan.digests == {0: da, 1: db, 2: da, 4: dc}
    assert plan.first == {da: 0, db: 1, dc: 4}   # the copy under another class is not planned again
    assert sorted(plan.hits) == [(0, 0), (1, 0), (1, 1)]
    np.testing.assert_array_equal(plan.hits[1, 1], cached[db, 1])
    assert plan.misses == {0: [1], 4: [0, 1]} and plan.work == [(0, 1), (4, 0), (4, 1)]
    assert [(s.path.name, s.reason.split(" (")[0]) for s in plan.skipped] == [("gone.jpg", "cannot read file")]
    assert f"warning: skipping {p['gone']}: cannot read file" in capsys.readouterr().err
    with pytest.raises(UserError, match="gone.jpg: cannot read file.*--strict"):
        features.plan(samples, FakeCache(cached, views=2), strict=True)


def test_plan_does_not_import_tensorflow(tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT

    (tmp_path / "a.jpg").write_bytes(b"AAA")
    code = ("import sys, pathlib; from tfjs_transfer import dataset, features\n"
            f"c = features.ViewCache(pathlib.Path({str(tmp_path / 'cache')!r}), {{'k': 1}}, None, (2,))\n"
            f"p = features.plan([dataset.Sample(pathlib.Path({str(tmp_path / 'a.jpg')!r}), 'x')], c)\n"
            "print(p.work, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[(0, 0)] False"


def test_view_cache_keys_views_apart(tmp_path):
    from tfjs_transfer.augment import Augmentation

    cache = features.ViewCache(tmp_path, {"k": 1}, Augmentation(copies=2), (3,))
    assert cache.views == 3
    for v in range(3):
        cache.put("ab" * 32, v, np.full(3, v, np.float32))
    assert [cache.get("ab" * 32, v)[0] for v in range(3)] == [0, 1, 2]
    plain = features.ViewCache(tmp_path, {"k": 1}, None, (3,))
    assert plain.views == 1 and plain.get("ab" * 32, 0)[0] == 0  # the image itself is shared
    assert features.view_key("ab", 0) == "ab" and features.view_key("ab", 2) == "ab-2"
    assert len(list(tmp_path.iterdir())) == 2  # augmented views under a key of their own


def assembled_plan(tmp_path):
    names = ["a", "b", "a_again", "c", "c_again"]
    samples = [dataset.Sample(tmp_path / f"{n}.jpg", "x") for n in names] + [dataset.Sample(tmp_path / "gone.jpg", "y")]
    f = lambda x: np.full(2, x, np.float32)  # noqa: E731
    plan = features.Plan(samples, views=2, shape=(2,), digests={0: "a", 1: "b", 2: "a", 3: "c", 4: "c"},
                         first={"a": 0, "b": 1, "c": 3}, hits={(1, 0): f(10), (1, 1): f(11), (0, 0): f(0)},
                         misses={0: [1], 3: [0, 1]},
                         skipped=[dataset.Skipped(samples[5].path, "cannot read file (gone)")])
    computed = features.Computed(features={(0, 1): f(1)}, undecodable={3: "cannot decode image (junk)"})
    return plan, computed


def test_assemble_orders_shares_duplicates_and_counts(tmp_path, capsys):
    plan, computed = assembled_plan(tmp_path)
    got = features.assemble(plan, computed)
    assert [s.path.name for s in got.samples] == ["a.jpg", "b.jpg", "a_again.jpg"] and got.digests == ["a", "b", "a"]
    np.testing.assert_array_equal(got.features[:, 0], [0, 10, 0])
    np.testing.assert_array_equal(got.augmented[:, :, 0], [[1, 11, 1]])
    assert got.features.dtype == np.float32 and got.augmented.shape == (1, 3, 2)
    # the unreadable file, the undecodable one, then its copy (skipped for the same reason)
    assert [(s.path.name, s.reason) for s in got.skipped] == [
        ("gone.jpg", "cannot read file (gone)"), ("c.jpg", "cannot decode image (junk)"),
        ("c_again.jpg", "cannot decode image (junk)")]
    assert capsys.readouterr().err == f"warning: skipping {tmp_path / 'c_again.jpg'}: cannot decode image (junk)\n"
    assert (got.computed, got.cached) == (1, 5)  # one view ran; 3 kept x 2 views in all
    assert plan.skipped[-1].path.name == "gone.jpg" and len(plan.skipped) == 1  # the plan is not changed
    with pytest.raises(UserError, match="c_again.jpg: cannot decode image.*--strict"):
        features.assemble(plan, computed, strict=True)


def test_assemble_of_nothing_has_the_feature_shape():
    plan = features.Plan([], views=1, shape=(7, 7, 256))
    got = features.assemble(plan, features.Computed())
    assert got.features.shape == (0, 7, 7, 256) and got.augmented is None and (got.computed, got.cached) == (0, 0)


def test_compute_writes_every_result_through_the_cache(tmp_path, mobilenet, capsys):
    root = make_folders(tmp_path / "d", labels=("red",), per_class=3)
    (root / "red" / "broken.jpg").write_bytes(b"not an image")
    samples = dataset.scan(root).samples
    cache = FakeCache(views=1, shape=mobilenet.feature_shape)
    plan = features.plan(samples, cache)
    done = features.compute(plan, mobilenet.model, mobilenet.preprocessing, cache, batch_size=2, chunk=2, verbose=0)
    broken = next(i for i, s in enumerate(samples) if s.path.name == "broken.jpg")
    assert list(done.undecodable) == [broken] and "cannot decode image" in done.undecodable[broken]
    assert f"warning: skipping {samples[broken].path}: cannot decode image" in capsys.readouterr().err
    assert sorted(done.features) == [w for w in plan.work if w[0] != broken]
    assert cache.puts == [(plan.digests[i], v) for i, v in plan.work if i != broken]
    for (i, v), f in done.features.items():
        assert cache.entries[plan.digests[i], v] is f


def test_features_left_in_the_cache_are_the_same_and_only_indexed(tmp_path, mobilenet):
    """extract(in_memory=False), the streamed build's: the index in memory, features read back equal."""
    root = make_folders(tmp_path / "d", labels=("red", "green"), per_class=3)
    shutil.copy(root / "red" / "red0.png", root / "green" / "copy.png")  # same bytes: one entry
    ds = dataset.scan(root)
    left = features.extract(mobilenet, ds.samples, tmp_path / "cache", verbose=0, in_memory=False)
    assert left.features is None and left.augmented is None and not left.in_memory
    assert (left.computed, left.cached) == (6, 1) and len(left.digests) == 7
    held = features.extract(mobilenet, ds.samples, tmp_path / "cache", verbose=0)
    assert (held.computed, held.cached) == (0, 7)
    np.testing.assert_array_equal(left.load(range(7)), held.features)
    np.testing.assert_array_equal(held.load([2, 0]), held.features[[2, 0]])
    shape_image("red", 99).save(root / "red" / "new.png")  # a rebuild with one added image computes one
    again = features.extract(mobilenet, dataset.scan(root).samples, tmp_path / "cache", verbose=0, in_memory=False)
    assert (again.computed, again.cached) == (1, 7)
    with pytest.raises(UserError, match="need a cache"):
        features.extract(mobilenet, ds.samples, None, verbose=0, in_memory=False)


def test_entries_read_from_many_threads_at_once_are_never_taken_for_corrupt(tmp_path, capsys):
    """streamed.py's tf.data reads entries in parallel threads."""
    from concurrent.futures import ThreadPoolExecutor

    cache = features.FeatureCache(tmp_path, {"k": 1})
    for i in range(64):
        cache.put(f"{i:064x}", np.full((4, 4, 8), i, np.float32))
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: cache.get(f"{i % 64:064x}", (4, 4, 8)), range(2000)))
    assert all(g is not None and g[0, 0, 0] == i % 64 for i, g in enumerate(got))
    assert cache.corrupt == 0 and "corrupt" not in capsys.readouterr().err


def test_the_key_names_the_decoder_version(monkeypatch, mobilenet):
    """Another Pillow may decode other pixels: its features go under another key."""
    import PIL

    before = features.backbone_cache_key(mobilenet)
    assert before["decode"]["pillow"] == PIL.__version__
    monkeypatch.setattr(PIL, "__version__", "0.0.1")
    assert features.backbone_cache_key(mobilenet) != before


def test_float16_entries_are_half_the_size_their_own_key_and_read_as_float32(tmp_path, mobilenet):
    root = make_folders(tmp_path / "d", labels=("red", "green"), per_class=2)
    samples = dataset.scan(root).samples
    f32 = features.extract(mobilenet, samples, tmp_path / "cache", verbose=0)
    f16 = features.extract(mobilenet, samples, tmp_path / "cache", verbose=0, dtype="float16")
    assert f16.computed == 4 and f16.features.dtype == np.float32  # its own entries, not float32's
    np.testing.assert_array_equal(f16.features, f32.features.astype(np.float16).astype(np.float32))
    again = features.extract(mobilenet, samples, tmp_path / "cache", verbose=0, dtype="float16")
    assert again.cached == 4 and np.array_equal(again.features, f16.features)  # computed = read back
    sizes = {json.loads(k.read_text()).get("dtype", "float32"): sum(p.stat().st_size for p in k.parent.rglob("*.npy"))
             for k in (tmp_path / "cache").glob("*/key.json")}
    assert 0.49 < sizes["float16"] / sizes["float32"] < 0.51
    with pytest.raises(UserError, match="--feature-dtype"):
        features.backbone_cache_key(mobilenet, dtype="int8")

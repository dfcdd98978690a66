"""Head training streamed from the feature cache (tf.data) against training from memory."""

import numpy as np
import pytest

from tfjs_transfer import backbones, dataset, features, heads, streamed, training
from tfjs_transfer.augment import Augmentation
from tfjs_transfer.errors import UserError

from .conftest import BRAND_TRAIN, MOBILENET_H5


def test_the_build_streams_when_asked_or_when_features_would_crowd_memory():
    shape, gb = (7, 7, 256), 10**9  # 50,176 bytes a view
    assert streamed.wanted("off", 10**9, shape, has_cache=True) == (False, "off")
    assert streamed.wanted("on", 10, shape, has_cache=True) == (True, "on")
    assert not streamed.wanted("auto", 10_000, shape, has_cache=True, memory_bytes=8 * gb)[0]   # 0.5 GB
    assert streamed.wanted("auto", 100_000, shape, has_cache=True, memory_bytes=8 * gb)[0]      # 5 GB > 2 GB
    assert "5.02 GB" in streamed.wanted("auto", 100_000, shape, has_cache=True, memory_bytes=8 * gb)[1]
    # a fine-tuning recipe's pixels count too; auto never streams without a cache to stream from
    assert streamed.wanted("auto", 10_000, shape, has_cache=True, pixel_bytes=2 * gb, memory_bytes=8 * gb)[0]
    assert not streamed.wanted("auto", 100_000, shape, has_cache=False, memory_bytes=8 * gb)[0]
    with pytest.raises(UserError, match="--no-cache"):
        streamed.wanted("on", 10, shape, has_cache=False)
    with pytest.raises(UserError, match="auto, on, off"):
        streamed.wanted("sometimes", 10, shape, has_cache=True)


@pytest.mark.slow
def test_the_stream_trainer_cross_validates_like_the_head_trainer(tmp_path):
    """The build's Trainer over features left in the cache: same folds, accuracies within noise."""
    bb = backbones.load_backbone(None, str(MOBILENET_H5))
    ds = dataset.scan(BRAND_TRAIN)
    aug = Augmentation(copies=1)
    recipe = heads.resolve_recipe("pooled", epochs=6, augment_copies=1)
    kw = dict(augment=aug, verbose=0)
    held = features.extract(bb, ds.samples, tmp_path / "cache", **kw)
    left = features.extract(bb, ds.samples, tmp_path / "cache", in_memory=False, **kw)
    y = np.array([ds.labels.index(s.label) for s in held.samples])
    mem = training.make_trainer(recipe, bb, held, y, 3, aug)
    st = training.make_trainer(recipe, bb, left, y, 3, aug)
    assert isinstance(mem, heads.HeadTrainer) and isinstance(st, streamed.StreamTrainer)
    pool = np.arange(len(y))
    a, b = (training.cross_validate(t, y, pool, 3, seed=0) for t in (mem, st))
    print(a["per_fold"], b["per_fold"])
    assert abs(a["accuracy_mean"] - b["accuracy_mean"]) <= 0.05 and b["accuracy_mean"] > 0.9
    result = st.train(pool[:60], pool[60:], 0, 0)
    assert st.accuracy(result, pool[60:]) == pytest.approx(result.metrics["val_accuracy"])


@pytest.mark.slow
def test_streamed_training_matches_training_from_memory(tmp_path):
    bb = backbones.load_backbone(None, str(MOBILENET_H5))
    ds = dataset.scan(BRAND_TRAIN)
    aug = Augmentation(copies=1)
    feats = features.extract(bb, ds.samples, tmp_path / "cache", augment=aug, verbose=0)
    cache = features.ViewCache(tmp_path / "cache", features.backbone_cache_key(bb), aug, bb.feature_shape)
    y = np.array([ds.labels.index(s.label) for s in feats.samples])
    digests = np.array(feats.digests)
    recipe = heads.resolve_recipe("pooled", epochs=8)
    runs = {"memory": [], "streamed": []}
    for seed in range(3):
        train, valid = heads.stratified_split(y, 0.3, seed)
        x, yx = heads.with_views(feats.features, feats.augmented, y, train)
        mem = heads.train_head(recipe, x, yx, 3, x_valid=feats.features[valid], y_valid=y[valid], seed=seed, verbose=0)
        runs["memory"].append(mem.metrics)
        s = streamed.train_head(recipe, cache, streamed.Index.of(digests[train], y[train], views=2), 3,
                                valid=streamed.Index.of(digests[valid], y[valid]), seed=seed)
        runs["streamed"].append(s.metrics)
        assert s.metrics["train_count"] == len(train) and s.metrics["val_count"] == len(valid)
    for key in ("val_accuracy", "val_loss"):
        mem, st = (np.array([m[key] for m in runs[k]]) for k in ("memory", "streamed"))
        spread = max(np.ptp(mem), np.ptp(st), 0.05 if key == "val_accuracy" else 0.1)
        print(key, mem, st)
        assert abs(mem.mean() - st.mean()) <= spread, (key, mem, st)
    assert min(m["val_accuracy"] for m in runs["streamed"]) > 0.8  # learned, not chance (1/3)



"""Head training streamed from the feature cache (tf.data) against training from memory."""

import numpy as np
import pytest

from tfjs_transfer import backbones, dataset, features, heads, streamed
from tfjs_transfer.augment import Augmentation

from .conftest import BRAND_TRAIN, MOBILENET_H5

pytestmark = pytest.mark.slow


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



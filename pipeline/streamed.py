"""Head training from the feature cache through tf.data, for feature sets larger than memory.

Memory holds the index (each training item's digest, view and label: about 100 bytes an item)
and a few prefetched batches, never the features: each epoch shuffles the index, reads the
entries (features.ViewCache.get, checksummed) in parallel, batches and prefetches them.
The same recipe, head, optimizer, early stopping and collapse retries as heads.train_head, so
metrics agree within the noise of a different shuffle order. `StreamTrainer` is the build's
Trainer (training.Trainer) over it; `wanted` decides when the build streams.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import heads
from .errors import UserError
from .features import ViewCache


@dataclass
class Index:
    """What a streamed dataset holds in memory: per item, the image's digest, the view, the label."""
    digests: np.ndarray            # (n,) str: sha256 hex
    views: np.ndarray              # (n,) int32
    labels: np.ndarray             # (n,) int32

    @classmethod
    def of(cls, digests, labels, views: int = 1) -> "Index":
        """Each image with each of its `views` (0: the image, 1..: augmented copies)."""
        digests, labels = np.asarray(digests), np.asarray(labels, np.int32)
        return cls(np.tile(digests, views), np.repeat(np.arange(views, dtype=np.int32), len(digests)),
                   np.tile(labels, views))

    def __len__(self) -> int:
        return len(self.labels)


def dataset(cache: ViewCache, index: Index, n_classes: int, batch_size: int, seed: int | None = None):
    """(features, one-hot label) batches read from the cache; shuffled each epoch when seeded."""
    import tensorflow as tf

    shape = cache.shape

    def read(digest, view):
        f = cache.get(digest.decode(), int(view))
        if f is None:
            raise UserError(f"feature cache entry {digest.decode()} view {int(view)} is missing; run extract again")
        return f

    def load(digest, view, label):
        x = tf.numpy_function(read, [digest, view], tf.float32, stateful=False)
        x.set_shape(shape)
        return x, tf.one_hot(label, n_classes)

    ds = tf.data.Dataset.from_tensor_slices((index.digests, index.views, index.labels))
    if seed is not None:
        ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def evaluate(model, cache: ViewCache, index: Index, n_classes: int, prefix: str, batch_size: int = 1024) -> dict:
    """heads.evaluate_head's metrics, streamed."""
    hits, loss = 0, 0.0
    for x, y in dataset(cache, index, n_classes, batch_size):
        p = model(x, training=False).numpy()
        truth = y.numpy().argmax(1)
        hits += int(np.sum(p.argmax(1) == truth))
        loss += float(-np.sum(np.log(np.clip(p[np.arange(len(truth)), truth], 1e-7, 1))))
    n = len(index)
    return {f"{prefix}_accuracy": hits / n, f"{prefix}_loss": loss / n, f"{prefix}_count": n}


def train_head(recipe: heads.Recipe, cache: ViewCache, train: Index, n_classes: int, *,
               valid: Index | None = None, seed: int = 0, verbose: int = 0, max_attempts: int = 3,
               callbacks=()) -> heads.TrainResult:
    """heads.train_head with features streamed from the cache: a run stuck at chance is reported
    and retried with the next seed."""
    if not len(train):
        raise UserError("no training features")
    has_valid = valid is not None and len(valid) > 0
    originals = Index(train.digests[train.views == 0], train.views[train.views == 0], train.labels[train.views == 0])

    def fit(model, seed, cbs):
        return model.fit(dataset(cache, train, n_classes, recipe.batch_size, seed), epochs=recipe.epochs,
                         verbose=verbose, callbacks=cbs,
                         validation_data=dataset(cache, valid, n_classes, 1024) if has_valid else None)

    def score(model):
        metrics = evaluate(model, cache, originals, n_classes, "train")
        if has_valid:
            metrics.update(evaluate(model, cache, valid, n_classes, "val"))
        return metrics

    return heads.fit_with_retries(recipe, n_classes, cache.shape, originals.labels, len(train), fit, score,
                                  seed=seed, max_attempts=max_attempts, callbacks=callbacks, has_valid=has_valid)


class StreamTrainer:
    """heads.HeadTrainer with the features left in the cache (features.extract(in_memory=False)):
    the images are known by digest and label, each training image with its augmented views."""

    trains_backbone = False

    def __init__(self, recipe: heads.Recipe, cache: ViewCache, digests, y: np.ndarray, n_classes: int):
        self.recipe, self.cache, self.n_classes = recipe, cache, n_classes
        self.digests, self.y = np.asarray(digests), np.asarray(y, np.int32)

    def index(self, idx: np.ndarray, views: int = 1) -> Index:
        return Index.of(self.digests[idx], self.y[idx], views)

    def train(self, train_idx: np.ndarray, valid_idx: np.ndarray, seed: int, verbose: int) -> heads.TrainResult:
        return train_head(self.recipe, self.cache, self.index(train_idx, self.cache.views), self.n_classes,
                          valid=self.index(valid_idx), seed=seed, verbose=verbose)

    def accuracy(self, result: heads.TrainResult, idx: np.ndarray) -> float:
        return evaluate(result.model, self.cache, self.index(idx), self.n_classes, "x")["x_accuracy"]


MODES = ("auto", "on", "off")
# auto streams once the features would take more than this share of the machine's memory:
# below it, training from memory is faster and the whole build still fits beside TF.
MEMORY_SHARE = 0.25


def wanted(mode: str, views: int, shape, *, has_cache: bool, pixel_bytes: int = 0,
           memory_bytes: int | None = None) -> tuple[bool, str]:
    """Whether the build trains streamed from the cache (`--stream-features`), and why.
    `pixel_bytes`: what a fine-tuning recipe would hold besides (its images' pixels), which
    streaming reads from the files instead."""
    if mode not in MODES:
        raise UserError(f"--stream-features must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return False, "off"
    if mode == "on":
        if not has_cache:
            raise UserError("--stream-features on reads the features from the cache, which --no-cache turns off; "
                            "drop one of them")
        return True, "on"
    size = views * int(np.prod(shape)) * 4 + pixel_bytes
    memory = memory_bytes or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    why = f"{'features and pixels' if pixel_bytes else 'features'} {size / 1e9:.2f} GB, {MEMORY_SHARE:.0%} of memory is {memory * MEMORY_SHARE / 1e9:.2f} GB"
    if not has_cache or size <= memory * MEMORY_SHARE:
        return False, f"auto: in memory ({why})"
    return True, f"auto: streamed from the cache ({why})"

"""Head training from the feature cache through tf.data, for feature sets larger than memory.

Memory holds the index (each training item's digest, view and label: about 100 bytes an item)
and a few prefetched batches, never the features: each epoch shuffles the index, reads the
entries (features.ViewCache.get, checksummed) in parallel, batches and prefetches them.
The same recipe, head and optimizer as heads.train_head, so metrics agree within the noise of
a different shuffle order.
"""

from __future__ import annotations

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
               valid: Index | None = None, seed: int = 0, verbose: int = 0) -> heads.TrainResult:
    """heads.train_head with features streamed from the cache (one attempt: no collapse retry)."""
    if not len(train):
        raise UserError("no training features")
    model = heads.build_head(heads.head_layers(recipe, n_classes), cache.shape, seed)
    steps = recipe.epochs * -(-len(train) // recipe.batch_size)
    model.compile(heads.optimizer(recipe, recipe.learning_rate, steps), recipe.loss, metrics=["accuracy"])
    has_valid = valid is not None and len(valid) > 0
    hist = model.fit(dataset(cache, train, n_classes, recipe.batch_size, seed), epochs=recipe.epochs, verbose=verbose,
                     validation_data=dataset(cache, valid, n_classes, 1024) if has_valid else None)
    originals = Index(train.digests[train.views == 0], train.views[train.views == 0], train.labels[train.views == 0])
    metrics = evaluate(model, cache, originals, n_classes, "train")
    if has_valid:
        metrics.update(evaluate(model, cache, valid, n_classes, "val"))
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    collapsed = heads.is_collapsed(metrics["train_accuracy"], originals.labels, n_classes)
    return heads.TrainResult(model, history, metrics, collapsed, 1, seed, len(history.get("loss", [])), [])

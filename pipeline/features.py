"""Batched feature extraction through the cut backbone, with an on-disk cache.

A cache entry is keyed by the image's content (sha256 of its bytes) under a folder
keyed by everything else that changes the features: backbone, weights, cut layer and
preprocessing. Adding one image to a dataset therefore computes one image. Entries
carry a checksum and are written atomically; a corrupt one is recomputed, never used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dataset import Sample, Skipped, load_rgb
from .errors import UserError
from .augment import Augmentation
from .augment import apply as augment_image
from .preprocess import normalize, resize

CACHE_FORMAT = 1
MAGIC = b"TFJSFEAT"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tfjs-transfer" / "features"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FeatureCache:
    """One .npy per image, behind a header holding a sha256 of the array bytes."""

    def __init__(self, root: Path | None, backbone_key: dict):
        self.enabled = root is not None
        key = json.dumps({"format": CACHE_FORMAT, **backbone_key}, sort_keys=True)
        self.key = hashlib.sha256(key.encode()).hexdigest()[:20]
        self.dir = Path(root) / self.key if root is not None else None
        self.corrupt = 0
        if self.enabled:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "key.json").write_text(key)

    def _path(self, digest: str) -> Path:
        return self.dir / digest[:2] / f"{digest}.npy"

    def get(self, digest: str, shape: tuple[int, ...]) -> np.ndarray | None:
        if not self.enabled:
            return None
        p = self._path(digest)
        try:
            blob = p.read_bytes()
        except OSError:
            return None
        try:
            if blob[:8] != MAGIC or hashlib.sha256(blob[40:]).digest() != blob[8:40]:
                raise ValueError("checksum mismatch")
            arr = np.load(io.BytesIO(blob[40:]), allow_pickle=False)
            if arr.shape != shape or arr.dtype != np.float32:
                raise ValueError(f"shape {arr.shape} {arr.dtype}")
            return arr
        except Exception as e:
            self.corrupt += 1
            print(f"warning: corrupt feature cache entry {p} ({e}); recomputing", file=sys.stderr)
            p.unlink(missing_ok=True)
            return None

    def put(self, digest: str, arr: np.ndarray) -> None:
        if not self.enabled:
            return
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
        payload = buf.getvalue()
        p = self._path(digest)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class Features:
    samples: list[Sample]
    features: np.ndarray           # (n, *feature_shape) float32, one per kept sample
    digests: list[str]
    augmented: np.ndarray | None = None  # (copies, n, *feature_shape): augmented views of the same samples
    skipped: list[Skipped] = field(default_factory=list)
    computed: int = 0              # views run through the backbone (cache misses)
    cached: int = 0


def backbone_cache_key(backbone) -> dict:
    return {"backbone": backbone.spec.name, "weights": backbone.weights_id, "cut": backbone.cut,
            "preprocessing": backbone.preprocessing.to_manifest()}


def extract(backbone, samples: list[Sample], cache_dir: Path | None, *, augment: Augmentation | None = None,
            batch_size: int = 32, strict: bool = False, verbose: int = 1, chunk: int = 256,
            model=None, model_tag: str = "") -> Features:
    """Features of every decodable sample (and of its augmented views); undecodable ones are
    skipped, or refused if strict. Each distinct content (the same bytes under several names or
    classes) is decoded at most once, and only on a cache miss. `model` computes them instead of
    backbone.model (e.g. the folded copy the site serves); `model_tag` names it in the cache key,
    as its features differ in the last digits."""
    import tf_keras as keras

    model = backbone.model if model is None else model
    key = backbone_cache_key(backbone)
    if model_tag:
        key["model"] = model_tag
    caches = [FeatureCache(cache_dir, key)]
    copies = augment.copies if augment else 0
    if copies:
        caches.append(FeatureCache(cache_dir, {**key, "augment": augment.key()}))
    shape = backbone.feature_shape
    views = range(1 + copies)
    got: dict[tuple[int, int], np.ndarray] = {}
    digests: dict[int, str] = {}
    skipped: list[Skipped] = []
    misses: dict[int, list[int]] = {}  # sample -> views to compute
    first: dict[str, int] = {}  # digest -> the first sample with those bytes; later ones share its features
    for i, s in enumerate(samples):
        try:
            digests[i] = file_digest(s.path)
        except OSError as e:
            _skip(skipped, s.path, f"cannot read file ({e.strerror})", strict)
            continue
        if first.setdefault(digests[i], i) != i:
            continue
        for v in views:
            hit = _cache_for(caches, v).get(_view_key(digests[i], v), shape)
            if hit is None:
                misses.setdefault(i, []).append(v)
            else:
                got[i, v] = hit
    todo = sorted(misses)
    n_views = sum(len(v) for v in misses.values())
    bar = keras.utils.Progbar(n_views, unit_name="view", verbose=verbose) if n_views and verbose else None
    bad: dict[int, str] = {}  # sample -> why it cannot be decoded
    for start in range(0, len(todo), chunk):
        keys, pixels = [], []
        for i in todo[start:start + chunk]:
            try:
                resized = resize(load_rgb(samples[i].path), backbone.preprocessing)
            except UserError as e:
                bad[i] = _reason(e, samples[i].path)
                _skip(skipped, samples[i].path, bad[i], strict)
                continue
            for v in misses[i]:
                view = resized if v == 0 else augment_image(resized, augment.params(digests[i], v))
                pixels.append(normalize(view, backbone.preprocessing))
                keys.append((i, v))
        if keys:
            feats = predict_batches(model, np.stack(pixels), batch_size)
            for (i, v), f in zip(keys, feats):
                got[i, v] = f
                _cache_for(caches, v).put(_view_key(digests[i], v), f)
        if bar:
            bar.add(sum(len(misses[i]) for i in todo[start:start + chunk]))
    for i, d in digests.items():
        j = first[d]
        if j in bad and i != j:
            bad[i] = bad[j]
            _skip(skipped, samples[i].path, bad[i], strict)
        elif i != j:
            for v in views:
                got[i, v] = got[j, v]
    kept = [i for i in sorted(digests) if i not in bad]
    stack = lambda v: np.stack([got[i, v] for i in kept]) if kept else np.zeros((0, *shape), np.float32)
    computed = sum(len(misses[i]) for i in todo if i not in bad)
    return Features([samples[i] for i in kept], stack(0), [digests[i] for i in kept],
                    np.stack([stack(v) for v in views[1:]]) if copies else None, skipped,
                    computed=computed, cached=len(kept) * len(views) - computed)


def load_pixels(samples: list[Sample], prep) -> np.ndarray:
    """Resized [0, 255] pixels of samples already known to decode (for fine-tuning)."""
    return np.stack([resize(load_rgb(s.path), prep) for s in samples])


def _cache_for(caches: list[FeatureCache], view: int) -> FeatureCache:
    return caches[0] if view == 0 else caches[1]


def _view_key(digest: str, view: int) -> str:
    return digest if view == 0 else f"{digest}-{view}"


def predict_batches(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Run the model in fixed-size batches, without Keras' per-call predict() overhead."""
    import tensorflow as tf

    one, halves = _compiled(model)
    outs = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        outs.append((halves if len(batch) >= 2 else one)(tf.constant(batch)).numpy())
    return np.concatenate(outs).astype(np.float32)


def _compiled(model):
    """Traced functions kept on the model (so they die with it): the model on a batch, and on
    the batch's two halves as independent branches. TF's inter-op threads run the branches
    side by side, keeping both cores busy through MobileNet's small memory-bound layers, where
    one op's own threads do not: 1.17x at batch 32 on 2 cores (paired; .cache bench)."""
    import tensorflow as tf

    fns = getattr(model, "_tfjs_transfer_calls", None)
    if fns is None:
        def halves(x):
            half = tf.shape(x)[0] // 2
            return tf.concat([model(x[:half], training=False), model(x[half:], training=False)], 0)

        fns = (tf.function(lambda x: model(x, training=False), reduce_retracing=True),
               tf.function(halves, reduce_retracing=True))
        model._tfjs_transfer_calls = fns
    return fns


def _reason(e: UserError, path: Path) -> str:
    """The message without its leading path (which may itself hold ': ')."""
    msg, prefix = str(e), f"{path}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


def _skip(skipped: list[Skipped], path: Path, reason: str, strict: bool) -> None:
    if strict:
        raise UserError(f"{path}: {reason} (--strict refuses bad images; drop it to skip them)")
    print(f"warning: skipping {path}: {reason}", file=sys.stderr)
    skipped.append(Skipped(path, reason))

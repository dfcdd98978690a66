"""Batched feature extraction through the cut backbone, with an on-disk cache.

A cache entry is keyed by the image's content (sha256 of its bytes) under a folder
keyed by everything else that changes the features: backbone, weights, cut layer and
preprocessing. Adding one image to a dataset therefore computes one image. Entries
carry a checksum and are written atomically; a corrupt one is recomputed, never used.

`extract` is three steps, so that another runner (e.g. Apache Beam, for datasets past one
machine) can replace only the middle one and share the rest:
  plan     -> digests, duplicates and cache hits: the (sample, view) items left to compute (no TF);
  compute  -> the in-process runner: decode, build the views, run the model, write the cache;
  assemble -> the Features, in sample order, from the plan and what was computed.
A runner shares `plan`, `decoded` + `view_pixels` (its inputs), `ViewCache.put` (its writes)
and `assemble`. Entries are float32, or float16 at half the size (`dtype`, in the key).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL

from .dataset import MIN_SIDE, Sample, Skipped, as_source, load_rgb
from .errors import UserError
from .augment import Augmentation
from .augment import apply as augment_image
from .inference import predict_batches
from . import tflite_engine
from .tflite_engine import ENGINES
from .preprocess import normalize, resize

CACHE_FORMAT = 1
MAGIC = b"TFJSFEAT"
# np.load parses the .npy header with ast.literal_eval, which CPython 3.11 breaks when threads
# parse at once ("AST constructor recursion depth mismatch"): streamed.py's tf.data reads in
# parallel threads, and a failed parse would count a good entry as corrupt and delete it.
_NPY_HEADER = threading.Lock()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tfjs-transfer" / "features"


def file_digest(path) -> str:
    """sha256 of a file's bytes (or a zip entry's: the same image shares its cache entries)."""
    h = hashlib.sha256()
    with as_source(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


DTYPES = ("float32", "float16")


class FeatureCache:
    """One .npy per image, behind a header holding a sha256 of the array bytes. Entries are
    stored in the key's "dtype" (float32 unless it says float16) and read back as float32."""

    def __init__(self, root: Path | None, backbone_key: dict):
        self.enabled = root is not None
        self.dtype = np.dtype(backbone_key.get("dtype", "float32"))
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
            with _NPY_HEADER:
                arr = np.load(io.BytesIO(blob[40:]), allow_pickle=False)
            if arr.shape != shape or arr.dtype != self.dtype:
                raise ValueError(f"shape {arr.shape} {arr.dtype}")
            return arr.astype(np.float32, copy=False)
        except Exception as e:
            self.corrupt += 1
            print(f"warning: corrupt feature cache entry {p} ({e}); recomputing", file=sys.stderr)
            p.unlink(missing_ok=True)
            return None

    def put(self, digest: str, arr: np.ndarray) -> None:
        if not self.enabled:
            return
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr, dtype=self.dtype), allow_pickle=False)
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
    features: np.ndarray | None    # (n, *feature_shape) float32, one per kept sample; None: left in `cache`
    digests: list[str]
    augmented: np.ndarray | None = None  # (copies, n, *feature_shape): augmented views of the same samples
    skipped: list[Skipped] = field(default_factory=list)
    computed: int = 0              # views run through the backbone (cache misses)
    cached: int = 0
    cache: "ViewCache | None" = None  # where the features are when not in memory (streamed.py reads them)

    @property
    def in_memory(self) -> bool:
        return self.features is not None

    def load(self, idx) -> np.ndarray:
        """The features (view 0) of the samples at idx, from memory or from the cache."""
        idx = np.asarray(idx, dtype=int)
        if self.in_memory:
            return self.features[idx]
        return np.stack([self.cache.get(self.digests[i], 0) for i in idx]).astype(np.float32)


def backbone_cache_key(backbone, model_tag: str = "", dtype: str = "float32") -> dict:
    """Everything besides an image's bytes that changes its features. `model_tag` names a
    model other than backbone.model (e.g. the folded copy the site serves), whose features
    differ in the last digits; `dtype` float16 stores them at half the size."""
    if dtype not in DTYPES:
        raise UserError(f"--feature-dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    key = {"backbone": backbone.spec.name, "weights": backbone.weights_id, "cut": backbone.cut,
           "preprocessing": backbone.preprocessing.to_manifest(),
           # large images are decoded reduced (dataset.load_rgb); another Pillow may decode (JPEG's
           # IDCT, its draft scaling, colour conversions) to other pixels
           "decode": {"min_side": MIN_SIDE, "pillow": PIL.__version__}}
    if model_tag:
        key["model"] = model_tag
    if dtype != "float32":  # float32 keys stay as they were
        key["dtype"] = dtype
    return key


def view_key(digest: str, view: int) -> str:
    """The cache entry name of one view: view 0 is the image itself, 1.. its augmented copies."""
    return digest if view == 0 else f"{digest}-{view}"


class ViewCache:
    """The cache entries of one extraction, by (image digest, view). Augmented views live in a
    folder of their own, keyed by the augmentation's settings too."""

    def __init__(self, root: Path | None, key: dict, augment: Augmentation | None, shape: tuple[int, ...]):
        self.views = 1 + (augment.copies if augment else 0)
        self.shape = tuple(shape)
        self._caches = [FeatureCache(root, key)]
        if self.views > 1:
            self._caches.append(FeatureCache(root, {**key, "augment": augment.key()}))

    def get(self, digest: str, view: int) -> np.ndarray | None:
        return self._cache(view).get(view_key(digest, view), self.shape)

    def put(self, digest: str, view: int, features: np.ndarray) -> None:
        """The one place computed features are written, whichever runner computed them."""
        self._cache(view).put(view_key(digest, view), features)

    def stored(self, features: np.ndarray) -> np.ndarray:
        """Features as a later read returns them (rounded to the stored dtype), so a build
        that computes them trains on what one reading the cache would."""
        dtype = self._caches[0].dtype
        return features if dtype == np.float32 else features.astype(dtype).astype(np.float32)

    @property
    def model_dir(self) -> Path | None:
        """Where files derived from the model live (the converted .tflite): the image cache's folder."""
        return self._caches[0].dir

    def _cache(self, view: int) -> FeatureCache:
        return self._caches[0] if view == 0 else self._caches[1]


@dataclass
class Plan:
    """What an extraction has to do, found from the files' bytes and the cache alone."""
    samples: list[Sample]
    views: int                     # per sample: the image and its augmented copies
    shape: tuple[int, ...]         # of one view's features
    digests: dict[int, str] = field(default_factory=dict)  # sample -> sha256 of its bytes (readable files)
    first: dict[str, int] = field(default_factory=dict)    # digest -> the first sample with those bytes
    hits: dict[tuple[int, int], np.ndarray | None] = field(default_factory=dict)  # (sample, view) -> cached
    #                                                   features (None: checked, left in the cache)
    misses: dict[int, list[int]] = field(default_factory=dict)  # sample -> views to compute, in sample order
    skipped: list[Skipped] = field(default_factory=list)   # files that cannot be read

    @property
    def work(self) -> list[tuple[int, int]]:
        """The (sample, view) items left to compute, in order."""
        return [(i, v) for i, views in self.misses.items() for v in views]


@dataclass
class Computed:
    """What a runner computed for a plan's misses."""
    features: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (sample, view) -> features
    undecodable: dict[int, str] = field(default_factory=dict)  # sample -> why it does not decode, in order found


def extract(backbone, samples: list[Sample], cache_dir: Path | None, *, augment: Augmentation | None = None,
            batch_size: int = 32, strict: bool = False, verbose: int = 1, chunk: int = 256,
            model=None, model_tag: str = "", in_memory: bool = True, dtype: str = "float32",
            engine: str = "tf") -> Features:
    """Features of every decodable sample (and of its augmented views); undecodable ones are
    skipped, or refused if strict. Each distinct content (the same bytes under several names or
    classes) is decoded at most once, and only on a cache miss. `model` computes them instead of
    backbone.model (e.g. the folded copy the site serves); `model_tag` names it in the cache key,
    as its features differ in the last digits. `in_memory` False leaves the features in the cache
    (Features.cache, for streamed.py): memory then holds the index, never the features. `dtype`
    float16 stores the cache entries at half the size (features.DTYPES). `engine` "tflite" runs
    the model on TFLite's XNNPACK (tflite_engine.py) when that pays (CONVERT_FROM_VIEWS); it runs
    on TF otherwise, and when the model does not convert."""
    if not in_memory and cache_dir is None:
        raise UserError("features left in the cache need a cache; drop --no-cache (or --stream-features on)")
    if engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    cache = ViewCache(cache_dir, backbone_cache_key(backbone, model_tag, dtype), augment, backbone.feature_shape)
    planned = plan(samples, cache, strict=strict, keep=in_memory)
    model = backbone.model if model is None else model
    computed = compute(planned, model, backbone.preprocessing, cache,
                       augment=augment, batch_size=batch_size, chunk=chunk, strict=strict, verbose=verbose,
                       keep=in_memory, predict=_engine_predict(engine, model, cache, len(planned.work)))
    return assemble(planned, computed, strict=strict, cache=None if in_memory else cache)


def plan(samples: list[Sample], cache: ViewCache, *, strict: bool = False, keep: bool = True) -> Plan:
    """Digest every sample's file, keep the first of each content, and look its views up in the
    cache (anything with `views`, `shape` and `get(digest, view)`). Unreadable files are
    reported and skipped, or refused if strict. `keep` False checks each hit (its checksum: a
    corrupt entry is recomputed) without holding it."""
    out = Plan(list(samples), cache.views, tuple(cache.shape))
    for i, s in enumerate(samples):
        try:
            digest = file_digest(s.path)
        except OSError as e:
            _skip(out.skipped, s.path, f"cannot read file ({e.strerror or e})", strict)
            continue
        out.digests[i] = digest
        if out.first.setdefault(digest, i) != i:
            continue  # same bytes as an earlier sample: shares its features
        for v in range(out.views):
            hit = cache.get(digest, v)
            if hit is None:
                out.misses.setdefault(i, []).append(v)
            else:
                out.hits[i, v] = hit if keep else None
    return out


def compute(plan: Plan, model, prep, cache: ViewCache, *, augment: Augmentation | None = None,
            batch_size: int = 32, chunk: int = 256, strict: bool = False, verbose: int = 1,
            keep: bool = True, predict=None) -> Computed:
    """The in-process runner: decode each sample with misses once, build its views, run the model
    on `chunk` samples' views at a time in batches of `batch_size`, and write each result to the
    cache. Undecodable samples are reported and skipped, or refused if strict. `keep` False
    records only which views were computed (their features stay in the cache). `predict(x,
    batch_size)` runs the model instead of inference.predict_batches (another engine)."""
    import tf_keras as keras

    out = Computed()
    run = predict or (lambda x, b: predict_batches(model, x, b))
    pending = list(plan.misses)  # samples with views to compute, in order
    n_views = len(plan.work)
    bar = keras.utils.Progbar(n_views, unit_name="view", verbose=verbose) if n_views and verbose else None
    for start in range(0, len(pending), chunk):
        keys, pixels = [], []
        for i in pending[start:start + chunk]:
            path, digest = plan.samples[i].path, plan.digests[i]
            try:
                resized = decoded(path, prep)
            except UserError as e:
                out.undecodable[i] = _reason(e, path)
                _report(path, out.undecodable[i], strict)
                continue
            for v in plan.misses[i]:
                pixels.append(view_pixels(resized, digest, v, prep, augment))
                keys.append((i, v))
        if keys:
            for (i, v), f in zip(keys, run(np.stack(pixels), batch_size)):
                out.features[i, v] = cache.stored(f) if keep else None
                cache.put(plan.digests[i], v, f)
        if bar:
            bar.add(sum(len(plan.misses[i]) for i in pending[start:start + chunk]))
    return out


# Views from which a backbone not yet converted is converted to .tflite: about where XNNPACK's
# saving per view pays for the conversion (both in `make bench`: bench/xnnpack.py, the README's
# figures). Fewer views run on TF, unless the .tflite is already in the cache.
CONVERT_FROM_VIEWS = 10_000


def _engine_predict(engine: str, model, cache: ViewCache, views: int):
    """predict(x, batch_size) on `engine` for `views` views to compute; None for TF's own path
    (engine "tf", nothing to compute, or too few views to pay for a conversion)."""
    if engine == "tf" or not views:
        return None
    if views < CONVERT_FROM_VIEWS and not tflite_engine.is_cached(model, cache.model_dir):
        return None
    return tflite_engine.checked_runner(model, cache.model_dir)


def assemble(plan: Plan, computed: Computed, *, strict: bool = False, cache: ViewCache | None = None) -> Features:
    """The Features of the plan's samples, in their order: a later copy of some bytes shares
    the first copy's features, or its skip if those bytes do not decode (reported here, or
    refused if strict). `computed` counts the views the model ran on, `cached` the rest. With
    `cache`, the features stay there (Features.cache) and only the index is assembled."""
    got = {**plan.hits, **computed.features}
    bad = dict(computed.undecodable)
    skipped = plan.skipped + [Skipped(plan.samples[i].path, reason) for i, reason in bad.items()]
    views = range(plan.views)
    for i, d in plan.digests.items():
        j = plan.first[d]
        if j in bad and i != j:
            bad[i] = bad[j]
            _skip(skipped, plan.samples[i].path, bad[i], strict)
        elif i != j:
            for v in views:
                got[i, v] = got[j, v]
    kept = [i for i in sorted(plan.digests) if i not in bad]
    stack = lambda v: np.stack([got[i, v] for i in kept]) if kept else np.zeros((0, *plan.shape), np.float32)
    ran = sum(len(vs) for i, vs in plan.misses.items() if i not in bad)
    if cache is not None:
        return Features([plan.samples[i] for i in kept], None, [plan.digests[i] for i in kept], None, skipped,
                        computed=ran, cached=len(kept) * plan.views - ran, cache=cache)
    return Features([plan.samples[i] for i in kept], stack(0), [plan.digests[i] for i in kept],
                    np.stack([stack(v) for v in views[1:]]) if plan.views > 1 else None, skipped,
                    computed=ran, cached=len(kept) * plan.views - ran)


def decoded(path: Path, prep) -> np.ndarray:
    """Resized [0, 255] pixels of one image file; UserError if it does not decode."""
    return resize(load_rgb(path), prep)


def view_pixels(resized: np.ndarray, digest: str, view: int, prep, augment: Augmentation | None) -> np.ndarray:
    """The backbone's input for one view of a decoded image. An augmented view is seeded by the
    image's content and view number, so any runner computes the same one."""
    return normalize(resized if view == 0 else augment_image(resized, augment.params(digest, view)), prep)


def load_pixels(samples: list[Sample], prep) -> np.ndarray:
    """Resized [0, 255] pixels of samples already known to decode (for fine-tuning)."""
    return np.stack([decoded(s.path, prep) for s in samples])


def _reason(e: UserError, path: Path) -> str:
    """The message without its leading path (which may itself hold ': ')."""
    msg, prefix = str(e), f"{path}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


def _skip(skipped: list[Skipped], path: Path, reason: str, strict: bool) -> None:
    _report(path, reason, strict)
    skipped.append(Skipped(path, reason))


def _report(path: Path, reason: str, strict: bool) -> None:
    if strict:
        raise UserError(f"{path}: {reason} (--strict refuses bad images; drop it to skip them)")
    print(f"warning: skipping {path}: {reason}", file=sys.stderr)

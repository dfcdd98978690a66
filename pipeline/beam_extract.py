"""Feature extraction on Apache Beam: the build's extraction step for datasets past one machine.

It fills the same feature cache the in-process build reads (features.ViewCache), with the same
entries (every view `features.plan` would ask for), from the same code: `features.decoded` and
`view_pixels` for the inputs, `ViewCache.put` (atomic) for the writes. The shape:

  list (fileio MatchAll / MatchFiles, so gs:// and s3:// work where Beam's extra is installed)
  -> ReadMatches -> sha256 -> group by digest (duplicates share one entry) -> drop cached views
  -> decode + resize + views -> BatchElements + RunInference (BackboneHandler: the served
  backbone, written once as a file, loaded once per worker) -> ViewCache.put

The entries of a project zip (dataset.scan's archive.ZipMember samples) enter beside the listed
files, read in place through dataset.as_source, as the in-process build reads them.
A rerun computes only what is missing, so a killed run loses at most its unwritten views.
Beam is imported by this module alone, which nothing imports unless Beam is asked for.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from . import features
from .archive import ZipMember
from .augment import Augmentation
from .dataset import IMAGE_EXTENSIONS
from .errors import UserError
from .preprocess import Preprocessing

# Beam's default (DirectRunner) first tries to download its Prism binary; this one runs in-process,
# or in N local processes with --direct_num_workers N --direct_running_mode multi_processing.
DEFAULT_RUNNER = "FnApiRunner"
NAMESPACE = "tfjs_transfer"
COUNTERS = ("files", "duplicates", "cached", "computed", "undecodable")

# RunInference in Beam 2.77 finds the `resource` module only beside torch, and without it warns on
# the root logger on every bundle that it cannot measure memory: noise for this pipeline.
logging.getLogger().addFilter(lambda record: not record.getMessage().startswith("Resource module is not available"))


@dataclass(frozen=True)
class Job:
    """What every worker needs (pickled to it): the cache's place and key, the views, the
    preprocessing and the served backbone's file."""
    cache_root: str
    key: dict
    augment: Augmentation | None
    shape: tuple[int, ...]
    prep: Preprocessing
    model_path: str
    batch_size: int = 32
    report: bool = True            # print dataset.py's "warning: skipping" line per undecodable file

    def cache(self) -> features.ViewCache:
        return features.ViewCache(Path(self.cache_root), self.key, self.augment, self.shape)


def run(bb, paths: Sequence[str | ZipMember], cache_dir: Path, model, model_tag: str, augment: Augmentation | None,
        options: Sequence[str] = (), *, batch_size: int = 32, report: bool = True,
        dtype: str = "float32") -> dict[str, int]:
    """Fill `cache_dir` with the features of `paths` (files, glob patterns such as
    gs://bucket/images/**, or entries of a local zip) through `model`, on the Beam runner `options` name (default
    FnApiRunner). Returns Beam's counters: files, duplicates, cached/computed views, undecodable files."""
    key = features.backbone_cache_key(bb, model_tag, dtype)
    job = Job(str(cache_dir), key, augment, tuple(bb.feature_shape), bb.preprocessing,
              save_model(model, features.FeatureCache(Path(cache_dir), key).dir), batch_size, report)
    job.cache()  # the cache folders and their key.json, once, before any worker
    pipeline_options = PipelineOptions(list(options))
    if not pipeline_options.view_as(StandardOptions).runner:
        pipeline_options.view_as(StandardOptions).runner = DEFAULT_RUNNER
    p = beam.Pipeline(options=pipeline_options)
    build_pipeline(p, paths, job)
    result = p.run()
    result.wait_until_finish()
    counts = dict.fromkeys(COUNTERS, 0)
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        counts[c.key.metric.name] += c.committed or 0
    return counts


def build_pipeline(p, paths: Sequence[str | ZipMember], job: Job):
    """The extraction's transforms on pipeline `p`; returns the written (digest, view) keys."""
    patterns = [x for x in paths if not isinstance(x, ZipMember)]
    members = [x for x in paths if isinstance(x, ZipMember)]
    digested = []
    if patterns or not members:
        listed = (p | "Patterns" >> beam.Create(patterns) | "List" >> fileio.MatchAll()
                  | "Images" >> beam.Filter(lambda m: os.path.splitext(m.path)[1].lower() in IMAGE_EXTENSIONS))
        digested.append(listed | "Read" >> fileio.ReadMatches() | "Digest" >> beam.Map(_digest))
    if members:
        digested.append(p | "Members" >> beam.Create(members) | "DigestMember" >> beam.Map(_digest_member))
    return (digested | "AllFiles" >> beam.Flatten()
            | "SameBytes" >> beam.GroupByKey()
            | "DropCached" >> beam.ParDo(_Missing(job))
            | "Views" >> beam.ParDo(_Views(job))
            | "Backbone" >> RunInference(KeyedModelHandler(BackboneHandler(job.model_path, job.batch_size)))
            | "Write" >> beam.ParDo(_Write(job)))


def local_patterns(paths: Iterable[os.PathLike | str | ZipMember]) -> list[str | ZipMember]:
    """Beam match patterns naming exactly these files (brackets, * and ? in names escaped); a
    zip's entries stay as they are (build_pipeline reads them in place)."""
    import glob

    return [p if isinstance(p, ZipMember) else glob.escape(str(p)) for p in paths]


def save_model(model, folder: Path) -> str:
    """The served backbone as an .h5 in the cache's key folder, written once (temp + rename), for
    every worker to load. Its folder's key already names the weights, cut and folding."""
    path = Path(folder) / "backbone.h5"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".h5")
        os.close(fd)
        try:
            model.save(tmp, include_optimizer=False)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return str(path)


class BackboneHandler(ModelHandler):
    """RunInference's model handler for a tf_keras model file: loaded once per worker, run with
    the in-process path's fixed-size batches (inference.predict_batches)."""

    def __init__(self, model_path: str, batch_size: int):
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)  # full batches, as in-process
        self._model_path = model_path
        self._batch_size = batch_size

    def load_model(self):
        from .tfquiet import import_tensorflow_quietly

        import_tensorflow_quietly()
        import tf_keras as keras

        return keras.models.load_model(self._model_path, compile=False)

    def run_inference(self, batch, model, inference_args=None):
        from .inference import predict_batches

        return list(predict_batches(model, np.stack(batch), self._batch_size))

    def get_num_bytes(self, batch) -> int:
        return sum(x.nbytes for x in batch)


def _digest(readable) -> tuple[str, str]:
    h = hashlib.sha256()
    with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest(), readable.metadata.path


def _digest_member(member: ZipMember) -> tuple[str, ZipMember]:
    """(sha256, entry) of a zip entry: features.file_digest, as the in-process build digests it."""
    return features.file_digest(member), member


class _Missing(beam.DoFn):
    """(digest, paths) -> (digest, paths, views not in the cache), if any."""

    def __init__(self, job: Job):
        self.job = job
        self.files = Metrics.counter(NAMESPACE, "files")
        self.duplicates = Metrics.counter(NAMESPACE, "duplicates")
        self.cached = Metrics.counter(NAMESPACE, "cached")

    def setup(self):
        self.cache = self.job.cache()

    def process(self, element):
        digest, paths = element
        paths = sorted(paths, key=str)
        self.files.inc(len(paths))
        self.duplicates.inc(len(paths) - 1)
        missing = [v for v in range(self.cache.views) if self.cache.get(digest, v) is None]
        self.cached.inc(self.cache.views - len(missing))
        if missing:
            yield digest, paths, missing


class _Views(beam.DoFn):
    """Decode one file per content and yield ((digest, view), backbone input) per missing view;
    an undecodable content is counted and reported once per file holding it."""

    def __init__(self, job: Job):
        self.job = job
        self.undecodable = Metrics.counter(NAMESPACE, "undecodable")

    def process(self, element):
        digest, paths, views = element
        try:
            resized = _decoded(paths[0], self.job.prep)
        except UserError as e:
            self.undecodable.inc(len(paths))
            if self.job.report:
                reason = features._reason(e, paths[0] if isinstance(paths[0], ZipMember) else Path(paths[0]))
                for p in paths:
                    print(f"warning: skipping {p}: {reason}", file=sys.stderr)
            return
        for v in views:
            yield (digest, v), features.view_pixels(resized, digest, v, self.job.prep, self.job.augment)


def _decoded(path: str | ZipMember, prep: Preprocessing) -> np.ndarray:
    """features.decoded for a local path or zip entry; a remote file is copied to a local temporary first."""
    if isinstance(path, ZipMember):
        return features.decoded(path, prep)
    if "://" not in path:
        return features.decoded(Path(path), prep)
    with tempfile.TemporaryDirectory() as d:
        local = Path(d) / ("image" + os.path.splitext(path)[1])
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as src:
            local.write_bytes(src.read())
        try:
            return features.decoded(local, prep)
        except UserError as e:
            raise UserError(f"{path}: {features._reason(e, local)}") from None


class _Write(beam.DoFn):
    """Each computed view into the cache (ViewCache.put: temp file + rename)."""

    def __init__(self, job: Job):
        self.job = job
        self.computed = Metrics.counter(NAMESPACE, "computed")

    def setup(self):
        self.cache = self.job.cache()

    def process(self, element):
        (digest, view), result = element
        self.cache.put(digest, view, getattr(result, "inference", result))
        self.computed.inc()
        yield digest, view


def extract_command(cfg, data: str, options: Sequence[str]) -> dict[str, int]:
    """`tfjs-transfer extract`: the build's steps 1-3 (dataset, served backbone, features) on
    Beam, filling cfg.cache_dir and nothing else. A local folder is listed by dataset.scan, as the
    build lists it; a URL (gs://..., s3://...) by Beam, every image file under it."""
    from . import backbones, dataset, heads, serving
    from .build import _guess_backbone, log, quiet_tensorflow

    recipe = heads.resolve_recipe(cfg.recipe, **cfg.recipe_overrides)
    if "://" in data:
        samples, paths = [], [data.rstrip("/") + "/**"]
    else:
        ds = dataset.scan(data)
        for s in ds.skipped:
            print(f"warning: skipping {s.path}: {s.reason}", file=sys.stderr)
        samples, paths = ds.samples, local_patterns(s.path for s in ds.samples)
        log(f"dataset: {data} ({ds.layout} layout), {len(samples)} images", cfg)
    weights_id = backbones.weights_fingerprint(cfg.weights, cfg.seed, cfg.backbone)
    if cfg.init_from:
        weights_id += "+init-" + backbones.weights_fingerprint(cfg.init_from)
    quiet_tensorflow()
    bb = backbones.load_backbone(cfg.backbone or _guess_backbone(cfg.weights), cfg.weights, cfg.cut,
                                 fit=cfg.fit, seed=cfg.seed, weights_id=weights_id)
    if cfg.init_from:
        backbones.init_from(bb, cfg.init_from)
    check = serving.check_pixels(samples, bb.preprocessing)
    served = serving.served_backbone(bb.model, check, cfg.quantize, cfg.fold_batch_norms)
    extractor, tag = served.feature_model(bb.model)
    return run(bb, paths, Path(cfg.cache_dir), extractor, tag, recipe.augmentation(cfg.flip), options,
               dtype=cfg.feature_dtype)


def describe(counts: dict[str, int]) -> str:
    return (f"{counts['computed']} views computed, {counts['cached']} from cache, {counts['files']} files "
            f"({counts['duplicates']} duplicates, {counts['undecodable']} undecodable)")

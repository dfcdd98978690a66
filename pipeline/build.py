"""The whole build, top-down: data -> backbone -> features -> head -> convert -> site.

`build(BuildConfig(...))` is what `tfjs-transfer build` and `make build` run. Each
step lives in its own module; this one only tells the story.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import (__version__, backbones, convert, dataset, features, heads, manifest, page, preprocess, serving, site,
               streamed, training)
from .errors import UserError


@dataclass
class BuildConfig:
    data: Path | None              # None only with backbone_only
    weights: str
    out: Path
    backbone: str | None = None
    cut: str | None = None
    recipe: str = "default"
    recipe_overrides: dict = field(default_factory=dict)  # Recipe field -> value (heads.resolve_recipe)
    init_from: str | None = None
    flip: bool = False
    cv_folds: int = 0              # K of K-fold cross-validation (0: none)
    quantize: str | None = None
    fold_batch_norms: bool = True  # fold batch-norms and paddings into convs for serving (fold.py)
    fit: str = "stretch"
    cache_dir: Path | None = field(default_factory=features.default_cache_dir)
    strict: bool = False
    seed: int = 0
    verbose: int = 1
    web_dist: Path | None = None   # None: the checkout's web/dist, else the packaged page (page.py)
    force: bool = False
    backbone_only: bool = False    # no data, no head: the site the page opens into an empty project
    runner: str = "inprocess"      # "beam": extract features on Apache Beam (beam_extract.py), then as usual
    beam_options: list[str] = field(default_factory=list)  # Beam pipeline options (e.g. --direct_num_workers 2)
    stream_features: str = "auto"  # train the head from the cache through tf.data: auto|on|off (streamed.wanted)
    feature_dtype: str = "float32"  # the cache entries' dtype: float32, or float16 at half the size
    site_images_per_class: int = 50  # the images served to the page: at most this many per class (0: all)
    engine: str = "tflite"         # features on TFLite's XNNPACK (tflite_engine.py), or "tf"; fine-tuning uses TF

    def fingerprint(self, ds: dataset.Dataset | None, weights_id: str) -> str:
        """Everything the site depends on: settings, image bytes, weights, page bundle, our version."""
        settings = {k: v for k, v in vars(self).items()
                    if k not in ("out", "cache_dir", "verbose", "force", "runner", "beam_options", "engine")}
        overrides = {k: v for k, v in settings.pop("recipe_overrides").items() if v is not None}
        parts = {
            "settings": {k: str(v) for k, v in settings.items()},
            "recipe_overrides": {k: str(v) for k, v in overrides.items()},
            "labels": ds.labels if ds else [],  # a project's class order is its own
            "images": [(str(s.path.relative_to(ds.root)), s.label, s.split, features.file_digest(s.path))
                       for s in (ds.samples if ds else [])],
            "weights": weights_id,
            "web": sorted((name, features.file_digest(p)) for name, p in page.files(page.find_web_dist(self.web_dist))),
            "version": __version__,
            "code": manifest.code_version(),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def log(msg: str, cfg: BuildConfig) -> None:
    if cfg.verbose:
        print(msg, flush=True)


def quiet_tensorflow() -> None:
    """Keep the build's output to what the user needs: our lines and Keras progress."""
    import logging
    import warnings

    from .tfquiet import import_tensorflow_quietly

    import_tensorflow_quietly()

    warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save\\(\\)`")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def build(cfg: BuildConfig) -> dict:
    """Build the site at cfg.out (and its Python-side models beside it); returns the manifest.
    Raises UserError on bad input. A second build of the same OUT waits for the first, then
    finds its site up to date or replaces it whole: never a mix of the two."""
    cfg.out = Path(cfg.out)
    cfg.data = None if cfg.data is None else Path(cfg.data)
    if cfg.backbone_only and cfg.data is not None:
        raise UserError("--backbone-only builds a site without data or head; drop --data (or --backbone-only)")
    if not cfg.backbone_only and cfg.data is None:
        raise UserError("--data is required (a folder of labelled images or a project zip), "
                        "unless --backbone-only")
    if cfg.backbone_only and cfg.cv_folds:
        raise UserError("--folds needs --data; a --backbone-only site has no images to cross-validate on")
    site.check_output(cfg.out)
    with site.exclusive(cfg.out):
        return _build_backbone_only(cfg) if cfg.backbone_only else _build(cfg)


def _build(cfg: BuildConfig) -> dict:
    t0 = time.perf_counter()
    timings = {}
    if cfg.runner == "beam":
        if cfg.cache_dir is None:
            raise UserError("--runner beam fills the feature cache, which --no-cache turns off; drop one of them")
        beam_extract_module()  # a missing apache-beam is reported now, not after the backbone loads
    if cfg.quantize not in (None, *convert.QUANTIZATIONS):
        raise UserError(f"--quantize must be one of {', '.join(convert.QUANTIZATIONS)}")
    recipe = heads.resolve_recipe(cfg.recipe, **cfg.recipe_overrides)
    augmentation = recipe.augmentation(cfg.flip)
    streamed.wanted(cfg.stream_features, 0, (), has_cache=cfg.cache_dir is not None)  # refuse before any work
    if cfg.site_images_per_class < 0:
        raise UserError(f"--site-images-per-class must be 0 (all) or more, got {cfg.site_images_per_class}")

    # 1. dataset
    ds = dataset.scan(cfg.data)
    log(f"dataset: {cfg.data} ({ds.layout} layout), {len(ds.samples)} images, {len(ds.labels)} classes: "
        f"{', '.join(ds.labels)}", cfg)
    for s in ds.skipped:
        print(f"warning: skipping {s.path}: {s.reason}", file=sys.stderr)
    weights_id = _weights_id(cfg)
    fingerprint = cfg.fingerprint(ds, weights_id)
    previous = _up_to_date(cfg, fingerprint, "images, weights, settings and page")
    if previous:
        return previous
    quiet_tensorflow()

    # 2. backbone
    bb, init_report, timings["backbone_load_s"] = _load_backbone(cfg, weights_id)
    log(f"backbone: {bb.spec.name} cut at {bb.cut} -> features {bb.feature_shape}", cfg)

    # 3. features (undecodable images are found here), from the backbone as it is served,
    # so the head trains on the features the page will compute
    t = time.perf_counter()
    stream, why = streamed.wanted(cfg.stream_features, len(ds.samples) * (1 + recipe.augment_copies),
                                  bb.feature_shape, has_cache=cfg.cache_dir is not None,
                                  pixel_bytes=len(ds.samples) * bb.preprocessing.height * bb.preprocessing.width * 3 * 4
                                  if recipe.fine_tune_epochs else 0)
    log(f"head training features: {why}", cfg)
    check = serving.check_pixels(ds.samples, bb.preprocessing)
    served = serving.served_backbone(bb.model, check, cfg.quantize, cfg.fold_batch_norms)
    extractor, tag = served.feature_model(bb.model)
    if cfg.runner == "beam":  # fills the cache, which the in-process step below then reads
        beam = beam_extract_module()
        counts = beam.run(bb, beam.local_patterns(s.path for s in ds.samples), Path(cfg.cache_dir), extractor, tag,
                          augmentation, cfg.beam_options, report=False,  # extract below reports bad files
                          dtype=cfg.feature_dtype)
        log(f"features on Beam: {beam.describe(counts)}", cfg)
    feats = features.extract(bb, ds.samples, None if cfg.cache_dir is None else Path(cfg.cache_dir),
                             augment=augmentation, strict=cfg.strict, verbose=cfg.verbose,
                             model=extractor, model_tag=tag, in_memory=not stream, dtype=cfg.feature_dtype,
                             engine="tf" if recipe.fine_tune_epochs else cfg.engine)
    timings["features_s"] = time.perf_counter() - t
    log(f"features: {feats.computed} computed, {feats.cached} from cache ({1 + recipe.augment_copies} views an image), {len(feats.skipped)} skipped "
        f"({timings['features_s']:.1f}s)", cfg)
    ds = ds.without(feats.skipped)
    ds.check_trainable()

    # 4. head (and, for fine-tuning recipes, the backbone with it)
    y = np.array([ds.labels.index(s.label) for s in feats.samples])
    split_of = np.array([s.split for s in feats.samples])
    train_idx, valid_idx, split_note = heads.validation_split(y, split_of, recipe.validation_split, cfg.seed)
    test_idx = np.flatnonzero(split_of == "test")
    log(f"head: recipe '{recipe.name}' ({recipe.description}); {len(train_idx)} train, "
        f"{len(valid_idx)} validation images{split_note}", cfg)
    trainer = training.make_trainer(recipe, bb, feats, y, len(ds.labels), augmentation)
    cross_validation = None
    if cfg.cv_folds:
        t = time.perf_counter()
        cross_validation = training.cross_validate(trainer, y, np.flatnonzero(split_of != "test"), cfg.cv_folds,
                                                   cfg.seed, verbose=cfg.verbose)
        timings["cross_validation_s"] = time.perf_counter() - t
        log(f"cross-validation: accuracy {cross_validation['accuracy_mean']:.3f} +- "
            f"{cross_validation['accuracy_std']:.3f} over {cfg.cv_folds} folds", cfg)
    t = time.perf_counter()
    result = trainer.train(train_idx, valid_idx, cfg.seed, 2 if cfg.verbose else 0)
    timings["head_training_s"] = time.perf_counter() - t
    if len(test_idx):
        result.metrics["test_accuracy"] = trainer.accuracy(result, test_idx)
        result.metrics["test_count"] = int(len(test_idx))
    log("metrics: " + ", ".join(f"{k} {v:.3f}" for k, v in result.metrics.items() if "accuracy" in k), cfg)
    if result.collapsed:
        print(f"warning: head training collapsed after {result.attempts} attempts (training accuracy at "
              "chance); try --recipe default or more epochs", file=sys.stderr)

    # 5 + 6. convert and assemble, atomically
    t = time.perf_counter()
    with site.staging(cfg.out) as staged:
        tmp = staged.site
        web_files = site.copy_web(page.find_web_dist(cfg.web_dist), tmp)
        if trainer.trains_backbone:  # fold (or equalize) the tuned weights
            served = serving.served_backbone(bb.model, check, cfg.quantize, cfg.fold_batch_norms)
        if served.describe():
            log(f"served backbone: {served.describe()}", cfg)
        # for predict/evaluate only, so beside the site; the optimizer's state (Adam's two
        # moments: twice the weights) is for resuming training, which nothing here does
        python_path = site.python_path_from_site(cfg.out)
        served.model.save(staged.python / "backbone.h5", include_optimizer=False)
        result.model.save(staged.python / "head.h5", include_optimizer=False)
        manifest.write_python(staged.python, fingerprint, ["backbone.h5", "head.h5"])
        bb_info = convert.to_tfjs(served.model, tmp / "models" / "backbone", cfg.quantize)
        head_info = convert.to_tfjs(result.model, tmp / "models" / "head", cfg.quantize)
        head_info["roundtrip_max_abs_error"] = convert.roundtrip_error(result.model, tmp / "models/head/model.json",
                                                                       feats.load(range(min(8, len(feats.samples)))))
        bb_info["roundtrip_max_abs_error"] = convert.roundtrip_error(served.model, tmp / "models/backbone/model.json",
                                                                     check)
        images = site.write_images(feats.samples, ds.labels, tmp, heads.image_roles(split_of, valid_idx),
                                   per_class=cfg.site_images_per_class, seed=cfg.seed)
        timings["convert_and_site_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0
        written = manifest.compose(
            fingerprint=fingerprint, labels=ds.labels, preprocessing=bb.preprocessing,
            backbone=manifest.backbone_section(bb, cfg.weights, weights_id, init_report, served, bb_info,
                                               keras_path=f"{python_path}/backbone.h5"),
            head=manifest.head_section(recipe, heads.head_layers(recipe, len(ds.labels)), result.model, head_info,
                                       keras_path=f"{python_path}/head.h5"),
            training=manifest.training_section(recipe, result, cross_validation, augmentation),
            dataset=manifest.dataset_section(cfg.data, ds, len(feats.samples), split_of),
            images_count=len(images["images"]), web_files=web_files, timings=timings)
        manifest.write(tmp, written)
    log(f"site: {cfg.out} (backbone {bb_info['bytes'] / 1e6:.2f} MB, head {head_info['bytes'] / 1e6:.2f} MB, "
        f"{len(images['images'])} images) in {time.perf_counter() - t0:.1f}s; Python-side models in "
        f"{site.python_dir(cfg.out)}", cfg)
    return written


def _build_backbone_only(cfg: BuildConfig) -> dict:
    """The page, the served backbone and a manifest with no labels and no head: the recipe's
    head layer specs (output units null) and hyper-parameters, for the page to build a head
    for the classes a person makes in it."""
    t0 = time.perf_counter()
    if cfg.quantize not in (None, *convert.QUANTIZATIONS):
        raise UserError(f"--quantize must be one of {', '.join(convert.QUANTIZATIONS)}")
    recipe = heads.resolve_recipe(cfg.recipe, **cfg.recipe_overrides)
    augmentation = recipe.augmentation(cfg.flip)
    weights_id = _weights_id(cfg)
    fingerprint = cfg.fingerprint(None, weights_id)
    previous = _up_to_date(cfg, fingerprint, "weights, settings and page")
    if previous:
        return previous
    quiet_tensorflow()
    bb, init_report, load_s = _load_backbone(cfg, weights_id)
    timings = {"backbone_load_s": load_s}
    log(f"backbone only: {bb.spec.name} cut at {bb.cut} -> features {bb.feature_shape}; no data, no head", cfg)
    # no images to check the serving rewrite on: seeded noise exercises every channel as well
    noise = np.random.default_rng(cfg.seed).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    check = np.stack([preprocess.prepare(img, bb.preprocessing) for img in noise])
    served = serving.served_backbone(bb.model, check, cfg.quantize, cfg.fold_batch_norms)
    if served.describe():
        log(f"served backbone: {served.describe()}", cfg)
    t = time.perf_counter()
    with site.staging(cfg.out) as staged:
        tmp = staged.site
        web_files = site.copy_web(page.find_web_dist(cfg.web_dist), tmp)
        served.model.save(staged.python / "backbone.h5", include_optimizer=False)
        manifest.write_python(staged.python, fingerprint, ["backbone.h5"])
        bb_info = convert.to_tfjs(served.model, tmp / "models" / "backbone", cfg.quantize)
        bb_info["roundtrip_max_abs_error"] = convert.roundtrip_error(served.model, tmp / "models/backbone/model.json",
                                                                     check)
        timings["convert_and_site_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0
        written = manifest.compose_backbone_only(
            fingerprint=fingerprint, preprocessing=bb.preprocessing,
            backbone=manifest.backbone_section(bb, cfg.weights, weights_id, init_report, served, bb_info,
                                               keras_path=f"{site.python_path_from_site(cfg.out)}/backbone.h5"),
            recipe=recipe, head_layers=heads.head_layers(recipe, None), augmentation=augmentation,
            web_files=web_files, timings=timings)
        manifest.write(tmp, written)
    log(f"site: {cfg.out} (backbone {bb_info['bytes'] / 1e6:.2f} MB, no head: the page starts an empty "
        f"project) in {time.perf_counter() - t0:.1f}s", cfg)
    return written


def beam_extract_module():
    """beam_extract, whose import needs the optional apache-beam: a UserError saying how to get it."""
    import logging

    logging.disable(logging.WARNING)  # Beam's import warns on the root logger about GCP clients it does not need
    try:
        from . import beam_extract
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "apache_beam":
            raise
        raise UserError("apache-beam is not installed; install the beam extra: pip install 'tfjs-transfer[beam]'") from None
    finally:
        logging.disable(logging.NOTSET)
    return beam_extract


def _weights_id(cfg: BuildConfig) -> str:
    """What identifies the backbone's weights (and those it is initialised from)."""
    weights_id = backbones.weights_fingerprint(cfg.weights, cfg.seed, cfg.backbone)
    if cfg.init_from:
        weights_id += "+init-" + backbones.weights_fingerprint(cfg.init_from)
    return weights_id


def _up_to_date(cfg: BuildConfig, fingerprint: str, same: str) -> dict | None:
    """The site's manifest if the site and its Python-side models were built from `fingerprint`
    (then nothing needs doing), else None."""
    previous = manifest.read(cfg.out)
    python = manifest.read_python(site.python_dir(cfg.out)) or {}
    if not cfg.force and previous and previous.get("fingerprint") == fingerprint == python.get("fingerprint"):
        log(f"site: {cfg.out} is up to date (same {same}; --force rebuilds)", cfg)
        return previous
    return None


def _load_backbone(cfg: BuildConfig, weights_id: str):
    """The cut backbone, the report of --init-from's by-name weights (or None), and the seconds taken."""
    t = time.perf_counter()
    bb = backbones.load_backbone(cfg.backbone or _guess_backbone(cfg.weights), cfg.weights, cfg.cut,
                                 fit=cfg.fit, seed=cfg.seed, weights_id=weights_id)
    init_report = None
    if cfg.init_from:
        init_report = backbones.init_from(bb, cfg.init_from)
        log(f"init-from {cfg.init_from}: {len(init_report['matched'])} layers matched by name, "
            f"{len(init_report['shape_mismatch'])} with other shapes, {len(init_report['not_found'])} not found", cfg)
    return bb, init_report, time.perf_counter() - t


def _guess_backbone(weights: str) -> str | None:
    if weights in ("imagenet", "none"):
        return None
    return backbones.spec_for_file(weights)

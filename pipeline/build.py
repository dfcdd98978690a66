"""The whole build, top-down: data -> features -> head -> conversion -> site.

`build(BuildConfig(...))` is what `tfjs-transfer build` and `make build` run. Each
step lives in its own module; this one only tells the story and writes the manifest.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import (__version__, augment, backbones, convert, dataset, features, finetune, fold, heads, preprocess,
               quantize, site)
from .errors import UserError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEB_DIST = ROOT / "web" / "dist"
# Folding is exact in real arithmetic; float32 rounding moved MobileNet's features (values
# up to 6) by 7.6e-4 on the logos (relative 1.3e-4) and by up to 6.9e-3 (relative 1.1e-3) on
# flat-colour test images, where large batch-norm scales amplify it. A folding bug moves
# them by the order of the values themselves; relative 1e-2 tells the two apart.
FOLD_TOLERANCE = 1e-2


@dataclass
class BuildConfig:
    data: Path
    weights: str
    out: Path
    backbone: str | None = None
    cut: str | None = None
    recipe: str = "default"
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    validation_split: float | None = None
    augment_copies: int | None = None
    init_from: str | None = None
    fine_tune_from: str | None = None
    fine_tune_epochs: int | None = None
    fine_tune_learning_rate: float | None = None
    early_stopping: int | None = None
    flip: bool = False
    folds: int = 0
    quantize: str | None = None
    fold: bool = True              # fold batch-norms and paddings into convs for serving (fold.py)
    fit: str = "stretch"
    cache_dir: Path | None = field(default_factory=features.default_cache_dir)
    strict: bool = False
    seed: int = 0
    verbose: int = 1
    web_dist: Path = DEFAULT_WEB_DIST
    force: bool = False

    def fingerprint(self, ds: dataset.Dataset, weights_id: str) -> str:
        """Everything the site depends on: settings, image bytes, weights, page bundle, our version."""
        settings = {k: v for k, v in vars(self).items() if k not in ("out", "cache_dir", "verbose", "force")}
        parts = {
            "settings": {k: str(v) for k, v in settings.items()},
            "images": [(str(s.path.relative_to(ds.root)), s.label, s.split, features.file_digest(s.path))
                       for s in ds.samples],
            "weights": weights_id,
            "web": sorted((p.name, features.file_digest(p)) for p in Path(self.web_dist).glob("*") if p.is_file()),
            "version": __version__,
            "code": _code_version(),
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
    """Build the site at cfg.out; returns the manifest. Raises UserError on bad input."""
    t0 = time.perf_counter()
    timings = {}
    cfg.out, cfg.data = Path(cfg.out), Path(cfg.data)
    site.check_output(cfg.out)
    if cfg.quantize not in (None, *convert.QUANTIZATIONS):
        raise UserError(f"--quantize must be one of {', '.join(convert.QUANTIZATIONS)}")
    recipe = heads.resolve_recipe(cfg.recipe, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                  learning_rate=cfg.learning_rate, validation_split=cfg.validation_split,
                                  augment_copies=cfg.augment_copies, fine_tune_from=cfg.fine_tune_from,
                                  fine_tune_epochs=cfg.fine_tune_epochs,
                                  fine_tune_learning_rate=cfg.fine_tune_learning_rate,
                                  early_stopping=cfg.early_stopping)
    if recipe.fine_tune_epochs and recipe.fine_tune_from is None:
        recipe = replace(recipe, fine_tune_from=-12)
    augmentation = (augment.Augmentation(copies=recipe.augment_copies, rotation_degrees=recipe.rotation_degrees,
                                         zoom=recipe.zoom, shift=recipe.shift, flip=cfg.flip)
                    if recipe.augment_copies or recipe.fine_tune_epochs else None)

    # 1. dataset
    ds = dataset.scan(cfg.data)
    log(f"dataset: {cfg.data} ({ds.layout} layout), {len(ds.samples)} images, {len(ds.labels)} classes: "
        f"{', '.join(ds.labels)}", cfg)
    for s in ds.skipped:
        print(f"warning: skipping {s.path}: {s.reason}", file=sys.stderr)
    weights_id = backbones.weights_fingerprint(cfg.weights, cfg.seed)
    if cfg.init_from:
        weights_id += "+init-" + backbones.weights_fingerprint(cfg.init_from)
    fingerprint = cfg.fingerprint(ds, weights_id)
    previous = site.read_manifest(cfg.out)
    if not cfg.force and previous and previous.get("fingerprint") == fingerprint:
        log(f"site: {cfg.out} is up to date (same images, weights, settings and page; --force rebuilds)", cfg)
        return previous
    quiet_tensorflow()

    # 2. backbone
    t = time.perf_counter()
    bb = backbones.load_backbone(cfg.backbone or _guess_backbone(cfg.weights), cfg.weights, cfg.cut,
                                 fit=cfg.fit, seed=cfg.seed, weights_id=weights_id)
    init_report = None
    if cfg.init_from:
        init_report = backbones.init_from(bb, cfg.init_from)
        log(f"init-from {cfg.init_from}: {len(init_report['matched'])} layers matched by name, "
            f"{len(init_report['shape_mismatch'])} with other shapes, {len(init_report['not_found'])} not found", cfg)
    timings["backbone_load_s"] = time.perf_counter() - t
    log(f"backbone: {bb.spec.name} cut at {bb.cut} -> features {bb.feature_shape}", cfg)

    # 3. features (undecodable images are found here), from the backbone as it is served:
    # the head trains on the features the page will compute, and the folded model runs
    # 1.35-1.7x faster here too
    t = time.perf_counter()
    check = _check_pixels(ds.samples, bb.preprocessing)
    served, fold_report, equalize_report = _served_backbone(bb, check, cfg)
    extractor = served if fold_report and fold_report.folded else bb.model
    feats = features.extract(bb, ds.samples, None if cfg.cache_dir is None else Path(cfg.cache_dir),
                             augment=augmentation, strict=cfg.strict, verbose=cfg.verbose,
                             model=extractor, model_tag="folded" if extractor is not bb.model else "")
    timings["features_s"] = time.perf_counter() - t
    log(f"features: {feats.computed} computed, {feats.cached} from cache ({1 + recipe.augment_copies} views an image), {len(feats.skipped)} skipped "
        f"({timings['features_s']:.1f}s)", cfg)
    ds = ds.without(feats.skipped)
    ds.check_trainable()

    # 4. head
    y_all = np.array([ds.labels.index(s.label) for s in feats.samples])
    split_of = np.array([s.split for s in feats.samples])
    train_idx, valid_idx, split_note = _validation(recipe, y_all, split_of, cfg.seed)
    log(f"head: recipe '{recipe.name}' ({recipe.description}); {len(train_idx)} train, "
        f"{len(valid_idx)} validation images{split_note}", cfg)
    n_classes = len(ds.labels)
    pixels = features.load_pixels(feats.samples, bb.preprocessing) if recipe.fine_tune_epochs else None
    pretrained = bb.model.get_weights() if recipe.fine_tune_epochs else None

    def train(tr, va, seed, verbose):
        """Phase 1: the head on frozen features; phase 2 (fine-tuning recipes): backbone + head."""
        if pretrained is not None:
            bb.model.set_weights(pretrained)
        x, y = heads.with_views(feats.features, feats.augmented, y_all, tr)
        result = heads.train_head(recipe, x, y, n_classes, x_valid=feats.features[va], y_valid=y_all[va],
                                  seed=seed, verbose=verbose)
        # report on the original images, not on their augmented views
        result.metrics.update(heads.evaluate_head(result.model, feats.features[tr], y_all[tr], n_classes, "train"))
        if recipe.fine_tune_epochs:
            result.fine_tune_history = finetune.fine_tune(
                bb, result.model, recipe, augmentation, pixels[tr], y_all[tr], n_classes,
                pixels_valid=pixels[va], y_valid=y_all[va], seed=seed, verbose=verbose)
        return result

    def accuracy(result, idx) -> float:
        if recipe.fine_tune_epochs:
            return finetune.accuracy(bb, result.model, pixels[idx], y_all[idx])
        return heads.evaluate_head(result.model, feats.features[idx], y_all[idx], n_classes, "x")["x_accuracy"]

    cross_validation = None
    if cfg.folds:
        t = time.perf_counter()
        pool = np.flatnonzero(split_of != "test")

        def score_fold(tr, te, seed):
            inner_tr, inner_va = tr, tr[:0]
            if recipe.early_stopping and recipe.validation_split > 0:
                a, b = heads.stratified_split(y_all[tr], recipe.validation_split, seed)
                inner_tr, inner_va = tr[a], tr[b]
            return accuracy(train(inner_tr, inner_va, seed, 0), te)

        cross_validation = heads.cross_validate(lambda tr, te, seed: score_fold(pool[tr], pool[te], seed),
                                                y_all[pool], cfg.folds, cfg.seed, verbose=cfg.verbose)
        timings["cross_validation_s"] = time.perf_counter() - t
        log(f"cross-validation: accuracy {cross_validation['accuracy_mean']:.3f} +- "
            f"{cross_validation['accuracy_std']:.3f} over {cfg.folds} folds", cfg)
    t = time.perf_counter()
    result = train(train_idx, valid_idx, cfg.seed, 2 if cfg.verbose else 0)
    timings["head_training_s"] = time.perf_counter() - t
    if recipe.fine_tune_epochs:
        result.metrics["head_only_train_accuracy"] = result.metrics["train_accuracy"]
        result.metrics["train_accuracy"] = accuracy(result, train_idx)
        if len(valid_idx):
            result.metrics["head_only_val_accuracy"] = result.metrics.get("val_accuracy")
            result.metrics["val_accuracy"] = accuracy(result, valid_idx)
    test_idx = np.flatnonzero(split_of == "test")
    if len(test_idx):
        result.metrics["test_accuracy"] = accuracy(result, test_idx)
        result.metrics["test_count"] = int(len(test_idx))
    log("metrics: " + ", ".join(f"{k} {v:.3f}" for k, v in result.metrics.items() if "accuracy" in k), cfg)
    if result.collapsed:
        print(f"warning: head training collapsed after {result.attempts} attempts (training accuracy at "
              "chance); try --recipe default or more epochs", file=sys.stderr)

    # 5 + 6. convert and assemble, atomically
    t = time.perf_counter()
    with site.staging(cfg.out) as tmp:
        web_files = site.copy_web(Path(cfg.web_dist), tmp)
        if recipe.fine_tune_epochs:  # the backbone changed: fold (or equalize) it again
            served, fold_report, equalize_report = _served_backbone(bb, check, cfg)
        if fold_report:
            log(f"served backbone: {fold_report.batch_norms} batch-norms and {fold_report.paddings} paddings folded "
                f"into convs (features change by at most {fold_report.max_abs_diff or 0:.1e})", cfg)
        (tmp / "keras").mkdir()
        served.save(tmp / "keras" / "backbone.h5")
        result.model.save(tmp / "keras" / "head.h5")
        bb_info = convert.to_tfjs(served, tmp / "models" / "backbone", cfg.quantize)
        head_info = convert.to_tfjs(result.model, tmp / "models" / "head", cfg.quantize)
        sample = feats.features[:8]
        head_info["roundtrip_max_abs_error"] = convert.roundtrip_error(result.model, tmp / "models/head/model.json", sample)
        bb_info["roundtrip_max_abs_error"] = convert.roundtrip_error(served, tmp / "models/backbone/model.json", check)
        images = site.write_images(feats.samples, ds.labels, tmp)
        timings["convert_and_site_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0
        manifest = {
            "format": site.MANIFEST_FORMAT,
            "fingerprint": fingerprint,
            "labels": ds.labels,
            "input": {"height": bb.preprocessing.height, "width": bb.preprocessing.width, "channels": 3},
            "preprocessing": bb.preprocessing.to_manifest(),
            "backbone": {"name": bb.spec.name, "cut_layer": bb.cut, "path": "models/backbone/model.json",
                         "keras_path": "keras/backbone.h5", "output_shape": list(bb.feature_shape),
                         "weights": cfg.weights if cfg.weights in ("imagenet", "none") else Path(cfg.weights).name,
                         "weights_id": weights_id, "init_from": init_report, "parameters": int(served.count_params()),
                         "folded": fold_report.to_manifest() if fold_report else None,
                         "equalized": equalize_report.to_manifest() if equalize_report else None, **bb_info},
            "head": {"path": "models/head/model.json", "keras_path": "keras/head.h5", "recipe": recipe.name,
                     "layers": heads.head_layers(recipe, len(ds.labels)),
                     "parameters": int(result.model.count_params()), **head_info},
            "training": {"recipe": recipe.name, "description": recipe.description,
                         "hyperparameters": recipe.hyperparameters(), "seed": result.seed,
                         "attempts": result.attempts, "collapsed": result.collapsed, "notes": result.notes,
                         "epochs_run": result.epochs_run, "metrics": result.metrics,
                         "cross_validation": cross_validation,
                         "augmentation": augmentation.key() if augmentation else None, "history": result.history,
                         "fine_tune_history": getattr(result, "fine_tune_history", None)},
            "dataset": {"source": str(cfg.data), "layout": ds.layout, "count": len(feats.samples),
                        "per_class": ds.counts(), "per_split": {k: int(np.sum(split_of == k)) for k in ("train", "valid", "test")},
                        "skipped": [{"path": str(s.path), "reason": s.reason} for s in ds.skipped]},
            "images": {"path": "images.json", "count": len(images["images"])},
            "web": web_files,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "versions": _versions(),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        site.write_json(tmp / "manifest.json", manifest)
    log(f"site: {cfg.out} (backbone {bb_info['bytes'] / 1e6:.2f} MB, head {head_info['bytes'] / 1e6:.2f} MB, "
        f"{len(images['images'])} images) in {time.perf_counter() - t0:.1f}s", cfg)
    return manifest


def _check_pixels(samples, prep, count: int = 8) -> np.ndarray:
    """The first `count` images that decode, preprocessed: real inputs to check rewrites on
    (the ones that do not decode are reported by features.extract)."""
    out = []
    for s in samples:
        try:
            out.append(preprocess.prepare(dataset.load_rgb(s.path), prep))
        except UserError:
            continue
        if len(out) == count:
            break
    if not out:
        return np.zeros((1, prep.height, prep.width, 3), np.float32)
    return np.stack(out)


def _served_backbone(bb, check: np.ndarray, cfg: BuildConfig):
    """The backbone as the site serves it, checked on real images: batch-norms and paddings
    folded into the convs (fold.py), or for uint8 the channel ranges equalized (quantize.py).
    Returns (model, FoldReport or None, EqualizeReport or None)."""
    # not folded for uint8: it stores each tensor with one range, and folding gives every output
    # channel of a kernel its own batch-norm scale (measured: 92.7% -> 11.9% on sign digits)
    if cfg.quantize == "uint8":
        served, equalize_report = quantize.equalize(bb.model, check)
        return served, None, equalize_report
    if not cfg.fold:
        return bb.model, None, None
    served, report = fold.fold(bb.model, check)
    if report.relative_error() > FOLD_TOLERANCE:
        raise UserError(f"folding batch-norms changed the features by {report.max_abs_diff:.3g} (relative "
                        f"{report.relative_error():.2g}, over {FOLD_TOLERANCE}); rebuild with --no-fold")
    return served, report, None


def _code_version() -> dict:
    """This package's source and the libraries that shape the output, read without importing them."""
    from importlib import metadata

    here = Path(__file__).resolve().parent
    source = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py")))).hexdigest()
    libraries = {}
    for name in ("tensorflow", "tf_keras", "tensorflowjs", "numpy", "pillow"):
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    return {"source": source, **libraries}


def _validation(recipe, y, split_of, seed):
    """Given valid/ folder wins; else a stratified hold-out when every class can spare images."""
    train = np.flatnonzero(split_of == "train")
    valid = np.flatnonzero(split_of == "valid")
    if len(valid):
        return train, valid, " (valid/ folder)"
    if recipe.validation_split <= 0:
        return train, valid, ""
    counts = np.bincount(y[train])
    if counts.min() < 5:
        return train, valid, " (no validation split: a class has fewer than 5 images)"
    tr, va = heads.stratified_split(y[train], recipe.validation_split, seed)
    return train[tr], train[va], f" (stratified {recipe.validation_split:.0%} hold-out)"


def _guess_backbone(weights: str) -> str | None:
    if weights in ("imagenet", "none"):
        return None
    return backbones.spec_for_file(weights)


def _versions() -> dict:
    import tensorflow as tf
    import tf_keras

    return {"tfjs-transfer": __version__, "python": platform.python_version(), "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__, "tensorflowjs": convert._tfjs().__version__,
            "numpy": np.__version__}

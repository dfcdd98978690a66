"""manifest.json: the one contract between the build, the Python tools and the page.

The build writes it last, into the staging folder; `predict`, `evaluate`, `serve` and
the site's up-to-date check read it back through this module, so there is one place
that knows its file name, its format tag, its sections and what a broken one looks like.
It also knows models.json, the small file in the Python-side folder beside the site that
names the build (its fingerprint) the Keras models there came from.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import UserError

FORMAT = "tfjs-transfer/1"
FILENAME = "manifest.json"
PYTHON_FORMAT = "tfjs-transfer-python/1"
PYTHON_FILENAME = "models.json"


class ManifestError(UserError):
    """A site folder without a readable manifest of ours."""


def read_object(path: Path, what: str, missing: str) -> dict:
    """The JSON object in `path`; ManifestError names the file and the problem (`missing`: the
    whole message when the file does not exist)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(missing) from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot read the {what} ({e.strerror})") from None
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ManifestError(f"{path}: corrupt {what} ({e})") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"{path}: corrupt {what} (not a JSON object)")
    return obj


def parse(path: Path) -> dict:
    """The JSON object in `path`; ManifestError names the file and the problem."""
    path = Path(path)
    return read_object(path, "manifest",
                       f"{path.parent}: not a built site (no {FILENAME}); run `tfjs-transfer build` first")


def load(site: Path) -> dict:
    """The manifest of a site we built; ManifestError if it is missing, corrupt or of another format."""
    path = Path(site) / FILENAME
    manifest = parse(path)
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r} "
                            "(rebuild the site with this version of tfjs-transfer)")
    return manifest


def read(site: Path) -> dict | None:
    """The manifest of a site we built, or None (no site, a corrupt one, another format)."""
    try:
        return load(site)
    except ManifestError:
        return None


def write(site: Path, manifest: dict) -> None:
    """Writes `manifest` (tagged with FORMAT) into the site folder."""
    write_json(Path(site) / FILENAME, {"format": FORMAT, **manifest})


def write_python(folder: Path, fingerprint: str, files: list[str]) -> None:
    """The Python-side folder's models.json: which build's fingerprint its `files` belong to."""
    write_json(Path(folder) / PYTHON_FILENAME, {"format": PYTHON_FORMAT, "fingerprint": fingerprint, "files": files})


def read_python(folder: Path) -> dict | None:
    """A Python-side folder's models.json, or None (missing, corrupt, another format)."""
    try:
        obj = parse(Path(folder) / PYTHON_FILENAME)
    except ManifestError:
        return None
    return obj if obj.get("format") == PYTHON_FORMAT else None


def write_json(path: Path, obj) -> None:
    """The site's JSON files: indented, UTF-8, a final newline."""
    Path(path).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------- composing the build's manifest, one section at a time ----------

def compose(*, fingerprint: str, labels: list[str], preprocessing, backbone: dict, head: dict, training: dict,
            dataset: dict, images_count: int, web_files: list[str], timings: dict) -> dict:
    """The whole manifest (see README "The manifest"), from the sections below."""
    return {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "labels": labels,
        "input": {"height": preprocessing.height, "width": preprocessing.width, "channels": 3},
        "preprocessing": preprocessing.to_manifest(),
        "backbone": backbone,
        "head": head,
        "training": training,
        "dataset": dataset,
        "images": {"path": "images.json", "count": images_count},
        "web": web_files,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "versions": versions(),
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def compose_backbone_only(*, fingerprint: str, preprocessing, backbone: dict, recipe, head_layers: list[dict],
                          augmentation, web_files: list[str], timings: dict) -> dict:
    """A backbone-only site's manifest: no labels, no head model (its layer specs and the
    recipe's hyper-parameters for the page to train one), no dataset, no images."""
    return {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "labels": [],
        "input": {"height": preprocessing.height, "width": preprocessing.width, "channels": 3},
        "preprocessing": preprocessing.to_manifest(),
        "backbone": backbone,
        "head": {"path": None, "keras_path": None, "recipe": recipe.name, "layers": head_layers},
        "training": {"recipe": recipe.name, "description": recipe.description,
                     "hyperparameters": recipe.hyperparameters(),
                     "augmentation": augmentation.key() if augmentation else None,
                     "metrics": None, "history": None},
        "dataset": None,
        "images": None,
        "web": web_files,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "versions": versions(),
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def require_head(site: Path, manifest: dict) -> None:
    """Refuse, in words, a site that has no head to predict with (built with --backbone-only)."""
    head = manifest.get("head")
    if not isinstance(head, dict) or not head.get("path"):
        raise UserError(f"{site} has no head: it was built with --backbone-only; train in the page "
                        "or build with --data")


def backbone_section(bb, weights: str, weights_id: str, init_report: dict | None, served, converted: dict,
                     keras_path: str) -> dict:
    """The served backbone: what it was cut from, how it was rewritten (serving.ServedBackbone)
    and what the converter wrote (convert.to_tfjs's report). `keras_path` is relative to the
    site folder (the Python-side models live beside it)."""
    return {"name": bb.spec.name, "cut_layer": bb.cut, "path": "models/backbone/model.json",
            "keras_path": keras_path, "output_shape": list(bb.feature_shape),
            "weights": weights if weights in ("imagenet", "none") else Path(weights).name,
            "weights_id": weights_id, "init_from": init_report, "parameters": int(served.model.count_params()),
            "folded": served.folded.to_manifest() if served.folded else None,
            "equalized": served.equalized.to_manifest() if served.equalized else None, **converted}


def head_section(recipe, layers: list[dict], model, converted: dict, keras_path: str) -> dict:
    """The head: its layer specs (the page builds a fresh head from them) and the converted files."""
    return {"path": "models/head/model.json", "keras_path": keras_path, "recipe": recipe.name,
            "layers": layers, "parameters": int(model.count_params()), **converted}


def training_section(recipe, result, cross_validation: dict | None, augmentation) -> dict:
    """How the head (and, when fine-tuned, the backbone) was trained and how well it did."""
    return {"recipe": recipe.name, "description": recipe.description,
            "hyperparameters": recipe.hyperparameters(), "seed": result.seed,
            "attempts": result.attempts, "collapsed": result.collapsed, "notes": result.notes,
            "epochs_run": result.epochs_run, "metrics": result.metrics,
            "cross_validation": cross_validation,
            "augmentation": augmentation.key() if augmentation else None, "history": result.history,
            "fine_tune_history": result.fine_tune_history}


def dataset_section(source: Path, ds, count: int, split_of) -> dict:
    """The images the build used: layout, counts per class and dataset folder, what was skipped."""
    return {"source": str(source), "layout": ds.layout, "count": count, "per_class": ds.counts(),
            "per_split": {k: int(np.sum(split_of == k)) for k in ("train", "valid", "test")},
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in ds.skipped]}


def versions() -> dict:
    """The libraries that made the site, as recorded in it."""
    import tensorflow as tf
    import tf_keras

    from . import __version__, convert

    return {"tfjs-transfer": __version__, "python": platform.python_version(), "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__, "tensorflowjs": convert._tfjs().__version__, "numpy": np.__version__}


def code_version() -> dict:
    """This package's source and the libraries that shape the output, read without importing
    them: part of the build's fingerprint, so a changed pipeline rebuilds the site."""
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

"""Python's view of a built site: the same models and preprocessing the page uses.

`Predictor(site)` reads manifest.json and the Keras copies of the two models (in the
Python-side folder beside the site, where the manifest's `keras_path`s point), so the
parity tests run exactly what was converted. `Predictor(site, source="tfjs")` reads the
converted TF.js models instead (weights dequantized when the site was built with
--quantize): what the page actually runs. `source="auto"` (predict, evaluate) uses the
Keras copies when they are there and the TF.js models when the site was copied alone.

A folder with no manifest.json but Teachable Machine's files (model.json, metadata.json) is
read as a TM export instead (tm_model.py): one model, TM's labels and preprocessing;
`source` is then "tm" and `manifest` None.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from . import manifest, tm_model
from .dataset import load_rgb
from .errors import UserError
from .inference import predict_batches
from .preprocess import Preprocessing, prepare


class Predictor:
    def __init__(self, site_dir: str | Path, source: str = "keras"):
        import tf_keras as keras

        if source not in ("auto", "keras", "tfjs"):
            raise ValueError(f"source must be 'auto', 'keras' or 'tfjs', got {source!r}")
        self.site = Path(site_dir)
        self.tm = None
        if tm_model.is_tm_export(self.site):
            self.tm = tm_model.TMExport(self.site)
            self.manifest, self.labels, self.preprocessing = None, self.tm.labels, self.tm.preprocessing
            self.source = "tm"
            return
        self.manifest = manifest.load(self.site)
        manifest.require_head(self.site, self.manifest)
        self.labels: list[str] = self.manifest["labels"]
        self.preprocessing = Preprocessing.from_manifest(self.manifest["preprocessing"])
        if source != "tfjs":
            source = self._check_python_models(source)
        self.source = source
        try:
            if source == "tfjs":
                from .convert import load_tfjs

                self.backbone = load_tfjs(self.site / self.manifest["backbone"]["path"])
                self.head = load_tfjs(self.site / self.manifest["head"]["path"])
            else:
                self.backbone = keras.models.load_model(self.site / self.manifest["backbone"]["keras_path"], compile=False)
                self.head = keras.models.load_model(self.site / self.manifest["head"]["keras_path"], compile=False)
        except (OSError, ValueError) as e:
            raise UserError(f"{self.site}: cannot load the site's {source} models ({e})") from None

    def _check_python_models(self, source: str) -> str:
        """'keras' when the Python-side models are there and from this site's build; when they
        are missing, 'tfjs' with a note for source="auto", an error for source="keras"."""
        paths = [self.site / self.manifest[part]["keras_path"] for part in ("backbone", "head")]
        folder = paths[0].parent.resolve()
        written = manifest.read_python(folder)
        if written is None or not all(p.is_file() for p in paths):
            if source == "keras":
                raise UserError(f"{folder}: the site's Python-side models are missing (rebuild the site)")
            print(f"note: {folder} (the site's Python-side models) not found; using its TF.js models",
                  file=sys.stderr)
            return "tfjs"
        if written.get("fingerprint") != self.manifest.get("fingerprint"):
            raise UserError(f"{folder}: the Python-side models come from another build than "
                            f"{self.site / manifest.FILENAME} (their fingerprints differ); rebuild the site, "
                            "or copy the site and this folder from the same build")
        return "keras"

    def pixels(self, paths) -> np.ndarray:
        if self.tm is not None:
            return np.stack([self.tm.prepare(load_rgb(p)) for p in paths])
        return np.stack([prepare(load_rgb(p), self.preprocessing) for p in paths])

    def features(self, paths, batch_size: int = 32) -> np.ndarray:
        if self.tm is not None:
            raise ValueError("a Teachable Machine export is one model; it has no separate features")
        return predict_batches(self.backbone, self.pixels(paths), batch_size)

    def probabilities(self, paths, batch_size: int = 32) -> np.ndarray:
        """(n, classes) in label order."""
        return self._classify(self.pixels(paths), batch_size)

    def _classify(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        if self.tm is not None:
            return predict_batches(self.tm.model, pixels, batch_size)
        return predict_batches(self.head, predict_batches(self.backbone, pixels, batch_size), 256)

    def top(self, probabilities: np.ndarray, k: int) -> list[dict]:
        order = np.argsort(-probabilities, kind="stable")[:k]
        return [{"label": self.labels[i], "probability": float(probabilities[i])} for i in order]

    def predict(self, paths, top_k: int = 3) -> list[dict]:
        """One entry per image, best first; an unreadable image gets an `error` instead."""
        results, good = [], []
        for p in paths:
            try:
                results.append({"image": str(p), "pixels": self.pixels([p])})
                good.append(len(results) - 1)
            except UserError as e:
                results.append({"image": str(p), "error": str(e)})
        if good:
            x = np.concatenate([results[i].pop("pixels") for i in good])
            probs = self._classify(x)
            for i, pr in zip(good, probs):
                results[i]["top"] = self.top(pr, top_k)
        return results


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, shipped with the package (never downloaded)."""
    from importlib.resources import files

    return json.loads(files("tfjs_transfer").joinpath("data/imagenet_classes.json").read_text(encoding="utf-8"))["labels"]


def imagenet_predict(weights: str, paths, top_k: int = 5, backbone: str | None = None) -> list[dict]:
    """Top-k ImageNet classes from a backbone that still has its 1000-class top."""
    from .backbones import load_backbone, spec_for_file

    if backbone is None and weights not in ("imagenet", "none"):
        backbone = spec_for_file(weights)
    bb = load_backbone(backbone, weights)
    if tuple(bb.full.output_shape) != (None, 1000):
        raise UserError(f"{weights}: this {bb.spec.name} has no 1000-class ImageNet top "
                        f"(output {bb.full.output_shape})")
    labels = imagenet_labels()
    results = []
    for p in paths:
        try:
            x = prepare(load_rgb(p), bb.preprocessing)[None]
        except UserError as e:
            results.append({"image": str(p), "error": str(e)})
            continue
        probs = predict_batches(bb.full, x, 1)[0]
        order = np.argsort(-probs)[:top_k]
        results.append({"image": str(p), "top": [{"label": labels[i], "probability": float(probs[i])} for i in order]})
    return results

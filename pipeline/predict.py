"""Python's view of a built site: the same models and preprocessing the page uses.

`Predictor(site)` reads manifest.json and the Keras copies of the two models, so
`predict`, `evaluate` and the parity tests run exactly what was converted.
`Predictor(site, source="tfjs")` reads the converted TF.js models instead (weights
dequantized when the site was built with --quantize): what the page actually runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import manifest
from .dataset import load_rgb
from .errors import UserError
from .inference import predict_batches
from .preprocess import Preprocessing, prepare


class Predictor:
    def __init__(self, site_dir: str | Path, source: str = "keras"):
        import tf_keras as keras

        if source not in ("keras", "tfjs"):
            raise ValueError(f"source must be 'keras' or 'tfjs', got {source!r}")
        self.site = Path(site_dir)
        self.manifest = manifest.load(self.site)
        self.labels: list[str] = self.manifest["labels"]
        self.preprocessing = Preprocessing.from_manifest(self.manifest["preprocessing"])
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

    def pixels(self, paths) -> np.ndarray:
        return np.stack([prepare(load_rgb(p), self.preprocessing) for p in paths])

    def features(self, paths, batch_size: int = 32) -> np.ndarray:
        return predict_batches(self.backbone, self.pixels(paths), batch_size)

    def probabilities(self, paths, batch_size: int = 32) -> np.ndarray:
        """(n, classes) in manifest label order."""
        return predict_batches(self.head, self.features(paths, batch_size), 256)

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
            probs = predict_batches(self.head, predict_batches(self.backbone, x, 32), 256)
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

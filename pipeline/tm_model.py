"""A Teachable Machine image export read in Python: model.json + weights + metadata.json.

The folder may come from Teachable Machine's web app or from `export --format tm`. The
layers model is read with the tensorflowjs converter's own loader (as `convert.load_tfjs`
reads a site's models); labels come from metadata.json, the input size from the model.
Images are prepared as `@teachablemachine/image` prepares them: the centre square
(its `cropTo`), resized to the input size, then `x / 127 - 1`. The resize is ours
(preprocess.py's bilinear, TF.js's `resizeBilinear`), not the library's canvas, whose
smoothing the browser chooses; that is the one place our pixels differ from TM's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import manifest
from .errors import UserError
from .preprocess import Preprocessing, prepare

MODEL_FILE = "model.json"
METADATA_FILE = "metadata.json"
LAYOUT = "a Teachable Machine export has model.json, its weights file(s) and metadata.json"


def is_tm_export(folder: Path) -> bool:
    """A folder that means to be a TM export: no manifest.json of a site, and TM's files
    (either is enough, so that the other one missing gets its own message)."""
    folder = Path(folder)
    return (not (folder / manifest.FILENAME).exists()
            and ((folder / MODEL_FILE).is_file() or (folder / METADATA_FILE).is_file()))


class TMExport:
    """The export's model, labels and preprocessing; UserError names the file at fault."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        model_json = self.folder / MODEL_FILE
        topology = manifest.read_object(model_json, "TF.js model", f"{model_json}: missing; {LAYOUT}")
        self.metadata = manifest.read_object(self.folder / METADATA_FILE, "Teachable Machine metadata",
                                             f"{self.folder / METADATA_FILE}: missing; {LAYOUT}")
        labels = self.metadata.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(l, str) for l in labels):
            raise UserError(f"{self.folder / METADATA_FILE}: no `labels` list of class names")
        self.labels: list[str] = labels
        self._check_weights(model_json, topology)
        self.model = self._load(model_json, topology)
        self.preprocessing = self._input_preprocessing()
        classes = self.model.outputs[0].shape[-1]
        if classes != len(labels):
            raise UserError(f"{self.folder / METADATA_FILE}: {len(labels)} labels ({', '.join(labels)}) but "
                            f"{model_json} outputs {classes} classes; the two files are from different exports")

    def _check_weights(self, model_json: Path, topology: dict) -> None:
        if "modelTopology" not in topology or not isinstance(topology.get("weightsManifest"), list):
            raise UserError(f"{model_json}: not a TF.js layers model (no modelTopology / weightsManifest)")
        for group in topology["weightsManifest"]:
            for name in group.get("paths", []):
                if not (self.folder / name).is_file():
                    raise UserError(f"{self.folder / name}: missing, and {model_json} names it as a weights "
                                    f"file; {LAYOUT}")

    def _load(self, model_json: Path, topology: dict):
        """The layers model, read from a copy of model.json that Keras accepts (see
        `_without_float_seeds`), its weights from the export's folder."""
        import tempfile

        from .convert import load_tfjs

        try:
            with tempfile.TemporaryDirectory() as tmp:
                readable = Path(tmp) / MODEL_FILE
                manifest.write_json(readable, _without_float_seeds(topology))
                return load_tfjs(readable, weights_folder=self.folder)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{model_json}: cannot load the TF.js layers model ({type(e).__name__}: {e})") from None

    def _input_preprocessing(self) -> Preprocessing:
        """The model's image input, scaled as TM scales it; refuses a model that takes no image."""
        shape = tuple(self.model.inputs[0].shape)
        if len(self.model.inputs) != 1 or len(shape) != 4 or shape[3] != 3 or not shape[1] or not shape[2]:
            raise UserError(f"{self.folder / MODEL_FILE}: the model's input is {shape}, not an image "
                            "(batch, height, width, 3); Teachable Machine image models take 224x224x3")
        size = self.metadata.get("imageSize")
        if size is not None and size != shape[1]:
            raise UserError(f"{self.folder / METADATA_FILE}: imageSize {size}, but {self.folder / MODEL_FILE} "
                            f"takes {shape[1]}x{shape[2]} images; the two files are from different exports")
        return Preprocessing(int(shape[1]), int(shape[2]), scale=1 / 127, offset=-1.0)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> the model's input: centre square, resized, `x / 127 - 1`."""
        return prepare(centre_square(rgb), self.preprocessing)


def _without_float_seeds(node):
    """Teachable Machine's head is made with `varianceScaling({seed: 3.14})`, a seed TF.js
    accepts and Keras refuses (an int); the weights are loaded anyway, so such a seed is dropped."""
    if isinstance(node, dict):
        return {k: (None if k == "seed" and isinstance(v, float) else _without_float_seeds(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_float_seeds(v) for v in node]
    return node


def centre_square(rgb: np.ndarray) -> np.ndarray:
    """The largest centred square, as TM's `cropTo` keeps it (it scales first, then offsets
    by the rounded-down half of the excess: the same square up to a pixel)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top:top + side, left:left + side]

"""`tfjs-transfer export`: a built site's backbone and head as one model in another format.

Each format is one entry in FORMATS: a writer `(site_models, out_dir, options) -> dict`
that writes its files into `out_dir` and returns what it wrote (`files`, and `check`: how
its consumer loads it and runs it, see `check_in_fresh_process`). This module owns what
every format shares: the merged model, the output folder (written into a staging folder
beside `--out` and renamed into place only when complete and checked, so a failure leaves
nothing), `labels.txt`, the README and `export.json`.

Every export is loaded back by its real consumer in a fresh Python process (Keras 3,
tf_keras, `tf.saved_model.load`, the TFLite interpreter) and its probabilities compared
with the site's own Keras models on the site's images; a difference above the format's
tolerance refuses the export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import manifest as manifest_mod
from .dataset import load_rgb
from .errors import UserError
from .export_formats import write_keras, write_savedmodel, write_tflite
from .export_tm import export_tm
from .outdir import check_new_or_empty, staged
from .preprocess import Preprocessing, prepare

# How many of the site's images the export's own check runs (a spread over the classes).
CHECK_IMAGES = 12
# How many training images calibrate int8 (TFLite's representative dataset).
REPRESENTATIVE_IMAGES = 100


@dataclass
class SiteModels:
    """What an exporter needs from a built site: its models (tf_keras), labels, preprocessing
    and images, read once through the manifest (`Predictor` finds the Python-side models)."""
    site: Path
    manifest: dict
    labels: list[str]
    preprocessing: Preprocessing
    backbone: object
    head: object
    _merged: object = field(default=None, repr=False)

    @classmethod
    def load(cls, site: Path) -> "SiteModels":
        from .predict import Predictor

        p = Predictor(site, source="keras")
        return cls(Path(site), p.manifest, p.labels, p.preprocessing, p.backbone, p.head)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.preprocessing.height, self.preprocessing.width, 3)

    def merged(self):
        """Backbone and head as one flat tf_keras functional model (the head's layers applied to
        the backbone's output, sharing their weights), named by layer as in the site."""
        if self._merged is None:
            import tf_keras as keras

            x = self.backbone.output
            for layer in self.head.layers:
                if not isinstance(layer, keras.layers.InputLayer):
                    x = layer(x)
            self._merged = keras.Model(self.backbone.input, x, name="tfjs_transfer")
        return self._merged

    def images(self, roles=("train", "valid"), limit: int | None = None) -> np.ndarray:
        """The site's images (images.json) with these roles, preprocessed as the site does,
        taken evenly across the list (which is ordered by class) when `limit` is smaller."""
        index = manifest_mod.parse(self.site / self.manifest["images"]["path"])
        entries = [e for e in index["images"] if e.get("role") in roles]
        if not entries:
            raise UserError(f"{self.site / 'images.json'}: no images with role {' or '.join(roles)}")
        if limit is not None and len(entries) > limit:
            entries = [entries[i] for i in np.linspace(0, len(entries) - 1, limit).round().astype(int)]
        return np.stack([prepare(load_rgb(self.site / e["path"]), self.preprocessing) for e in entries])


# One entry per format: a writer (SiteModels, out_dir, options) -> {"files", "usage", "check", "notes"}.
FORMATS = {"keras": write_keras, "savedmodel": write_savedmodel, "tflite": write_tflite}
# Formats whose consumers are browser libraries: their module writes (and stages) the whole
# folder itself; tests/browser/test_tm_export.py loads it in Teachable Machine and ml5.
BROWSER_FORMATS = {"tm": export_tm}
# The --quantize values a format takes (others: float32 only).
QUANTIZATIONS = {"tflite": ("float32", "float16", "int8")}


def export(site: str | Path, fmt: str, out: str | Path, *, quantize: str | None = None, verbose: bool = True) -> dict:
    """Writes the site's merged model as `fmt` into `out` (which must not exist or be empty),
    checked by loading it back; returns export.json's content."""
    site, out = Path(site), Path(out)
    if fmt in BROWSER_FORMATS:
        if quantize not in (None, "float32"):
            raise UserError(f"--quantize {quantize}: the {fmt} format is written as float32 (what TF.js 1.3.1 reads)")
        written = BROWSER_FORMATS[fmt](site, out)
        if verbose:
            for name, size in written["files"].items():
                print(f"wrote {out / name} ({size / 1e6:.2f} MB)")
        return written
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r} (one of {', '.join(sorted(FORMATS | BROWSER_FORMATS))})")
    allowed = QUANTIZATIONS.get(fmt, ("float32",))
    quantize = quantize or "float32"
    if quantize not in allowed:
        raise UserError(f"--quantize {quantize}: the {fmt} format is written as {' or '.join(allowed)}")
    check_new_or_empty(out)
    manifest_mod.load(site)  # an unbuilt site: one clear error before TensorFlow loads any model
    models = SiteModels.load(site)
    with staged(out) as staging:
        written = FORMATS[fmt](models, staging, {"quantize": quantize})
        x = models.images(limit=CHECK_IMAGES)
        reference = models.merged()(x, training=False).numpy()
        checks = [check_in_fresh_process(c, staging, x, reference) for c in written["check"]]
        report = {"format": fmt, "quantize": quantize, "site": str(site.resolve()),
                  "fingerprint": models.manifest.get("fingerprint"), "labels": models.labels,
                  "input": {"shape": list(models.input_shape), "dtype": "float32"},
                  "preprocessing": models.manifest["preprocessing"],
                  "files": {name: (staging / name).stat().st_size if (staging / name).is_file()
                            else _folder_size(staging / name) for name in written["files"]},
                  "checks": checks, **written.get("notes", {})}
        (staging / "labels.txt").write_text("".join(l + "\n" for l in models.labels), encoding="utf-8")
        (staging / "README.md").write_text(readme(report, written["usage"]), encoding="utf-8")
        manifest_mod.write_json(staging / "export.json", report)
    if verbose:
        for c in report["checks"]:
            print(f"{c['consumer']}: max |diff| {c['max_abs_diff']:.2g} (tolerance {c['tolerance']:g}), "
                  f"top-1 agreement {c['top1_agreement']:.0%}, loaded in {c['load_seconds']:.2f} s")
        for name, size in report["files"].items():
            print(f"wrote {out / name} ({size / 1e6:.2f} MB)")
    return report


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# A check's script is run as `python -c SCRIPT MODEL_PATH INPUT.npy OUTPUT.npy`: it imports the
# consumer, loads the model with its own API (timed: the load, not the import), runs the
# preprocessed batch and saves the probabilities.
CHECK_SCRIPT = """\
import sys, time, json
import numpy as np
path, x = sys.argv[1], np.load(sys.argv[2])
{imports}
start = time.perf_counter()
{load}
load_seconds = time.perf_counter() - start
{run}
np.save(sys.argv[3], np.asarray(probs, dtype=np.float32))
print(json.dumps({{"load_seconds": load_seconds}}))
"""


def run_in_fresh_process(check: dict, folder: Path, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Imports `check['import']`, loads `folder / check['path']` with `check['load']` and runs
    `check['run']` (Python code with `path`, `x` and the result `probs`) in a new interpreter;
    returns the probabilities and the seconds the load took."""
    script = CHECK_SCRIPT.format(imports=check["import"], load=check["load"], run=check["run"])
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", x)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **check.get("env", {})}
        done = subprocess.run([sys.executable, "-c", script, str(folder / check["path"]), str(Path(tmp) / "x.npy"),
                               str(Path(tmp) / "y.npy")], capture_output=True, text=True, env=env, timeout=600)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise UserError(f"{check['consumer']} could not load the exported {check['path']}:\n{tail}")
        probs = np.load(Path(tmp) / "y.npy")
    return probs, json.loads(done.stdout.strip().splitlines()[-1])["load_seconds"]


def check_in_fresh_process(check: dict, folder: Path, x: np.ndarray, reference: np.ndarray) -> dict:
    """The consumer's probabilities (run_in_fresh_process) compared with `reference`: UserError
    beyond the check's tolerance or below its top-1 agreement."""
    probs, load_seconds = run_in_fresh_process(check, folder, x)
    diff = float(np.abs(probs - reference).max())
    agreement = float(np.mean(probs.argmax(1) == reference.argmax(1)))
    result = {"consumer": check["consumer"], "path": check["path"], "images": len(x),
              "max_abs_diff": diff, "tolerance": check["tolerance"], "top1_agreement": agreement,
              "min_top1_agreement": check.get("min_top1_agreement", 1.0),
              "load_seconds": round(load_seconds, 3)}
    if not diff <= check["tolerance"]:
        raise UserError(f"{check['consumer']}: the exported {check['path']} differs from the site's models by "
                        f"{diff:.3g} in probability on {len(x)} of the site's images (tolerance "
                        f"{check['tolerance']:g}); nothing written")
    least = check.get("min_top1_agreement", 1.0)
    if agreement < least:
        raise UserError(f"{check['consumer']}: the exported {check['path']} names {agreement:.0%} of {len(x)} of the "
                        f"site's images as the site does (at least {least:.0%} expected); nothing written")
    return result


def readme(report: dict, usage: str) -> str:
    """The export folder's README: what is in it and how to use it."""
    p = report["preprocessing"]
    h, w, _ = report["input"]["shape"]
    order = "" if p["channel_order"] == "RGB" else f"channels reordered to {p['channel_order']}, "
    x = "x" if not any(p["mean"]) else f"(x - {p['mean']})"
    sign = "-" if p["offset"] < 0 else "+"
    formula = f"{x} * {p['scale']:.10g} {sign} {abs(p['offset']):g}"
    if p["scale"] != 1:
        formula += f" (= {x} / {1 / p['scale']:.6g} {sign} {abs(p['offset']):g})"
    labels = "\n".join(f"{i}. {l}" for i, l in enumerate(report["labels"]))
    files = "\n".join(f"- `{name}` ({size / 1e6:.2f} MB)" for name, size in report["files"].items())
    checks = "\n".join(f"- {c['consumer']}: max |difference| of probabilities {c['max_abs_diff']:.2g} "
                       f"(tolerance {c['tolerance']:g}), the same top-1 class for {c['top1_agreement']:.0%} "
                       f"of {c['images']} of the site's images" for c in report["checks"])
    return f"""# {report['format']} export of a tfjs-transfer site ({report['quantize']})

{files}
- `labels.txt`: the class names, one a line, in output order
- `export.json`: these facts as JSON

**Input**: a batch of float32 images, shape (N, {h}, {w}, 3), RGB. Resize the image to {w}x{h}
(bilinear with `align_corners=False, half_pixel_centers=False`: `tf.compat.v1.image.resize_bilinear`,
TF.js's `tf.image.resizeBilinear`; fit: {p['fit']}), then scale
each pixel value x in [0, 255]: {order}`{formula}`.

**Output**: N x {len(report['labels'])} class probabilities (softmax), in this order:

{labels}

**Usage**:

```python
{usage.strip()}
```

**Checked** when written, by loading it back in a fresh process:
{checks}
"""

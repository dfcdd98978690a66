"""Keras models -> TF.js layers-model folders, with the tensorflowjs converter.

Quantization: `float16` applies to every weight ('*', the value form of the converter's
--quantize_* flags); `uint8` to the kernels, with the rest in float16 (see quantize.py). After converting, the folder is loaded back with
the converter's own loader and compared with the Keras model on sample inputs, so a
broken conversion fails the build instead of shipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .inference import predict_batches

QUANTIZATIONS = ("float16", "uint8")


def _tfjs():
    # tensorflowjs pulls tensorflow_decision_forests, which prints a banner on import
    # (and wants IPython when stdout is not a terminal) unless this is set.
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    import tensorflowjs

    return tensorflowjs


def to_tfjs(model, out_dir: Path, quantize: str | None = None, shard_bytes: int = 4 * 1024 * 1024) -> dict:
    """Write model.json + weight shards; return what was written and its size."""
    from . import quantize as quantization

    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    tfjs = _tfjs()
    out_dir.mkdir(parents=True, exist_ok=True)
    tfjs.converters.save_keras_model(model, str(out_dir),
                                     quantization_dtype_map=quantization.dtype_map(quantize, model),
                                     weight_shard_size_bytes=shard_bytes)
    files = sorted(p for p in out_dir.iterdir() if p.is_file())
    return {"files": [p.name for p in files], "bytes": sum(p.stat().st_size for p in files),
            "weights_bytes": sum(p.stat().st_size for p in files if p.suffix == ".bin"),
            "quantization": quantize}


def load_tfjs(model_json: Path, weights_folder: Path | None = None):
    """The converted model, read back as a tf_keras model (Python's view of the site); its
    weight files are beside model.json unless `weights_folder` says where."""
    prefix = None if weights_folder is None else str(weights_folder)
    return _tfjs().converters.load_keras_model(str(model_json), weights_path_prefix=prefix)


def roundtrip_error(model, model_json: Path, sample: np.ndarray) -> float:
    """Max |Keras - reloaded TF.js| on `sample`: ~1e-6 for float32, larger when quantized."""

    reloaded = load_tfjs(model_json)
    return float(np.max(np.abs(predict_batches(model, sample, 32) - predict_batches(reloaded, sample, 32))))

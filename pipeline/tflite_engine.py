"""The folded backbone on TFLite's XNNPACK kernels: the pipeline's feature extractor where it
applies (float32 Keras models the converter takes), TensorFlow's predict_batches elsewhere.

The .tflite is converted once per backbone (ConvertedCache, beside the feature cache) with a
free batch dimension; the interpreter is resized when a batch's size changes. LiteRT's own
package (ai_edge_litert) runs it when importable, else TensorFlow's tf.lite.Interpreter
(deprecated in TF 2.19 for it; its warning is silenced here).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import sys
import tempfile
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import tfquiet

ENGINES = ("tflite", "tf")
AGREEMENT = 5e-3  # max |TFLite - TF| on the same model (the tests' tolerance of features vs Keras)


def convert(model) -> bytes:
    """The Keras model as a float32 .tflite with a free batch dimension."""
    import tensorflow as tf

    fn = tf.function(lambda v: model(v, training=False),
                     input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    text = ""
    try:
        with tfquiet.stderr_captured() as captured:  # the converter's MLIR log lines, shown only if it fails
            try:
                return conv.convert()
            except Exception:
                text = captured()
                raise
    finally:
        print(text, file=sys.stderr, end="")


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        import tensorflow as tf
        return tf.lite.Interpreter


NOISE = ("Created TensorFlow Lite XNNPACK delegate", "TFLITE_XNNPACK_DELEGATE_FLAG_ENABLE_SUBGRAPH_RESHAPING")


@contextlib.contextmanager
def _quiet():
    """The interpreter's C++ start-up lines (written to fd 2) hidden; anything else passes."""
    with tfquiet.stderr_captured() as captured:
        try:
            yield
        finally:
            text = captured()
    for line in text.splitlines():
        if not any(n in line for n in NOISE):
            print(line, file=sys.stderr)


class _Lane:
    """One single-thread interpreter, resized when its slice's size changes."""

    def __init__(self, blob: bytes):
        cls = _interpreter_class()
        with _quiet(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            self._it = cls(model_content=blob, num_threads=1)
        inp = self._it.get_input_details()[0]
        self._in, self._shape = inp["index"], tuple(inp["shape"][1:])
        self._out = self._it.get_output_details()[0]["index"]
        self._batch = None

    def run(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._batch:
            with _quiet():
                self._it.resize_tensor_input(self._in, [len(batch), *self._shape])
                self._it.allocate_tensors()
            self._batch = len(batch)
        self._it.set_tensor(self._in, np.ascontiguousarray(batch, np.float32))
        self._it.invoke()  # releases the GIL: the lanes run side by side
        return self._it.get_tensor(self._out).copy()


# Images per invoke: a batch is cut into pieces this small, so that one piece's activations
# stay in a core's cache from layer to layer (bench/xnnpack.py pairs the sizes). Each image's
# features are the same whatever the piece (XNNPACK computes images independently).
PIECE = 2


class Runner:
    """`lanes` single-thread interpreters (default: one per core) in Python threads, each taking
    the next PIECE images of a batch until none is left. bench/xnnpack.py measured this against
    one interpreter on as many threads: each lane keeps its own core's caches and never waits at
    a barrier for a sibling thread (which a loaded machine deschedules)."""

    def __init__(self, blob: bytes, lanes: int | None = None, piece: int = PIECE):
        self._lanes = [_Lane(blob) for _ in range(max(1, lanes or os.cpu_count() or 1))]
        self._piece = max(1, piece)
        self._pool = ThreadPoolExecutor(len(self._lanes)) if len(self._lanes) > 1 else None
        if self._pool:
            weakref.finalize(self, self._pool.shutdown, wait=False)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        n, k = len(batch), min(self._piece, len(batch))
        if n % k:  # the last piece padded to k images: the interpreters keep one shape
            batch = np.concatenate([batch, np.zeros((k - n % k, *batch.shape[1:]), batch.dtype)])
        pieces = [batch[s:s + k] for s in range(0, len(batch), k)]
        outs: list = [None] * len(pieces)
        taken = itertools.count()  # next() on it is atomic under the GIL

        def lane(it: _Lane) -> None:
            while (i := next(taken)) < len(pieces):
                outs[i] = it.run(pieces[i])

        if self._pool is None or len(pieces) == 1:
            lane(self._lanes[0])
        else:
            for f in [self._pool.submit(lane, it) for it in self._lanes]:
                f.result()
        return np.concatenate(outs)[:n]

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """As inference.predict_batches: the model over x in batches of batch_size."""
        return np.concatenate([self._run(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])


def model_digest(model) -> str:
    """sha256 of a model's architecture and weights: the converted file's cache key."""
    h = hashlib.sha256(model.to_json().encode())
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:20]


def _cached_path(model, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"model-{model_digest(model)}.tflite"


def is_cached(model, cache_dir: Path | None) -> bool:
    return cache_dir is not None and _cached_path(model, cache_dir).is_file()


def cached_blob(model, cache_dir: Path | None) -> bytes:
    """The model's .tflite, converted once per model (architecture + weights) and kept in
    cache_dir (the feature cache's folder for this backbone, written atomically); converted in
    memory when there is no cache."""
    if cache_dir is None:
        return convert(model)
    path = _cached_path(model, cache_dir)
    try:
        return path.read_bytes()
    except OSError:
        pass
    blob = convert(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return blob


def checked_runner(model, cache_dir: Path | None, check: np.ndarray | None = None):
    """predict(x, batch_size) on XNNPACK, or None (with a warning: the caller runs TF) when the
    model does not convert or its features on `check` pixels (default: zeros and noise) differ
    from TF's by more than AGREEMENT."""
    from .inference import predict_batches

    try:
        runner = Runner(cached_blob(model, cache_dir))
        if check is None:
            rng = np.random.default_rng(0)
            check = rng.uniform(-1, 1, (2, *model.input_shape[1:])).astype(np.float32)
        diff = float(np.max(np.abs(runner.predict(check, len(check)) - predict_batches(model, check, len(check)))))
    except Exception as e:  # noqa: BLE001 - any model TFLite cannot take falls back to TF
        print(f"warning: feature extraction on TensorFlow: the backbone does not run on TFLite "
              f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})", file=sys.stderr)
        return None
    if diff > AGREEMENT:
        print(f"warning: feature extraction on TensorFlow: TFLite's features differ from TF's by {diff:.1e} "
              f"(> {AGREEMENT:.0e})", file=sys.stderr)
        return None
    return runner.predict


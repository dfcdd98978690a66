"""Import TensorFlow without its start-up noise, so the user sees the build's own output."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

NOISE = ("Unable to register", "absl::InitializeLog", "computation_placer", "cuInit", "cuda_")


@contextlib.contextmanager
def stderr_captured():
    """What is written to file descriptor 2 meanwhile (TensorFlow's C++ code writes there
    directly, past sys.stderr) goes to a temporary file; yields a function that returns what
    was captured so far (call it inside the block: the file goes with it)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)

        def captured() -> str:
            capture.seek(0)
            return capture.read().decode(errors="replace")

        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly() -> None:
    """TensorFlow's C++ start-up prints CUDA-plugin registration errors straight to fd 2, even
    on machines without a GPU and with TF_CPP_MIN_LOG_LEVEL=3; hide exactly those lines."""
    if "tensorflow" in sys.modules:
        return
    text = ""
    try:
        with stderr_captured() as captured:
            try:
                import tensorflow  # noqa: F401
            finally:
                text = captured()
    finally:
        for line in text.splitlines():
            if not any(n in line for n in NOISE):
                print(line, file=sys.stderr)

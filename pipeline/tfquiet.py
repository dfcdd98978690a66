"""Import TensorFlow without its start-up noise, so the user sees the build's own output."""

from __future__ import annotations

import os
import sys
import tempfile

NOISE = ("Unable to register", "absl::InitializeLog", "computation_placer", "cuInit", "cuda_")


def import_tensorflow_quietly() -> None:
    """TensorFlow's C++ start-up prints CUDA-plugin registration errors straight to fd 2, even
    on machines without a GPU and with TF_CPP_MIN_LOG_LEVEL=3; hide exactly those lines."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if not any(n in line for n in NOISE):
                    print(line, file=sys.stderr)

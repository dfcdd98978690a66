"""An export's output folder: new or empty, written complete or not at all.

The files go into a staging folder beside it (so the final rename stays on one disk) and
the staging folder is renamed into place only when the writer returns; a failure removes
it, leaving nothing behind and the user's folder as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError


def check_new_or_empty(out: Path) -> None:
    """UserError unless `out` does not exist or is an empty folder."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and is not an empty folder; choose another --out or remove it "
                        "(nothing was written)")


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yields an empty staging folder; renames it to `out` when the block completes."""
    out = Path(out)
    check_new_or_empty(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{os.getpid()}.staging"
    shutil.rmtree(staging, ignore_errors=True)  # a killed export's, by a process that had this pid
    staging.mkdir()
    try:
        yield staging
        if out.exists():
            out.rmdir()  # empty (checked above; a file appearing since stops us here): rename() cannot replace it
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

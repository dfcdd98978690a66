"""Assemble the static site in a staging folder and swap it in only when complete.

Layout of a site:
  index.html, app.js, style.css, *.wasm   the page, bundled from web/
  manifest.json                           the contract with the page (see README)
  models/backbone/, models/head/          TF.js layers models (model.json + shards)
  keras/backbone.h5, keras/head.h5        the same models for Python (predict/evaluate)
  images.json, images/<k>/<n>.png         the training images, decoded once by Pillow
A failed build deletes its staging folder and leaves the previous site as it was; what a
killed build leaves beside the site (named with its pid) is cleared by the next build.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from . import manifest
from .dataset import Sample, load_rgb
from .errors import UserError


def check_output(out: Path) -> None:
    """Refuse an output path that is a file, or a folder that is not a site we built."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"{out}: output path exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and manifest.read(out) is None:
        raise UserError(f"{out}: folder exists, is not empty and holds no tfjs-transfer manifest.json; "
                        "refusing to replace it (choose another --out or remove it)")
    if not out.parent.exists():
        raise UserError(f"{out.parent}: parent folder of the output does not exist")


@contextlib.contextmanager
def staging(out: Path):
    """Yield an empty folder beside `out`; on success it replaces `out`, on failure it goes."""
    out = Path(out)
    check_output(out)
    remove_stale(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-{os.getpid()}-", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        old = out.parent / f".{out.name}.old-{os.getpid()}-{time.time_ns()}"
        if out.exists():
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old.exists():
                os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale(out: Path) -> None:
    """Clear what a killed build of `out` left beside it (its pid is in the name and gone):
    its staging folder, and the previous site moved aside if it died mid-swap."""
    for kind in ("old", "building"):
        prefix = f".{out.name}.{kind}-"
        for p in out.parent.iterdir():
            pid = p.name[len(prefix):].split("-", 1)[0]
            if not p.name.startswith(prefix) or not pid.isdigit() or p.is_symlink() or not p.is_dir():
                continue
            if _alive(int(pid)):
                continue  # a build still running (or a reused pid: left for a later build)
            if kind == "old" and not out.exists():
                os.replace(p, out)
            else:
                shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def copy_web(web_dist: Path, site: Path) -> list[str]:
    if not (web_dist / "index.html").is_file():
        raise UserError(f"{web_dist}: the web bundle is not built (run `make web`, or "
                        "`cd web && npm ci && npm run build`)")
    names = []
    for p in sorted(web_dist.iterdir()):
        if p.is_file():
            shutil.copy2(p, site / p.name)
            names.append(p.name)
    return names


def write_images(samples: list[Sample], labels: list[str], site: Path, roles: list[str]) -> dict:
    """The served training images: decoded by Pillow, stored losslessly, safe names. Each
    entry keeps its dataset folder (`split`) and the part it played in Python's training
    (`role`: train, valid or test), so the page can hold out exactly the same images."""
    if len(roles) != len(samples):
        raise ValueError(f"write_images: {len(roles)} roles for {len(samples)} samples")
    entries = []
    counters: dict[str, int] = {}
    for s, role in zip(samples, roles):
        k = labels.index(s.label)
        n = counters.get(s.label, 0)
        counters[s.label] = n + 1
        rel = f"images/{k}/{s.split}-{n}.png"
        dest = site / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(load_rgb(s.path)).save(dest, optimize=False, compress_level=6)
        entries.append({"path": rel, "label": s.label, "split": s.split, "role": role, "source": s.path.name})
    index = {"labels": labels, "images": entries}
    manifest.write_json(site / "images.json", index)
    return index

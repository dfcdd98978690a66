"""Assemble the static site and the Python-side models beside it, in a staging folder,
and swap both in only when complete.

Layout of a site (OUT, what a static host serves):
  index.html, app.js, *.js chunks, *.wasm the page, bundled from web/ (ES modules, training code apart)
  coi-sw.js, _headers                     opt-in isolation service worker; Netlify's headers
  manifest.json                           the contract with the page (see README)
  models/backbone/, models/head/          TF.js layers models (model.json + shards)
  images.json, images/<k>/<n>.png         the training images, decoded once by Pillow
  images/pack-<i>.bin                     the same PNGs' bytes end to end (write_images: one
                                          request a shard for the page's feature extraction)
and beside it, OUT.python/ (for `predict` and `evaluate`, never uploaded):
  backbone.h5, head.h5                    the same models for Python, without optimizer state
  models.json                             the fingerprint of the build that wrote them
A failed build leaves the previous pair as it was. Builds into one OUT take turns on a lock
file beside it (`.OUT.lock`); what a killed build leaves beside OUT (named with its pid) is
cleared, or rolled back, by the next build.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import manifest
from .dataset import Sample, load_rgb
from .errors import UserError

PYTHON_SUFFIX = ".python"


def python_dir(out: Path) -> Path:
    """Where the Python-side models of the site `out` live: beside it, never in it."""
    out = Path(out)
    return out.parent / f"{out.name}{PYTHON_SUFFIX}"


def python_path_from_site(out: Path) -> str:
    """python_dir(out) as the manifest records it: relative to the site folder."""
    return f"../{python_dir(out).name}"


def check_output(out: Path) -> None:
    """Refuse an output path that is a file, or a folder that is not a site we built (and the
    same for the Python-side folder beside it)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"{out}: output path exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and manifest.read(out) is None:
        raise UserError(f"{out}: folder exists, is not empty and holds no tfjs-transfer manifest.json; "
                        "refusing to replace it (choose another --out or remove it)")
    py = python_dir(out)
    if py.is_symlink() or (py.exists() and not py.is_dir()):
        raise UserError(f"{py}: the path for the site's Python-side models exists and is not a folder")
    if py.is_dir() and any(py.iterdir()) and manifest.read_python(py) is None:
        raise UserError(f"{py}: folder exists, is not empty and holds no tfjs-transfer {manifest.PYTHON_FILENAME}; "
                        "refusing to replace it (choose another --out or remove it)")
    if not out.parent.exists():
        raise UserError(f"{out.parent}: parent folder of the output does not exist")


@contextlib.contextmanager
def exclusive(out: Path):
    """Hold the build lock of `out` (a flock on `.OUT.lock` beside it, released by the OS if
    the process dies); while another build holds it, say so and wait for it to finish."""
    out = Path(out)
    path = out.parent / f".{out.name}.lock"
    announced = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not announced:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                print(f"waiting for the build of {out} running as pid {holder}…" if holder else
                      f"waiting for another build of {out}…", file=sys.stderr, flush=True)
                announced = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        # the holder before us removes the file when done: lock the file now at `path`
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


@dataclass
class Staged:
    """The two folders a build writes: the site, and the Python-side models."""
    site: Path
    python: Path


@contextlib.contextmanager
def staging(out: Path):
    """Yield a Staged pair of empty folders beside `out`; on success they replace `out` and
    python_dir(out), on failure they go. Call it holding `exclusive(out)`."""
    out = Path(out)
    check_output(out)
    remove_stale(out)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-{os.getpid()}-", dir=out.parent))
    staged = Staged(work / "site", work / "python")
    staged.site.mkdir()
    staged.python.mkdir()
    try:
        yield staged
        os.chmod(staged.site, 0o755)
        os.chmod(staged.python, 0o755)
        _swap_in(out, work)
    finally:
        _discard(work, out)


def _swap_in(out: Path, work: Path) -> None:
    """Python folder first, then the site: moving the staged site into place is the commit
    (readers start from its manifest). Until then `_roll_back` can restore the previous pair,
    here on an error or in a later build's remove_stale if this process is killed."""
    old = out.parent / f".{out.name}.old-{os.getpid()}-{time.time_ns()}"
    old.mkdir()
    py = python_dir(out)
    try:
        if py.exists():
            os.replace(py, old / "python")
        os.replace(work / "python", py)
        if out.exists():
            os.replace(out, old / "site")
        os.replace(work / "site", out)
    except BaseException:
        _roll_back(out, work, old)
        raise
    _discard(old, out)


def _roll_back(out: Path, work: Path, old: Path) -> None:
    """Undo an unfinished swap: `work` still holds the staged site (not committed), `old` holds
    what was moved aside. Safe to repeat at any point of the swap."""
    if (work / "site").exists():
        py = python_dir(out)
        if not (work / "python").exists() and py.exists():  # the new Python folder went in
            os.replace(py, work / "python")
        if (old / "python").exists() and not py.exists():
            os.replace(old / "python", py)
        if (old / "site").exists() and not out.exists():
            os.replace(old / "site", out)
    _discard(old, out)


def _discard(folder: Path, out: Path) -> None:
    """Delete a folder of ours beside `out`: renamed to a trash name first, so a half-deleted
    folder never passes for a staging or moved-aside one."""
    if not folder.exists():
        return
    trash = out.parent / f".{out.name}.trash-{os.getpid()}-{time.time_ns()}"
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def remove_stale(out: Path) -> None:
    """Clear what a killed build of `out` left beside it (its pid is in the name and gone):
    a swap it left half done is rolled back to the previous site and Python folder, then its
    staging, moved-aside and half-deleted folders go."""
    left: dict[int, dict[str, list[Path]]] = {}
    for p in sorted(out.parent.iterdir()):
        for kind in ("building", "old", "trash"):
            prefix = f".{out.name}.{kind}-"
            pid = p.name[len(prefix):].split("-", 1)[0]
            if p.name.startswith(prefix) and pid.isdigit() and not p.is_symlink() and p.is_dir():
                left.setdefault(int(pid), {}).setdefault(kind, []).append(p)
    for pid, folders in left.items():
        if _alive(pid):
            continue  # a build still running (or a reused pid: left for a later build)
        for building in folders.get("building", []):  # one of each per killed build
            for old in folders.get("old", []):
                _roll_back(out, building, old)
        for p in sum(folders.values(), []):
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


def write_images(samples: list[Sample], labels: list[str], site: Path, roles: list[str], *,
                 per_class: int = 0, seed: int = 0) -> dict:
    """The served training images: decoded by Pillow, stored losslessly, safe names. Each
    entry keeps its dataset folder (`split`) and the part it played in Python's training
    (`role`: train, valid or test), so the page can hold out exactly the same images.
    `per_class` > 0 serves a seeded sample of at most that many per class (a site for millions
    of images serves a page-sized sample, not millions of PNGs); `counts` says how many each
    class has in all. The same bytes also go, in order, into the shards listed in "packs"
    (each entry's "pack": [shard, offset, length], see _PackWriter)."""
    if len(roles) != len(samples):
        raise ValueError(f"write_images: {len(roles)} roles for {len(samples)} samples")
    served = served_sample([s.label for s in samples], per_class, seed)
    entries = []
    counters: dict[str, int] = {}
    packs = _PackWriter(site)
    try:
        for s, role in ((samples[i], roles[i]) for i in served):
            k = labels.index(s.label)
            n = counters.get(s.label, 0)
            counters[s.label] = n + 1
            rel = f"images/{k}/{s.split}-{n}.png"
            dest = site / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            png = io.BytesIO()
            Image.fromarray(load_rgb(s.path)).save(png, format="PNG", optimize=False, compress_level=6)
            data = png.getvalue()
            dest.write_bytes(data)
            entries.append({"path": rel, "label": s.label, "split": s.split, "role": role, "source": s.path.name,
                            "pack": packs.add(data)})
    finally:
        pack_paths = packs.close()
    total = Counter(s.label for s in samples)
    index = {"labels": labels, "images": entries, "counts": {label: total.get(label, 0) for label in labels},
             "per_class_cap": per_class or None, "packs": pack_paths}
    manifest.write_json(site / "images.json", index)
    return index


PACK_SHARD_BYTES = 4 * 1024 * 1024  # as the TF.js weights' shards: a large set streams shard by shard


class _PackWriter:
    """The served images' bytes concatenated into images/pack-<i>.bin shards of at most
    PACK_SHARD_BYTES (an image larger than that gets a shard of its own), so the page fetches
    a few files instead of one per image. add() says where an image's bytes went:
    [shard index into "packs", byte offset, byte length]."""

    def __init__(self, site: Path):
        self.site = site
        self.paths: list[str] = []
        self.file = None
        self.size = 0

    def add(self, data: bytes) -> list[int]:
        if self.file is None or (self.size and self.size + len(data) > PACK_SHARD_BYTES):
            self._next()
        offset = self.size
        self.file.write(data)
        self.size += len(data)
        return [len(self.paths) - 1, offset, len(data)]

    def _next(self) -> None:
        if self.file is not None:
            self.file.close()
        rel = f"images/pack-{len(self.paths)}.bin"
        (self.site / rel).parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.site / rel, "wb")
        self.paths.append(rel)
        self.size = 0

    def close(self) -> list[str]:
        """The shards' paths, relative to the site, in index order."""
        if self.file is not None:
            self.file.close()
            self.file = None
        return self.paths


def served_sample(labels: list[str], per_class: int, seed: int = 0) -> list[int]:
    """Indices, in order, of at most `per_class` items per label (all when 0), chosen by a
    seeded shuffle per label; memory: the indices."""
    if per_class <= 0:
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    keep = [i for label in sorted(by_label) for i in (by_label[label] if len(by_label[label]) <= per_class
                                                      else rng.choice(by_label[label], per_class, replace=False))]
    return sorted(int(i) for i in keep)

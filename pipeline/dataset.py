"""Find the labelled images under a folder and decode them the one way both sides agree on.

Three layouts are understood, checked in this order:
  splits   train/ [valid/|val/|validation/] [test/], each holding one folder per class
  folders  one folder per class
  flat     files named `label-N.ext` (the original tutorial's layout)
Decoding goes through Pillow: EXIF orientation is applied, palette, greyscale, CMYK and
16-bit images become 8-bit RGB, alpha is composited over white (as the page does on a
white canvas). Large images are
reduced while decoding (see `load_rgb`); only a decompression bomb is refused (see
`check_decoding_cost`). A file that cannot be decoded is reported with its path and
skipped, or refused with `strict`.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .archive import ZipMember
from .errors import UserError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
SPLIT_NAMES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}
FLAT_NAME = re.compile(r"^(?P<label>.+?)[-_ ]\d+$")
# What a decode may cost. Real photos compress to 1-5 pixels per byte (phone JPEGs, the
# shared logos and sign digits: 0.9-80), flat graphics to 300-3000 (PNG's deflate tops out
# near 1000:1), so the ratio alone cannot tell a flat 8000x8000 PNG from a bomb: up to
# FREE_PIXELS anything decodes; beyond, the file must hold a byte per MAX_PIXELS_PER_BYTE
# pixels (20x the most compressible real photo measured), and nothing decodes beyond MAX_PIXELS.
FREE_PIXELS = 64_000_000
MAX_PIXELS_PER_BYTE = 100
MAX_PIXELS = 1_000_000_000
# Pillow warns above its limit and raises above twice it; ours is checked first with the
# file's numbers, Pillow's stays as the backstop for other code paths.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Large images are decoded at 1/2, 1/4 or 1/8 scale (JPEG: DCT scaling during the decode;
# others: a box-filter reduce after it), never below this short side: twice the largest
# backbone input (299), so the resize to the input still averages and no detail the model
# can see is lost. The build's images/ PNGs come from here too, so the page trains on
# the same pixels as Python.
MIN_SIDE = 600


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    split: str = "train"


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass
class Dataset:
    root: Path
    layout: str
    labels: list[str]
    samples: list[Sample]
    skipped: list[Skipped] = field(default_factory=list)

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def counts(self, split: str | None = None) -> dict[str, int]:
        c = Counter(s.label for s in self.samples if split is None or s.split == split)
        return {label: c.get(label, 0) for label in self.labels}

    def without(self, bad: list[Skipped]) -> "Dataset":
        """The same dataset minus the samples found undecodable later, their reasons kept."""
        bad_paths = {b.path for b in bad}
        return Dataset(self.root, self.layout, self.labels,
                       [s for s in self.samples if s.path not in bad_paths], self.skipped + bad)

    def check_trainable(self, min_per_class: int = 2) -> None:
        """Refuse data no classifier can learn from, naming the class and the count."""
        counts = self.counts("train")
        if len(self.labels) < 2:
            raise UserError(f"{self.root}: found {len(self.labels)} class ({', '.join(self.labels) or 'none'}); "
                            "a classifier needs at least 2 classes")
        few = {k: v for k, v in counts.items() if v < min_per_class}
        if few:
            detail = ", ".join(f"'{k}' has {v}" for k, v in sorted(few.items()))
            raise UserError(f"{self.root}: every class needs at least {min_per_class} usable training images; {detail}")


def scan(root: str | os.PathLike) -> Dataset:
    """List (path, label, split) under `root`, with the files passed over and why. A zip, or
    a folder with project.json, is a project made in the page (project.py)."""
    from . import project

    root = Path(root)
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if project.is_project(root):
        return project.scan(root)
    if not root.is_dir():
        raise UserError(f"{root}: is a file, expected a folder of labelled images or a zip of class folders")
    subdirs = _visible_dirs(root)
    skipped: list[Skipped] = []
    samples: list[Sample] = []
    split_dirs = {SPLIT_NAMES[d.name.lower()]: d for d in subdirs if d.name.lower() in SPLIT_NAMES}
    if "train" in split_dirs:
        layout = "splits"
        for d in subdirs:
            if d.name.lower() not in SPLIT_NAMES:
                skipped.append(Skipped(d, "folder beside train/valid/test ignored"))
        for split, d in sorted(split_dirs.items()):
            samples += _class_folders(d, root, split, skipped)
    elif subdirs:
        layout = "folders"
        samples = _class_folders(root, root, "train", skipped)
    else:
        layout = "flat"
        for f in _visible_files(root):
            if not _is_image_name(f):
                skipped.append(Skipped(f, "not an image file extension"))
                continue
            m = FLAT_NAME.match(f.stem)
            if not m:
                skipped.append(Skipped(f, "name is not of the form label-N.ext"))
                continue
            samples.append(Sample(f, m.group("label")))
    samples = [s for s in samples if _inside(s.path, root, skipped)]
    if not samples:
        raise UserError(f"{root}: no images found (layouts understood: one folder per class, "
                        "label-N.ext files, or train/valid/test folders of class folders)")
    labels = sorted({s.label for s in samples})
    train_labels = {s.label for s in samples if s.split == "train"}
    for s in samples:
        if s.label not in train_labels:
            raise UserError(f"{s.path}: class '{s.label}' appears in {s.split}/ but not in train/")
    samples.sort(key=lambda s: (s.split, s.label, str(s.path)))
    return Dataset(root, layout, labels, samples, skipped)


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode any image Pillow reads into an HxWx3 uint8 RGB array, or raise UserError.

    An image whose short side is at least 2 * MIN_SIDE comes back reduced by an integer
    factor, its short side between MIN_SIDE and 2 * MIN_SIDE (a JPEG up to 1/8 during the
    decode, so a 200-megapixel photo never exists in memory at full size).
    """
    path = as_source(path)
    try:
        with warnings.catch_warnings():
            # check_decoding_cost applies the same limit with the file's numbers
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with path.open("rb") as f, Image.open(f) as im:
                check_decoding_cost(path, im.size, path.stat().st_size)
                im.seek(0)  # first frame of an animation
                im.draft("RGB", (MIN_SIDE, MIN_SIDE))  # JPEG only; a no-op for other formats
                im = _to_rgb(ImageOps.exif_transpose(im))
        factor = min(im.size) // MIN_SIDE
        if factor >= 2:
            im = im.reduce(factor)
        return _to_array(im)
    except UserError:
        raise
    except Image.DecompressionBombError as e:
        raise UserError(f"{path}: refused as a decompression bomb ({e})") from None
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise UserError(f"{path}: cannot decode image ({e or type(e).__name__})") from None


def as_source(path) -> Path | ZipMember:
    """An image's file: a Path, or an entry of a zip read in place (both have open, stat, name)."""
    return path if isinstance(path, ZipMember) else Path(path)


def check_decoding_cost(path: Path, size: tuple[int, int], file_bytes: int) -> None:
    """Refuse what would cost far more to decode than the file it came in (a decompression
    bomb), naming the file and the numbers; see FREE_PIXELS for the rule."""
    w, h = size
    pixels = w * h
    if pixels > MAX_PIXELS:
        raise UserError(f"{path}: {w}x{h} is {pixels / 1e6:.0f} megapixels, over the "
                        f"{MAX_PIXELS // 1_000_000}-megapixel limit")
    if pixels > FREE_PIXELS and pixels > file_bytes * MAX_PIXELS_PER_BYTE:
        raise UserError(f"{path}: refused as a decompression bomb: {w}x{h} ({pixels / 1e6:.0f} megapixels) "
                        f"from {file_bytes:,} bytes is {pixels / max(file_bytes, 1):.0f} pixels per byte; "
                        f"above {FREE_PIXELS // 1_000_000} megapixels the limit is {MAX_PIXELS_PER_BYTE}")


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode in ("RGB", "L") and "transparency" in im.info):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return im.convert("RGB")


def _to_array(im: Image.Image) -> np.ndarray:
    rgb = np.asarray(im, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"decoded to an unusable shape {rgb.shape}")
    return rgb


def _visible_dirs(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def _visible_files(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if not p.name.startswith(".") and not p.is_dir())


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def _class_folders(d: Path, root: Path, split: str, skipped: list[Skipped]) -> list[Sample]:
    out = []
    for f in _visible_files(d):
        skipped.append(Skipped(f, "file outside any class folder ignored"))
    for class_dir in _visible_dirs(d):
        for f in _visible_files(class_dir):
            if _is_image_name(f):
                out.append(Sample(f, class_dir.name, split))
            else:
                skipped.append(Skipped(f, "not an image file extension"))
        for sub in _visible_dirs(class_dir):
            skipped.append(Skipped(sub, "nested folder inside a class folder ignored"))
    return out


def _inside(path: Path, root: Path, skipped: list[Skipped]) -> bool:
    """Symlinks may point anywhere; only files that resolve inside the dataset are read."""
    try:
        real = path.resolve(strict=True)
    except OSError:
        skipped.append(Skipped(path, "broken symlink"))
        return False
    if not real.is_relative_to(root.resolve()):
        skipped.append(Skipped(path, "symlink pointing outside the dataset ignored"))
        return False
    return True

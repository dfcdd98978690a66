"""Small image datasets made on the fly, so tests never depend on downloaded data; and
a runner for the Node checks in web/tools."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "gold": (230, 180, 20)}


def shape_image(label: str, i: int, size: int = 64) -> Image.Image:
    """A class-distinctive picture: a coloured shape on white, jittered by i. The same in every
    process (Python's str hash is not), and no two i below 200 give the same picture: the
    duplicate-content tests rely on every generated image being distinct."""
    im = Image.new("RGB", (size + i % 20, size), "white")
    d = ImageDraw.Draw(im)
    o = 2 + (i // 20) % 10
    rng = np.random.default_rng(list(label.encode()) or [0])
    colour = COLOURS.get(label, tuple(int(c) for c in rng.integers(0, 255, 3)))
    if label in ("red", "gold"):
        d.ellipse([o, o, size - o, size - o], fill=colour)
    else:
        d.rectangle([o, o, size - o, size - o], fill=colour)
    return im


def make_folders(root: Path, labels=("red", "green", "blue"), per_class: int = 6, ext: str = "png") -> Path:
    for label in labels:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape_image(label, i).save(root / label / f"{label}{i}.{ext}")
    return root


def make_flat(root: Path, labels=("red", "green"), per_class: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for label in labels:
        for i in range(per_class):
            shape_image(label, i).save(root / f"{label}-{i}.jpg", quality=92)
    return root


SPLIT_OFFSET = {"train": 0, "valid": 100, "val": 100, "test": 150}  # distinct pictures in each split


def make_splits(root: Path, labels=("red", "green"), counts=(("train", 6), ("valid", 2), ("test", 2))) -> Path:
    for split, n in counts:
        for label in labels:
            (root / split / label).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape_image(label, SPLIT_OFFSET[split] + i).save(root / split / label / f"{i}.png")
    return root


def tiny_image(label: str, i: int, size: int = 24) -> Image.Image:
    """A small picture unique to (label, i): the class colour (fixed per label) plus seeded noise."""
    base = np.random.default_rng(list(label.encode()) or [0]).integers(30, 226, 3)
    noise = np.random.default_rng([i, *label.encode()]).integers(-25, 26, (size, size, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def make_tiny(root: Path, labels, per_class: int) -> Path:
    """Many small distinct images fast: `per_class` tiny PNGs in a folder per label."""
    for label in labels:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            tiny_image(label, i).save(root / label / f"{i}.png", compress_level=1)
    return root


WEB = Path(__file__).resolve().parent.parent / "web"


def run_node_tool(name: str, *args: str, timeout: int = 600) -> dict:
    """Runs web/tools/<name> with node (the packages in web/node_modules) and returns the
    JSON object it prints."""
    if shutil.which("node") is None or not (WEB / "node_modules" / "@tensorflow" / "tfjs-backend-wasm").is_dir():
        pytest.fail("node and web/node_modules are needed (make setup installs them)")
    out = subprocess.run(["node", str(WEB / "tools" / name), *args], capture_output=True, text=True,
                         check=True, timeout=timeout, cwd=WEB)
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))

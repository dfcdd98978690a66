"""Deterministic image augmentation: small rotation, zoom, shift and brightness.

Each augmented view is a pure function of (image content, view number), so its
features can be cached like the original's. Flips are off unless asked for: they
change the meaning of many classes (hand signs, text, logos).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Augmentation:
    copies: int = 4              # augmented views per training image, besides the original
    rotation_degrees: float = 10.0
    zoom: float = 0.1            # scale in [1 - zoom, 1 + zoom]
    shift: float = 0.05          # fraction of the size, each axis
    brightness: float = 0.15     # fraction of 255 added or removed
    flip: bool = False

    def key(self) -> dict:
        return asdict(self)

    def params(self, digest: str, view: int) -> dict:
        rng = np.random.default_rng([int(digest[:16], 16), view])
        return {"angle": math.radians(rng.uniform(-self.rotation_degrees, self.rotation_degrees)),
                "scale": rng.uniform(1 - self.zoom, 1 + self.zoom),
                "tx": rng.uniform(-self.shift, self.shift), "ty": rng.uniform(-self.shift, self.shift),
                "delta": rng.uniform(-self.brightness, self.brightness) * 255.0,
                "flip": bool(self.flip and rng.random() < 0.5)}


def apply(pixels: np.ndarray, p: dict) -> np.ndarray:
    """HxWx3 float pixels in [0, 255] -> the same size, transformed (reflect at the borders)."""
    import tensorflow as tf

    h, w = pixels.shape[:2]
    cx, cy = (w - 1) / 2, (h - 1) / 2
    c, s = math.cos(p["angle"]) / p["scale"], math.sin(p["angle"]) / p["scale"]
    # output (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2)
    a0, a1, b0, b1 = c, -s, s, c
    a2 = cx - a0 * cx - a1 * cy + p["tx"] * w
    b2 = cy - b0 * cx - b1 * cy + p["ty"] * h
    x = tf.constant(pixels[None], tf.float32)
    if p["flip"]:
        x = tf.reverse(x, axis=[2])
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=tf.constant([[a0, a1, a2, b0, b1, b2, 0.0, 0.0]], tf.float32),
        output_shape=tf.constant([h, w]), fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    return np.clip(x.numpy()[0] + p["delta"], 0.0, 255.0).astype(np.float32)

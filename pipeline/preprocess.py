"""The one definition of resize + scaling, shared with the browser through the manifest.

Resize: TF's ResizeBilinear with align_corners=False, half_pixel_centers=False. That is
exactly what `tf.image.resizeBilinear(x, size)` does in TF.js by default, so Python and
the page see the same pixels (measured: features agree to ~1e-3, cosine 1 - 1e-10).
Pillow's or the canvas's resize would not (cosine ~0.98), so neither is used.

Scaling: y = (x[channel_order] - mean) * scale + offset, per channel. That one formula
covers MobileNet/Inception ([-1, 1]) and VGG16 (caffe: BGR minus the ImageNet mean).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    height: int
    width: int
    channel_order: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1 / 127.5
    offset: float = -1.0
    # "stretch": resize to height x width (aspect ratio not kept, as the tutorial does);
    # "crop_or_pad": centre-crop or zero-pad to size without resampling (tf.image.resize_with_crop_or_pad).
    fit: str = "stretch"

    def to_manifest(self) -> dict:
        d = asdict(self)
        d["mean"] = list(self.mean)
        d["resize"] = {"method": "bilinear", "align_corners": False, "half_pixel_centers": False}
        return d

    @classmethod
    def from_manifest(cls, d: dict) -> "Preprocessing":
        return cls(int(d["height"]), int(d["width"]), d["channel_order"], tuple(d["mean"]),
                   float(d["scale"]), float(d["offset"]), d.get("fit", "stretch"))

    def with_fit(self, fit: str) -> "Preprocessing":
        return Preprocessing(self.height, self.width, self.channel_order, self.mean, self.scale, self.offset, fit)


MOBILENET = Preprocessing(224, 224)
INCEPTION = Preprocessing(299, 299)
CAFFE = Preprocessing(224, 224, "BGR", (103.939, 116.779, 123.68), 1.0, 0.0)


def resize(rgb: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """HxWx3 uint8 -> height x width x 3 float32 pixels in [0, 255]."""
    import tensorflow as tf

    x = tf.convert_to_tensor(rgb[None].astype(np.float32))
    if prep.fit == "crop_or_pad":
        x = tf.image.resize_with_crop_or_pad(x, prep.height, prep.width)
    elif prep.fit == "stretch":
        x = tf.raw_ops.ResizeBilinear(images=x, size=[prep.height, prep.width],
                                      align_corners=False, half_pixel_centers=False)
    else:
        raise ValueError(f"unknown fit {prep.fit!r}")
    return x.numpy()[0]


def normalize(pixels: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Resized pixels (..., 3) in [0, 255] -> the backbone's input scale."""
    if prep.channel_order == "BGR":
        pixels = pixels[..., ::-1]
    elif prep.channel_order != "RGB":
        raise ValueError(f"unknown channel order {prep.channel_order!r}")
    mean = np.asarray(prep.mean, dtype=np.float32)
    return ((pixels - mean) * np.float32(prep.scale) + np.float32(prep.offset)).astype(np.float32)


def prepare(rgb: np.ndarray, prep: Preprocessing) -> np.ndarray:
    return normalize(resize(rgb, prep), prep)

"""The backbone as the site serves it, and the real images that check it.

Float builds serve the backbone with its batch-norms and paddings folded into the convs
(fold.py): same features, fewer layers for the page to run. uint8 builds keep the
batch-norms and equalize the conv channel ranges into them instead (quantize.py). Either
rewrite is checked against the original on real images before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dataset, fold, preprocess, quantize
from .errors import UserError

# Folding is exact in real arithmetic; float32 rounding moved MobileNet's features (values
# up to 6) by 7.6e-4 on the logos (relative 1.3e-4) and by up to 6.9e-3 (relative 1.1e-3) on
# flat-colour test images, where large batch-norm scales amplify it. A folding bug moves
# them by the order of the values themselves; relative 1e-2 tells the two apart.
FOLD_TOLERANCE = 1e-2


@dataclass
class ServedBackbone:
    model: object
    folded: fold.FoldReport | None = None
    equalized: quantize.EqualizeReport | None = None

    def feature_model(self, original) -> tuple[object, str]:
        """The model to extract training features with, and its feature-cache tag: the folded
        backbone when there is one, so the head trains on the features the page computes."""
        if self.folded and self.folded.folded:
            return self.model, "folded"
        return original, ""

    def describe(self) -> str | None:
        if not self.folded:
            return None
        return (f"{self.folded.batch_norms} batch-norms and {self.folded.paddings} paddings folded into convs "
                f"(features change by at most {self.folded.max_abs_diff or 0:.1e})")


def check_pixels(samples, prep, count: int = 8) -> np.ndarray:
    """The first `count` images that decode, preprocessed: real inputs to check rewrites on
    (the ones that do not decode are reported by features.extract)."""
    out = []
    for s in samples:
        try:
            out.append(preprocess.prepare(dataset.load_rgb(s.path), prep))
        except UserError:
            continue
        if len(out) == count:
            break
    if not out:
        return np.zeros((1, prep.height, prep.width, 3), np.float32)
    return np.stack(out)


def served_backbone(model, check: np.ndarray, quantization: str | None, fold_batch_norms: bool) -> ServedBackbone:
    """`model` rewritten for serving (see the module docstring), checked on `check`."""
    # not folded for uint8: it stores each tensor with one range, and folding gives every
    # output channel of a kernel its own batch-norm scale (92.7% -> 11.9% on sign digits)
    if quantization == "uint8":
        equalized, report = quantize.equalize(model, check)
        return ServedBackbone(equalized, equalized=report)
    if not fold_batch_norms:
        return ServedBackbone(model)
    folded, report = fold.fold_batch_norms(model, check)
    if report.relative_error() > FOLD_TOLERANCE:
        raise UserError(f"folding batch-norms changed the features by {report.max_abs_diff:.3g} (relative "
                        f"{report.relative_error():.2g}, over {FOLD_TOLERANCE}); rebuild with --no-fold")
    return ServedBackbone(folded, folded=report)

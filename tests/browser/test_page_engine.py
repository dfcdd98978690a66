"""The page's features against those the build's XNNPACK engine (pipeline/tflite_engine.py)
computes, on the served (folded) backbone: the head trains on the engine's features and
predicts on the page's, so they are held to the page's bound against Keras (FEATURE_ATOL)."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import open_app
from .test_page import FEATURE_ATOL, data_url, test_paths  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def test_page_features_match_the_xnnpack_engine(page, site_url, built_site, test_paths):  # noqa: F811
    from tfjs_transfer import tflite_engine
    from tfjs_transfer.predict import Predictor

    predictor = Predictor(built_site)
    pixels = predictor.pixels([str(p) for p in test_paths])
    engine = tflite_engine.checked_runner(predictor.backbone, None)
    assert engine is not None, "the served backbone did not run on TFLite"
    ref = engine(pixels, 32).reshape(len(test_paths), -1)
    assert np.abs(ref - predictor.features([str(p) for p in test_paths]).reshape(len(test_paths), -1)).max() > 0
    open_app(page, site_url)
    for path, want in zip(test_paths, ref):
        got = np.array(page.evaluate("u => window.tfjsTransfer.featuresUrl(u)", data_url(path)))
        max_abs = np.abs(got - want).max()
        print(f"{path.name}: page vs XNNPACK features max |diff| {max_abs:.3g}")
        assert max_abs <= FEATURE_ATOL, path.name

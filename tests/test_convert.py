"""Parity: the converted TF.js models, run by @tensorflow/tfjs in Node (pure JS, cpu backend)
through the page's own preprocess.js, against Keras on the same decoded pixels."""

import base64
import json
import shutil
import subprocess

import numpy as np
import pytest

from tfjs_transfer import convert
from tfjs_transfer.dataset import load_rgb, scan
from tfjs_transfer.predict import Predictor

from .conftest import BRAND_TEST, BRAND_TRAIN, ROOT

pytestmark = pytest.mark.slow

# Measured on the 90 logos: features differ by at most ~3e-3 (on values up to 6: float32
# summation order), probabilities by ~1e-6 or less. The bounds leave a margin of ~10x.
FEATURE_ATOL = 0.03
PROBABILITY_ATOL = 1e-4


def run_tfjs_in_node(site, paths, tmp_path):
    if shutil.which("node") is None or not (ROOT / "web" / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        pytest.fail("node and web/node_modules are needed (make setup installs them)")
    images = [load_rgb(p) for p in paths]
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"site": str(site), "images": [
        {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()} for a in images]}))
    out = subprocess.run(["node", str(ROOT / "web" / "tools" / "parity.mjs"), str(request)],
                         capture_output=True, text=True, check=True, timeout=600)
    response = json.loads(out.stdout)
    features = np.stack([np.frombuffer(base64.b64decode(f), np.float32) for f in response["features"]])
    return np.array(response["probabilities"]), features, response


def test_tfjs_in_node_matches_keras_on_the_90_logos_and_the_test_images(built_site, tmp_path):
    paths = [s.path for s in scan(BRAND_TRAIN).samples] + sorted(BRAND_TEST.iterdir())
    probabilities, features, response = run_tfjs_in_node(built_site, paths, tmp_path)
    assert response["backend"] == "cpu"
    predictor = Predictor(built_site)
    keras_features = predictor.features(paths).reshape(len(paths), -1)
    keras_probabilities = predictor.probabilities(paths)
    feature_error = np.abs(features - keras_features).max()
    probability_error = np.abs(probabilities - keras_probabilities).max()
    print(f"parity on {len(paths)} images: features max |diff| {feature_error:.2e}, "
          f"probabilities max |diff| {probability_error:.2e}")
    assert feature_error < FEATURE_ATOL
    assert probability_error < PROBABILITY_ATOL
    assert (probabilities.argmax(1) == keras_probabilities.argmax(1)).all()


def test_reloaded_tfjs_model_equals_keras(built_site):
    predictor = Predictor(built_site)
    x = np.random.default_rng(0).normal(0, 1, (4, *predictor.backbone.output_shape[1:])).astype(np.float32)
    assert convert.roundtrip_error(predictor.head, built_site / "models" / "head" / "model.json", x) < 1e-5


def test_quantize_value_is_checked(tmp_path):
    with pytest.raises(ValueError):
        convert.to_tfjs(None, tmp_path, "int4")

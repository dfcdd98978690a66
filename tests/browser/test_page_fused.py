"""The backbone as fused ops (web/src/fused.js) in Chromium on wasm: the served backbone runs
as fused conv + bias + relu6 kernels (no separate ClipByValue / Add / Relu), all of them in one
kernel (web/src/wasm/chain.js), its features
equal model.apply's (layer by layer) on the 4 test images and every served logo, both within
the page's bound of Keras's, and ?fuse=0 runs the layers one by one.

Measured (wasm, 2 cores, the page's own conv kernels, web/src/wasm/conv.js): features max
|fused - apply| 3.4e-3 on the 4 test images, 4.1e-3 on the 90 logos (values in [0, 6]);
against Keras fused 0 / 0 (test images / logos: the same float32 operations as TF's CPU
kernels here), apply 3.4e-3 / 4.1e-3.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import open_app
from .test_page import FEATURE_ATOL, data_url, python_reference, test_paths  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

# Features are in [0, 6]. The fused kernels add their bias in another place than the layers one
# by one: a rounding difference that 27 layers of folded weights grow to the size of the page's
# difference with Keras, so the plan is held to the same bound (test_page.FEATURE_ATOL).
FUSED_ATOL = FEATURE_ATOL

# The page's features of each url with the plan on and off: [[fused, plain], ...].
FEATURES_JS = """async (urls) => {
  const T = window.tfjsTransfer;
  const rows = [];
  try {
    for (const u of urls) {
      T.steps.useFusedPlans(true);
      const fused = await T.featuresUrl(u);
      T.steps.useFusedPlans(false);
      rows.push([fused, await T.featuresUrl(u)]);
    }
  } finally {
    T.steps.useFusedPlans(true);
  }
  return rows;
}"""

# The kernels of one backbone run as the page runs it (features()).
KERNELS_JS = """async () => {
  const T = window.tfjsTransfer, tf = T.tf, m = T.manifest;
  const p = await tf.profile(() => {
    tf.tidy(() => T.steps.features(tf, T.steps.backbone(), tf.zeros([1, m.input.height, m.input.width, m.input.channels]))).dispose();
  });
  return [...new Set(p.kernels.map((k) => k.name))].sort();
}"""


def test_fused_backbone_equals_apply_on_test_images_and_logos(page, site_url, built_site, test_paths,
                                                             python_reference):
    from tfjs_transfer.predict import Predictor

    open_app(page, site_url)
    assert page.evaluate("window.tfjsTransfer.backend()") == "wasm"
    kernels = page.evaluate(KERNELS_JS)
    # its 27 convolutions, bias and relu6 inside each, as one kernel (web/src/wasm/chain.js)
    assert kernels == ["TfjsTransferConvChain"], kernels
    tests = np.array(page.evaluate(FEATURES_JS, [data_url(p) for p in test_paths]))  # [image, fused/plain, value]
    keras = python_reference["features"]
    fused_keras, plain_keras = (np.abs(tests[:, k] - keras).max() for k in (0, 1))
    test_diff = np.abs(tests[:, 0] - tests[:, 1]).max()
    logos = [it["path"] for it in json.loads((Path(built_site) / "images.json").read_text())["images"]]
    assert len(logos) >= 90
    rows = np.array(page.evaluate(FEATURES_JS, logos))
    logo_keras = np.asarray(Predictor(built_site).features([str(Path(built_site) / p) for p in logos])).reshape(len(logos), -1)
    logo_diff = np.abs(rows[:, 0] - rows[:, 1]).max()
    logo_fused_keras, logo_plain_keras = (np.abs(rows[:, k] - logo_keras).max() for k in (0, 1))
    print(f"features max |fused - apply|: {len(test_paths)} test images {test_diff:.3g}, {len(logos)} logos "
          f"{logo_diff:.3g}; max |page - Keras|: fused {fused_keras:.3g} / {logo_fused_keras:.3g}, "
          f"apply {plain_keras:.3g} / {logo_plain_keras:.3g} (test images / logos)")
    assert 0 < test_diff <= FUSED_ATOL  # 0 would mean the plan did not run
    assert logo_diff <= FUSED_ATOL
    assert max(fused_keras, logo_fused_keras) <= FEATURE_ATOL


def test_fuse_0_runs_the_backbone_layer_by_layer(page, site_url):
    open_app(page, f"{site_url}?fuse=0")
    kernels = page.evaluate(KERNELS_JS)
    assert "ClipByValue" in kernels and "FusedDepthwiseConv2D" not in kernels, kernels

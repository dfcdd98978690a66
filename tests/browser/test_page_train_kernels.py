"""The page's own wasm training kernels (web/src/wasm/: sparse products, in-place fused Adam,
SIMD transposes, shared clones) in Chromium train the default head as TF.js' own wasm kernels
do (?tfjs=all): on the served logos' features, the same seed and no dropout, the weights and
the losses of every epoch agree to float32 rounding (the products sum in another order)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from .conftest import Watched, open_app

pytestmark = pytest.mark.browser

# The page's features of the served logos (main thread), as base64 float32, with the labels.
FEATURES = """async () => {
  const T = window.tfjsTransfer, P = T.steps, set = P.trainSet();
  const feats = await P.extractFeatures({ tf: T.tf, backbone: P.backbone(), manifest: T.manifest,
    items: set.items, loadPixels: P.loadPixels });
  const bytes = new Uint8Array(feats.data.buffer, feats.data.byteOffset, feats.data.byteLength);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { b64: btoa(s), count: feats.count, size: feats.size, labelIndex: set.labelIndex };
}"""

# trainHead on those features (every row trains), dropout 0 and a fixed seed so both pages
# train the same steps; the manifest's batch size and learning rate. Weights as base64 float32.
TRAIN = """async (f) => {
  const T = window.tfjsTransfer, tf = T.tf, hp = T.manifest.training.hyperparameters;
  const raw = atob(f.b64), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const feats = { data: new Float32Array(bytes.buffer), count: f.count, size: f.size };
  const manifest = JSON.parse(JSON.stringify(T.manifest));
  manifest.head.layers.forEach((l) => { if (l.type === 'dropout') l.rate = 0; });
  const r = await T.steps.trainHead({ tf, manifest, feats, labelIndex: f.labelIndex, seed: 7,
    split: { train: [...Array(f.count).keys()], valid: [] },
    hyper: { epochs: 5, batchSize: hp.batch_size, learningRate: hp.learning_rate, optimizer: hp.optimizer, loss: hp.loss } });
  const weights = r.model.getWeights().map((w) => {
    const v = w.dataSync();
    let s = '';
    const b = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
    return btoa(s);
  });
  r.model.dispose();
  return { weights, loss: r.history.history.loss, backend: tf.getBackend() };
}"""


def _floats(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4")


def test_own_kernels_train_as_tfjs_kernels(watched, browser, site_url):
    ours = open_app(watched.page, site_url + "?backend=wasm")
    info = ours.inner_text("[data-testid=backend-info]")
    assert "sparse feature products" in info and "fused Adam" in info, info
    feats = ours.evaluate(FEATURES)
    assert (_floats(feats["b64"]) == 0).mean() > 0.5, "features not mostly zeros: the sparse path is not tested"
    a = ours.evaluate(TRAIN, feats)
    context = browser.new_context()
    try:
        theirs = Watched(context.new_page())
        open_app(theirs.page, site_url + "?backend=wasm&tfjs=all")
        assert "fused Adam" not in theirs.page.inner_text("[data-testid=backend-info]")
        b = theirs.page.evaluate(TRAIN, feats)
        assert not theirs.unexpected(), theirs.unexpected()
    finally:
        context.close()
    assert a["backend"] == b["backend"] == "wasm"
    diffs = [float(np.abs(_floats(x) - _floats(y)).max()) for x, y in zip(a["weights"], b["weights"])]
    moved = float(np.abs(_floats(a["weights"][0])).max())
    print(f"\nown kernels vs ?tfjs=all, 5 epochs: weights max |diff| per variable {diffs}; "
          f"losses {a['loss']} vs {b['loss']}")
    assert len(a["weights"]) == len(b["weights"]) == 4 and moved > 0
    # an Adam step moves each weight by up to the learning rate (3e-4): a wrong or skipped
    # update, or a stale packed kernel, is far above this
    assert max(diffs) <= 1e-5, diffs
    assert np.allclose(a["loss"], b["loss"], rtol=1e-4, atol=1e-6), (a["loss"], b["loss"])
    assert a["loss"][-1] < a["loss"][0]

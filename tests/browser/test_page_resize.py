"""The page's wasm ResizeBilinear (web/src/wasm/resize.js) in Chromium: on the 90 served logos
it gives TF.js' own wasm kernel's values to the bit (the page with ?tfjs=resize keeps TF.js'
kernel), both for the resize alone and for the page's whole preprocessing."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from .conftest import Watched, open_app

pytestmark = pytest.mark.browser

# In the page: every served logo decoded as the page decodes it, resized as preprocess.js
# resizes it, and the page's preprocess output. Per image a digest of the float32 bits
# (FNV-1a over the 32-bit words), and the values themselves (base64) for the first `full`.
RESIZED = """async (full) => {
  const T = window.tfjsTransfer, tf = T.tf, m = T.manifest, rz = m.preprocessing.resize;
  const list = (await (await fetch(m.images.path || 'images.json')).json()).images;
  const read = (t, keep) => {
    const v = t.dataSync(); t.dispose();
    const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
    let h = 0x811c9dc5;
    for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193);
    let b64 = null;
    if (keep) {
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      let s = '';
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      b64 = btoa(s);
    }
    return { digest: h >>> 0, length: v.length, b64 };
  };
  const out = [];
  for (const [i, it] of list.entries()) {
    const bitmap = await createImageBitmap(await (await fetch(it.path)).blob());
    const pixels = tf.browser.fromPixels(bitmap, 3);
    bitmap.close();
    const floats = tf.cast(pixels, 'float32');
    out.push({ shape: pixels.shape,
      resized: read(tf.image.resizeBilinear(floats, [m.input.height, m.input.width],
        rz.align_corners, rz.half_pixel_centers), i < full),
      preprocessed: read(T.steps.preprocess(tf, pixels, m), i < full) });
    pixels.dispose(); floats.dispose();
  }
  return out;
}"""
FULL = 3  # images whose values are compared one by one (max |diff|); the rest by digest


def _values(item) -> np.ndarray:
    return np.frombuffer(base64.b64decode(item["b64"]), dtype="<f4")


def test_resize_is_bit_exact_with_tfjs_wasm(watched, browser, site_url):
    ours = open_app(watched.page, site_url + "?backend=wasm")
    assert "SIMD resize" in ours.inner_text("[data-testid=backend-info]")
    context = browser.new_context()
    try:
        theirs = Watched(context.new_page())
        open_app(theirs.page, site_url + "?backend=wasm&tfjs=resize")
        assert "SIMD resize" not in theirs.page.inner_text("[data-testid=backend-info]")
        a, b = ours.evaluate(RESIZED, FULL), theirs.page.evaluate(RESIZED, FULL)
        assert not theirs.unexpected(), theirs.unexpected()
    finally:
        context.close()
    assert len(a) == len(b) == 90
    assert any(x["shape"][:2] != [224, 224] for x in a), "no logo needs resizing: nothing is tested"
    for i, (x, y) in enumerate(zip(a, b)):
        assert x["shape"] == y["shape"]
        for key in ("resized", "preprocessed"):
            assert x[key]["length"] == y[key]["length"] == 224 * 224 * 3
            if i < FULL:
                diff = np.abs(_values(x[key]) - _values(y[key])).max()
                assert diff == 0, f"logo {i} {x['shape']}: {key} max |diff| {diff}"
            assert x[key]["digest"] == y[key]["digest"], f"logo {i} {x['shape']}: {key} values differ"

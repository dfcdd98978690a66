"""The page's own training kernels on two threads (web/src/wasm/pool.js: the sparse products and
Adam split with a helper worker on the wasm backend's shared memory) in Chromium train the
default head to exactly the weights and losses of one thread (?kernelThreads=1): the halves are
the same float32 operations on the same values."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import Watched, open_app
from .test_page_train_kernels import FEATURES, TRAIN, _floats

pytestmark = pytest.mark.browser

# the helper starts in the background: wait until it has taken a job, or report why not
SPLITS = "() => (window.tfjsTransfer.kernelThreads() || {}).splits ?? null"


def test_two_kernel_threads_train_as_one(watched, browser, site_url):
    two = open_app(watched.page, site_url + "?backend=wasm")
    info = two.inner_text("[data-testid=backend-info]")
    assert "own kernels on 2 threads" in info, info
    feats = two.evaluate(FEATURES)
    assert (_floats(feats["b64"]) == 0).mean() > 0.5, "features not mostly zeros: the sparse path is not tested"
    before = two.evaluate(SPLITS)
    a = two.evaluate(TRAIN, feats)
    splits = two.evaluate(SPLITS) - before
    context = browser.new_context()
    try:
        one = Watched(context.new_page())
        open_app(one.page, site_url + "?backend=wasm&kernelThreads=1")
        assert "own kernels on 2 threads" not in one.page.inner_text("[data-testid=backend-info]")
        b = one.page.evaluate(TRAIN, feats)
        assert one.page.evaluate(SPLITS) is None
        assert not one.unexpected(), one.unexpected()
    finally:
        context.close()
    # 5 epochs of 3 steps, each with 3 jobs (forward, kernel gradient, kernel update) that the
    # helper shares when it is awake in time (a busy machine may leave some to the caller)
    assert 0 < splits <= 3 * 5 * 3, splits
    diffs = [float(np.abs(_floats(x) - _floats(y)).max()) for x, y in zip(a["weights"], b["weights"])]
    print(f"\ntwo kernel threads vs one, 5 epochs: {splits} split jobs; weights max |diff| {diffs}")
    assert len(a["weights"]) == len(b["weights"]) == 4
    assert float(np.abs(_floats(a["weights"][0])).max()) > 0
    assert all(_floats(x).tobytes() == _floats(y).tobytes() for x, y in zip(a["weights"], b["weights"])), diffs
    assert a["loss"] == b["loss"]


ONE_CORE = "Object.defineProperty(navigator, 'hardwareConcurrency', {configurable: true, get: () => 1})"


def test_one_core_keeps_the_kernels_on_one_thread(browser, site_url):
    """A machine with one core (Chromium reports the cores the process may run on) starts no
    helper: it would take turns with the thread it helps."""
    context = browser.new_context()
    try:
        context.add_init_script(ONE_CORE)
        one = Watched(context.new_page())
        open_app(one.page, site_url + "?backend=wasm&worker=0")
        info = one.page.inner_text("[data-testid=backend-info]")
        assert one.page.evaluate("navigator.hardwareConcurrency") == 1
        assert "wasm" in info and "own kernels on 2 threads" not in info, info
        assert one.page.evaluate(SPLITS) is None
        assert not one.unexpected(), one.unexpected()
    finally:
        context.close()

"""The served images read from their pack shards (web/src/packs.js, site.py's images/pack-*.bin),
in headless Chromium: the page's extraction of the served set, on the main thread and in its
worker, asks for each shard once instead of each image, and its features equal those the
same images give by their own URLs (max |diff| 0); a page that fetched a shard's spans first
(as the worker's lanes do) reads the whole shard Chromium's cache answers with (a 206) the same."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import open_app

pytestmark = pytest.mark.browser

# the served set's train + valid examples: with their pack slices, and without (by URL)
EXTRACT = """async ({ packed, worker }) => {
    const t = window.tfjsTransfer;
    const items = t.steps.trainSet().items.map((e) => (packed ? e : { src: e.src, name: e.name, id: e.id }));
    const opts = { tf: t.tf, backbone: t.steps.backbone(), manifest: t.manifest, items, loadPixels: t.steps.loadPixels };
    const w = worker ? await t.tfWorker() : null;
    const feats = worker ? await w.extract(opts) : await t.steps.extractFeatures(opts);
    return { rows: items.length, size: feats.size, data: Array.from(feats.data),
             packs: items.filter((e) => e.pack).length };
}"""


def image_requests(page, run):
    """The fetches under images/ the page makes while `run()` runs (thumbnails are <img>s, not counted)."""
    seen = []

    def on_request(request):
        if "/images/" in request.url and request.resource_type == "fetch":
            ranged = request.headers.get("range")
            seen.append(request.url.rsplit("/images/", 1)[1] + (f" {ranged}" if ranged else ""))
    page.on("request", on_request)
    try:
        result = run()
    finally:
        page.remove_listener("request", on_request)
    return result, seen


@pytest.mark.parametrize("worker", [False, True], ids=["main thread", "worker"])
def test_the_served_set_is_read_from_its_shards_with_the_same_features(page, site_url, worker):
    open_app(page, site_url)
    if worker:
        assert page.evaluate("window.tfjsTransfer.tfWorker().then((w) => w !== null)"), "no worker in this page"
    packs = page.evaluate("fetch('images.json').then((r) => r.json()).then((j) => j.packs)")
    assert packs == ["images/pack-0.bin"]
    if not worker:
        # a page that fetched a shard's spans first (as the worker's lanes do): Chromium then answers
        # a request for the whole shard from its cache as a 206 of all its bytes, read the same
        # (web/src/packs.js baseOf)
        spans = page.evaluate("""() => Promise.all(['bytes=0-99', 'bytes=100-'].map(async (range) => {
            const r = await fetch('images/pack-0.bin', { headers: { Range: range } });
            await r.arrayBuffer();
            return r.status;
        }))""")
        assert spans == [206, 206], spans
    packed, asked = image_requests(page, lambda: page.evaluate(EXTRACT, {"packed": True, "worker": worker}))
    assert packed["rows"] == 90 and packed["packs"] == 90
    lanes = page.evaluate("window.tfjsTransfer.tfWorker().then((w) => w.lanes.length)") if worker else 1
    if lanes == 1:
        assert asked == ["pack-0.bin"], asked
    else:  # each lane fetches its share's bytes of the shard: every byte once
        assert len(asked) == lanes and all(a.startswith("pack-0.bin bytes=") for a in asked), asked
        spans = sorted(tuple(int(v) for v in a.split("=")[1].split("-")) for a in asked)
        assert spans[0][0] == 0 and all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:])), spans
    by_url, asked_by_url = image_requests(page, lambda: page.evaluate(EXTRACT, {"packed": False, "worker": worker}))
    assert len(asked_by_url) == 90 and not any(a.startswith("pack-0.bin") for a in asked_by_url)
    a = np.array(packed["data"], dtype=np.float32).reshape(90, -1)
    b = np.array(by_url["data"], dtype=np.float32).reshape(90, -1)
    print(f"\npacked vs by URL ({'worker' if worker else 'main thread'}): features max |diff| {np.abs(a - b).max()}, "
          f"requests {len(asked)} vs {len(asked_by_url)}")
    assert np.abs(a).max() > 0 and np.array_equal(a, b)


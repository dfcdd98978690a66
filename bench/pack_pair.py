"""Paired: the served images' pixels by one request per image vs from their pack shards
(issue 18, task "pack"; web/src/packs.js).

    .venv/bin/python bench/pack_pair.py --site SITE [--rounds 6] [--json OUT]

Each round opens SITE (built with packs: images.json "packs"; this worktree's web/dist over
its data, served by the project's app as bench/browser.py serves it) in a fresh browser
context, so neither path finds the other's files in the HTTP cache, and times, in the ready
page, both ways to the 90 images' pixels the extraction feeds the backbone (the page's own
loadPixels, all started at once as its prefetch does): `urls` (each example by its URL, one
request each) and `packs` (the examples' pack slices), and the fetches alone (the bytes, no
decode), after one warm-up decode. The order flips each round; prints per round, the load average beside each, and
the median of the paired ratios packs / urls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.browser import _site_app, _wait_ready  # noqa: E402
from bench.page_pair import DIST, overlay  # noqa: E402
from tests.harness import launch_chromium, serve_wsgi  # noqa: E402

# {ms, fetchMs} for the served train+valid examples: `packed` by their pack slices or by URL
PIXELS_JS = """async (packed) => {
  const T = window.tfjsTransfer;
  const items = T.steps.trainSet().items.map((e) => (packed ? e : { src: e.src, name: e.name, id: e.id }));
  if (packed && !items.every((e) => e.pack)) throw new Error('the site has no packs: rebuild it');
  let t = performance.now();
  const pixels = await Promise.all(items.map((e) => T.steps.loadPixels(e)));
  const ms = performance.now() - t;
  pixels.forEach((p) => p.dispose());
  // the fetches alone, by the same URLs again with the HTTP cache bypassed
  t = performance.now();
  if (packed) {
    await Promise.all([...new Set(items.map((e) => e.pack.url))].map(async (u) => (await fetch(u, { cache: 'no-store' })).arrayBuffer()));
  } else {
    await Promise.all(items.map(async (e) => (await fetch(e.src, { cache: 'no-store' })).arrayBuffer()));
  }
  return { images: items.length, ms, fetchMs: performance.now() - t };
}"""


# one decode of a generated PNG before timing: the first decode in a context pays a start-up
# that would land on whichever path goes first
WARM_UP_JS = """async () => {
  const c = new OffscreenCanvas(64, 64);
  c.getContext('2d').fillRect(0, 0, 32, 32);
  const src = await c.convertToBlob({ type: 'image/png' });
  (await window.tfjsTransfer.steps.loadPixels({ src, name: 'warm-up.png' })).dispose();
}"""


def one_round(browser, url: str, order: list[str]) -> dict:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(300_000)
    try:
        page.goto(f"{url}?backend=wasm")
        _wait_ready(page)
        page.evaluate(WARM_UP_JS)
        out = {name: page.evaluate(PIXELS_JS, name == "packs") for name in order}
    finally:
        context.close()
    out["load_avg"] = os.getloadavg()[0]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, required=True, help="a site built with packs (tfjs-transfer build --out)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    runs = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pack-pair-")))
        url = stack.enter_context(serve_wsgi(_site_app(overlay(args.site, DIST, tmp / "site"), True)))
        browser = launch_chromium(stack.enter_context(sync_playwright()))
        stack.callback(browser.close)
        for r in range(args.rounds):
            res = one_round(browser, url, ["urls", "packs"] if r % 2 == 0 else ["packs", "urls"])
            runs.append(res)
            print(f"round {r + 1}: {res['urls']['images']} images' pixels by URL {res['urls']['ms']:5.0f} ms "
                  f"(fetches alone {res['urls']['fetchMs']:4.0f}), from packs {res['packs']['ms']:5.0f} ms "
                  f"(fetches alone {res['packs']['fetchMs']:4.0f}), loadavg {res['load_avg']:.2f}", flush=True)
    for k, what in (("ms", "pixels (fetch + decode)"), ("fetchMs", "fetches alone")):
        urls = statistics.median(x["urls"][k] for x in runs)
        packs = statistics.median(x["packs"][k] for x in runs)
        ratio = statistics.median(x["packs"][k] / x["urls"][k] for x in runs)
        print(f"median of {args.rounds} rounds, {what}: by URL {urls:.0f} ms, from packs {packs:.0f} ms, "
              f"packs/urls {ratio:.2f}x (paired)")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

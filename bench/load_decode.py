"""The page's cold model load and an image's decode, step by step (issue 18, task "load").

    .venv/bin/python bench/load_decode.py --site SITE [--rounds 3] [--batch 32] [--json OUT]

Each round opens the built site (this worktree's web/dist over SITE's data, cross-origin
isolated as bench/browser.py serves it: wasm, 2 threads) in a fresh browser context and runs
bench/load_decode.js in the ready page: the load's steps (fetch + parse of both models with
the HTTP cache bypassed, weights -> backend + layers build, the first backbone runs at batch
1 and at --batch, the head's first run), then the decode's steps on the served images (main
thread and in a worker) and the alternatives with how many images' pixels differ from
today's path. Prints the medians and the load average beside each round.
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

JS = Path(__file__).with_name("load_decode.js")


def one_round(browser, url: str, batch: int, decode: bool) -> dict:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(300_000)
    try:
        page.goto(f"{url}?backend=wasm")
        _wait_ready(page)
        out = {"page_load_ms": page.evaluate("window.tfjsTransfer.timings.loadMs"),
               "threads": page.evaluate("window.tfjsTransfer.tf.backend().numThreads || null")}
        page.evaluate(JS.read_text())
        out["load"] = page.evaluate("b => window.__loadDecode.loadBreakdown(b)", batch)
        out["cold_batch"] = page.evaluate("b => window.__loadDecode.coldBatch(b)", batch)
        out["build_paired"] = page.evaluate("r => window.__loadDecode.buildPaired(r)", 4)
        out["decode_paths"] = page.evaluate("r => window.__loadDecode.decodePaths(r, 8)", 4)
        if decode:
            out["decode"] = page.evaluate("() => window.__loadDecode.decodeBreakdown()")
    finally:
        context.close()
    out["load_avg"] = os.getloadavg()[0]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-decode", action="store_true", help="skip the decode step breakdown")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    runs = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-decode-")))
        site = overlay(args.site, DIST, tmp / "site")
        url = stack.enter_context(serve_wsgi(_site_app(site, True)))
        browser = launch_chromium(stack.enter_context(sync_playwright()))
        stack.callback(browser.close)
        for r in range(args.rounds):
            res = one_round(browser, url, args.batch, not args.no_decode)
            runs.append(res)
            print(f"round {r + 1} (loadavg {res['load_avg']:.2f}, threads {res['threads']}): "
                  f"page load {res['page_load_ms']:.0f} ms", flush=True)
            print("  load:", json.dumps(res["load"]), flush=True)
            print("  cold batch:", json.dumps(res["cold_batch"]), flush=True)
            print("  build paired:", json.dumps(res["build_paired"]), flush=True)
            print("  decode paths:", json.dumps(res["decode_paths"]), flush=True)
            if "decode" in res:
                print("  decode:", json.dumps(res["decode"]), flush=True)
    med = lambda f: statistics.median(f(x) for x in runs)  # noqa: E731
    print(f"medians of {args.rounds} rounds")
    for k in runs[0]["load"]:
        if isinstance(runs[0]["load"][k], (int, float)):
            print(f"  load.{k:<28} {med(lambda x: x['load'][k]):8.1f}")
    for k in runs[0]["cold_batch"]:
        print(f"  cold_batch.{k:<22} {med(lambda x: x['cold_batch'][k]):8.1f}")
    for k in ("headAsIs", "headZeros", "backboneAsIs", "backboneZeros"):
        print(f"  build.{k:<20} {statistics.median(v for x in runs for v in x['build_paired'][k]):8.1f}")
    for k in ("blob", "bytes", "blobK", "bytesK", "bytesReusedK"):
        print(f"  decode path {k:<8} {statistics.median(v for x in runs for v in x['decode_paths'][k]):6.2f} ms/image")
    print("  images whose pixels differ from the blob path's: bytes", [x["decode_paths"]["bytesDiffering"] for x in runs],
          "bytes + reused canvas", [x["decode_paths"]["bytesReusedDiffering"] for x in runs])
    if "decode" not in runs[0]:
        return 0
    d = runs[0]["decode"]
    for k in d["today"][0]["perImage"]:
        print(f"  decode today {k:<12} {med(lambda x: x['decode']['today'][1]['perImage'][k]):6.2f} ms/image  "
              f"reused canvas {med(lambda x: x['decode']['reused'][1]['perImage'][k]):6.2f}  "
              f"worker {med(lambda x: x['decode']['worker']['perImage'][k]):6.2f}")
    print(f"  decode today total {med(lambda x: x['decode']['today'][1]['totalMsPerImage']):.2f} ms/image, "
          f"reused {med(lambda x: x['decode']['reused'][1]['totalMsPerImage']):.2f}, "
          f"worker {med(lambda x: x['decode']['worker']['totalMsPerImage']):.2f}, "
          f"worker reused {med(lambda x: x['decode']['workerReused']['totalMsPerImage']):.2f}")
    for k in ("concurrent1", "concurrent4", "concurrent32", "webcodecs"):
        print(f"  decode {k:<14} {med(lambda x: x['decode'][k].get('msPerImage', float('nan'))):.2f} ms/image "
              f"(images differing from today's: {[x['decode'][k].get('differing') for x in runs]})")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Paired figures of the page's own training kernels on two threads (web/src/wasm/pool.js) against
one, in ONE page (issue 18): the helper is switched on and off between runs
(window.tfjsTransfer.kernelThreads(on), and the TF.js worker's 'kernelThreads' job), so both
sides share the process, the caches and the drift of a shared machine.

    .venv/bin/python bench/kernel_threads.py --site SITE [--rounds 6] [--epochs 20] [--profile] [--paths main,worker]

After the page's extractFeatures over the served images, each round trains the head `epochs`
epochs (bench/page_bench.js pageTrain) with one and with two kernel threads, on the main thread
and in the TF.js worker (the page's default path), the order flipping each round. Prints each
run with the load average beside it, and the median of the paired ratios two / one; with
--profile, each round's main-thread epoch kernels (tf.profile) too: the split ones alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.browser import PAGE_BENCH_JS, _site_app, _wait_ready  # noqa: E402
from bench.page_pair import DIST, PROFILE_JS, overlay  # noqa: E402
from tests.harness import launch_chromium, serve_wsgi  # noqa: E402

# switch the helper on/off on the main thread and in the TF.js worker; the splits so far
SWITCH = """async ({ on, worker }) => {
  const T = window.tfjsTransfer;
  if (!worker) return T.kernelThreads(on);
  const w = await T.tfWorker();
  return w ? w.call('kernelThreads', on) : null;
}"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, required=True, help="a built site (tfjs-transfer build --out)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--profile", action="store_true", help="one epoch's kernels per run (main thread)")
    ap.add_argument("--paths", default="main,worker", help="where to train: main, worker or both")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kernel-threads-")))
        url = stack.enter_context(serve_wsgi(_site_app(overlay(args.site, DIST, tmp / "site"), True)))
        browser = launch_chromium(stack.enter_context(sync_playwright()))
        stack.callback(browser.close)
        page = browser.new_page()
        page.set_default_timeout(300_000)
        page.goto(f"{url}?backend=wasm")
        _wait_ready(page)
        page.evaluate(PAGE_BENCH_JS.read_text())
        page.evaluate("b => window.__bench.pageExtract(b)", 32)
        runs: dict[tuple[str, str], list[float]] = {}
        for where, worker in (("main", False), ("worker", True)):
            if where not in args.paths.split(","):
                continue
            if page.evaluate(SWITCH, {"on": True, "worker": worker}) is None:
                print(f"{where}: no kernel helper (not cross-origin isolated, or one wasm thread)")
                continue
            page.evaluate("([e, w]) => window.__bench.pageTrain(e, w)", [1, worker])  # warm-up
            for r in range(args.rounds):
                for threads in ((1, 2) if r % 2 == 0 else (2, 1)):
                    state = page.evaluate(SWITCH, {"on": threads == 2, "worker": worker})
                    ms = page.evaluate("([e, w]) => window.__bench.pageTrain(e, w)", [args.epochs, worker])["ms"]
                    after = page.evaluate(SWITCH, {"on": threads == 2, "worker": worker})
                    runs.setdefault((where, threads), []).append(ms)
                    print(f"round {r + 1} {where:<6} kernel threads {threads}: train {args.epochs} epochs {ms:6.0f} ms "
                          f"({after['splits'] - state['splits']} split jobs, loadavg {os.getloadavg()[0]:.2f})", flush=True)
        if args.profile:
            page.evaluate("() => { window.__pairFeats = window.__bench._pageFeats(); }")
            kernels: dict[int, list[float]] = {1: [], 2: []}
            for r in range(args.rounds):
                for threads in ((1, 2) if r % 2 == 0 else (2, 1)):
                    page.evaluate(SWITCH, {"on": threads == 2, "worker": False})
                    by = dict(page.evaluate(PROFILE_JS))
                    split = by.get("BatchMatMul", 0) + by.get("TransferAdam", 0)
                    kernels[threads].append(split)
                    print(f"round {r + 1} profile kernel threads {threads}: BatchMatMul {by.get('BatchMatMul', 0):.1f} + "
                          f"TransferAdam {by.get('TransferAdam', 0):.1f} ms an epoch (loadavg {os.getloadavg()[0]:.2f})")
            ratio = statistics.median(b / a for a, b in zip(kernels[1], kernels[2]))
            print(f"  epoch's BatchMatMul + TransferAdam: one {statistics.median(kernels[1]):.1f} ms, "
                  f"two {statistics.median(kernels[2]):.1f} ms ({ratio:.2f}x paired)")
        print(f"medians of {args.rounds} rounds; ratio = two threads / one, paired per round")
        for where in ("main", "worker"):
            one, two = runs.get((where, 1)), runs.get((where, 2))
            if one and two:
                ratio = statistics.median(b / a for a, b in zip(one, two))
                print(f"  {where:<6} train one {statistics.median(one):6.0f} ms, two {statistics.median(two):6.0f} ms "
                      f"({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

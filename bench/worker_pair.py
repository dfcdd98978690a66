"""Paired figures of the page's TF.js worker (web/src/tfworker.js) against its main thread (issue 18).

    .venv/bin/python bench/worker_pair.py --site SITE [--before DIST] [--rounds 3] [--epochs 20]
        [--batch 32] [--before-batch N] [--json OUT]

In each page (SITE's data with this worktree's web/dist, and with --before another web bundle,
e.g. a copy of web/dist built before a change), the page's extractFeatures over the served
images and its trainHead (`epochs` epochs) run on the main thread and through the worker
(bench/page_bench.js pageExtract / pageTrain), alternated A B A B in the page (the order flips
each round) after one untimed warm-up of each path; with --before, a fresh page of each bundle
per round, the bundles' order flipping too. Prints per-run figures with the load average
beside them, and the medians of the paired ratios: worker / main thread in each bundle and,
with --before, after / before for each path.
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

from bench.browser import PAGE_BENCH_JS, _site_app, _wait_ready  # noqa: E402
from bench.page_pair import DIST, overlay  # noqa: E402
from tests.harness import launch_chromium, serve_wsgi  # noqa: E402

PATHS = ("main", "worker")


def one_page(browser, url: str, rounds: list[int], epochs: int, batch: int) -> list[dict]:
    """Main thread and worker, alternated, once per round in `rounds`, in one fresh page."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(300_000)
    out = []
    try:
        page.goto(f"{url}?backend=wasm")
        _wait_ready(page)
        page.evaluate(PAGE_BENCH_JS.read_text())
        if page.evaluate("window.tfjsTransfer.tfWorker()") is None:
            raise RuntimeError("the page has no TF.js worker")
        for worker in (False, True):  # warm-up: each path's first run (kernel set-up, code) untimed
            page.evaluate("([b, w]) => window.__bench.pageExtract(b, w)", [batch, worker])
            page.evaluate("([e, w]) => window.__bench.pageTrain(e, w)", [2, worker])
        for r in rounds:
            row = {"round": r}
            for worker in ((False, True) if r % 2 == 0 else (True, False)):
                ex = page.evaluate("([b, w]) => window.__bench.pageExtract(b, w)", [batch, worker])
                tr = page.evaluate("([e, w]) => window.__bench.pageTrain(e, w)", [epochs, worker])
                row[PATHS[worker]] = {"extract_ms": ex["ms"], "extract_wait_ms": ex.get("waitMs"),
                                      "train_ms": tr["ms"], "train_loop_ms": tr["loopMs"],
                                      "accuracy": tr["finalTrainAccuracy"], "images": ex["images"]}
            row["load_avg"] = os.getloadavg()[0]
            out.append(row)
    finally:
        context.close()
    return out


def fmt_row(name: str, row: dict) -> str:
    parts = [f"round {row['round'] + 1} {name:<7}"]
    for p in PATHS:
        v = row[p]
        parts.append(f"{p}: extract {v['extract_ms']:5.0f} (waiting {v['extract_wait_ms'] or 0:4.0f})"
                     f" train {v['train_ms']:5.0f} (loop {v['train_loop_ms']:5.0f})")
    parts.append(f"worker/main extract {row['worker']['extract_ms'] / row['main']['extract_ms']:.2f}x"
                 f" train {row['worker']['train_ms'] / row['main']['train_ms']:.2f}x; load {row['load_avg']:.2f}")
    return "  ".join(parts)


def end_to_end_ratios(rows: list[dict]) -> list[float]:
    """Each pair's worker / main thread for extraction and training together."""
    return [(r["worker"]["extract_ms"] + r["worker"]["train_ms"]) / (r["main"]["extract_ms"] + r["main"]["train_ms"])
            for r in rows]


def summary(runs: dict[str, list[dict]]) -> dict:
    """Medians per bundle and path, paired ratios worker/main and (with a 'before') after/before."""
    out = {}
    for name, rows in runs.items():
        s = {p: {k: statistics.median(r[p][k] for r in rows) for k in ("extract_ms", "train_ms", "train_loop_ms")}
             for p in PATHS}
        s["worker_over_main"] = {k: statistics.median(r["worker"][k] / r["main"][k] for r in rows)
                                 for k in ("extract_ms", "train_ms")}
        s["worker_over_main"]["end_to_end"] = statistics.median(end_to_end_ratios(rows))
        s["load_avg"] = [r["load_avg"] for r in rows]
        out[name] = s
    if "before" in runs:
        out["after_over_before"] = {
            p: {k: statistics.median(a[p][k] / b[p][k] for a, b in zip(runs["after"], runs["before"]))
                for k in ("extract_ms", "train_ms")} for p in PATHS}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, required=True, help="a built site (tfjs-transfer build --out)")
    ap.add_argument("--before", type=Path, help="another web bundle (a web/dist copy): bundle 'before'")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32, help="extractFeatures' batch size (the page's: 32)")
    ap.add_argument("--before-batch", type=int, help="the same for --before")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="worker-pair-")))
        bundles = {"after": (overlay(args.site, DIST, tmp / "after"), args.batch)}
        if args.before:
            bundles = {"before": (overlay(args.site, args.before, tmp / "before"), args.before_batch or args.batch),
                       **bundles}
        urls = {k: stack.enter_context(serve_wsgi(_site_app(site, True))) for k, (site, _) in bundles.items()}
        browser = launch_chromium(stack.enter_context(sync_playwright()))
        stack.callback(browser.close)
        runs: dict[str, list[dict]] = {k: [] for k in bundles}
        names = list(bundles)
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                row = one_page(browser, urls[name], [r], args.epochs, bundles[name][1])[0]
                runs[name].append(row)
                print(fmt_row(name, row), flush=True)
    s = summary(runs)
    print(f"medians of {args.rounds} rounds (ms; ratios paired per round)")
    for name in names:
        v = s[name]
        print(f"  {name:<7} " + "  ".join(f"{p}: extract {v[p]['extract_ms']:.0f} train {v[p]['train_ms']:.0f}"
                                          f" (loop {v[p]['train_loop_ms']:.0f})" for p in PATHS)
              + f"  worker/main extract {v['worker_over_main']['extract_ms']:.2f}x train "
                f"{v['worker_over_main']['train_ms']:.2f}x; load {', '.join(f'{x:.1f}' for x in v['load_avg'])}")
    if "after_over_before" in s:
        print("  after/before: " + "  ".join(f"{p}: extract {v['extract_ms']:.2f}x train {v['train_ms']:.2f}x"
                                             for p, v in s["after_over_before"].items()))
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": s}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

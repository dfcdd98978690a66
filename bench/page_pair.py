"""Paired before/after of the page's end-to-end steps (issue 18), for one lever at a time.

    .venv/bin/python bench/page_pair.py --site SITE [--before DIST] [--variant NAME=QUERY ...]
        [--rounds 3] [--epochs 20] [--json OUT]

Each variant is SITE's data (a built site) with this worktree's web/dist ("after"), or with
another web bundle (--before DIST: e.g. a copy of web/dist built before a change), opened
with a query (?backend=wasm&...: the page's before/after switches). Rounds alternate the
variants A B A B (the order flips each round) in one Chromium, a fresh context each, so
drift on a shared machine lands on both sides. Per run: the page's model load (cold), its
extractFeatures over the served images (bench/page_bench.js pageExtract) and its trainHead
(pageTrain, `epochs` epochs), on the main thread or with --worker in the page's TF.js
worker (its default path), and, with --profile, the kernels of one training epoch. The
end-to-end "ours" of bench/browser.py is load + extract + train + one prediction; the
prediction (about 17 ms, untouched here) is left out. Prints per-round figures, the load
average beside each round, and the median ratio of each variant to the first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.browser import PAGE_BENCH_JS, _site_app, _wait_ready  # noqa: E402
from tests.harness import launch_chromium, serve_wsgi  # noqa: E402

# one epoch of the page's training loop under tf.profile: kernel time by name
PROFILE_JS = """async () => {
  const T = window.tfjsTransfer, tf = T.tf, m = T.manifest, hp = m.training.hyperparameters;
  const S = window.__pairFeats;
  const p = await tf.profile(async () => {
    const r = await T.steps.trainHead({ tf, manifest: m, feats: S.feats, labelIndex: S.labelIndex,
      split: { train: [...Array(S.feats.count).keys()], valid: [] },
      hyper: { epochs: 1, batchSize: hp.batch_size, learningRate: hp.learning_rate, optimizer: hp.optimizer, loss: hp.loss } });
    r.model.dispose();
  });
  const byName = {};
  for (const k of p.kernels) {
    if (k.name.endsWith('__op')) continue;
    byName[k.name] = (byName[k.name] || 0) + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0);
  }
  return Object.entries(byName).sort((a, b) => b[1] - a[1]).slice(0, 10);
}"""


def load_avg() -> float:
    return os.getloadavg()[0]


SITE_DATA = ("manifest.json", "images.json", "images", "models")
DIST = ROOT / "web" / "dist"


def overlay(site: Path, dist: Path, dest: Path) -> Path:
    """SITE's data (manifest, images, models) with the page of the web bundle DIST."""
    dest.mkdir(parents=True)
    for name in SITE_DATA:
        (shutil.copytree if (site / name).is_dir() else shutil.copy2)(site / name, dest / name)
    for p in dist.iterdir():
        (shutil.copytree if p.is_dir() else shutil.copy2)(p, dest / p.name)
    return dest


def one_run(browser, url: str, query: str, epochs: int, batch: int, profile: bool, cores: int | None = None,
            worker: bool = False) -> dict:
    context = browser.new_context()
    if cores:  # the core count the page sees (wasmThreads(): 1 core -> a pool of 1)
        context.add_init_script(f"Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', "
                                f"{{get: () => {int(cores)}}});")
    page = context.new_page()
    page.set_default_timeout(300_000)
    try:
        page.goto(f"{url}?backend=wasm{'&' + query if query else ''}")
        _wait_ready(page)
        out = {"load_ms": page.evaluate("window.tfjsTransfer.timings.loadMs"),
               # since navigation, when the wait saw the page ready (the same for pages without timings.readyAt)
               "ready_ms": page.evaluate("performance.now()")}
        page.evaluate(PAGE_BENCH_JS.read_text())
        pe = page.evaluate("([b, w]) => window.__bench.pageExtract(b, w)", [batch, worker])
        if pe is None:
            raise SystemExit("--worker: this page has no TF.js worker")
        out["extract_ms"], out["extract_wait_ms"] = pe["ms"], pe.get("waitMs")
        tr = page.evaluate("([e, w]) => window.__bench.pageTrain(e, w)", [epochs, worker])
        out["train_ms"], out["accuracy"] = tr["ms"], tr["finalTrainAccuracy"]
        out["threads"] = page.evaluate("window.__bench.info().threads")
        if profile:
            page.evaluate("() => { window.__pairFeats = window.__bench._pageFeats(); }")
            out["train_epoch_kernels"] = page.evaluate(PROFILE_JS)
    finally:
        context.close()
    out["ours_ms"] = out["load_ms"] + out["extract_ms"] + out["train_ms"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, required=True, help="a built site (tfjs-transfer build --out)")
    ap.add_argument("--before", type=Path, help="another web bundle (a web/dist copy): variant 'before'")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=QUERY[@BATCH][#CORES] on the site (after): a ?query, extractFeatures' batch "
                         "size, the core count the page sees")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32, help="extractFeatures' batch size (the page's: 32)")
    ap.add_argument("--before-batch", type=int, help="the same for --before (its page's batch: 16 before 32)")
    ap.add_argument("--profile", action="store_true", help="kernels of one training epoch per run")
    ap.add_argument("--worker", action="store_true",
                    help="extract and train in the page's TF.js worker (its default path) instead of the main thread")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="page-pair-")))
        sites = {"after": overlay(args.site, DIST, tmp / "after")}
        variants = []  # (name, site key, query, batch, cores)
        if args.before:
            sites["before"] = overlay(args.site, args.before, tmp / "before")
            variants.append(("before", "before", "", args.before_batch or args.batch, None))
        if not args.variant or args.before:
            variants.append(("after", "after", "", args.batch, None))
        for v in args.variant:
            name, _, spec = v.partition("=")
            spec, _, cores = spec.partition("#")
            query, _, batch = spec.partition("@")
            variants.append((name, "after", query, int(batch or args.batch), int(cores) if cores else None))
        urls = {k: stack.enter_context(serve_wsgi(_site_app(s, True))) for k, s in sites.items()}
        browser = launch_chromium(stack.enter_context(sync_playwright()))
        stack.callback(browser.close)
        runs = {v[0]: [] for v in variants}
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for name, site, query, batch, cores in order:
                res = one_run(browser, urls[site], query, args.epochs, batch, args.profile, cores, args.worker)
                res["load_avg"] = load_avg()
                runs[name].append(res)
                print(f"round {r + 1} {name:<14} ready {res['ready_ms']:6.0f}  load {res['load_ms']:6.0f}  extract {res['extract_ms']:6.0f}  "
                      f"train {res['train_ms']:6.0f}  ours {res['ours_ms']:6.0f} ms  (threads {res['threads']}, "
                      f"acc {res['accuracy']:.3f}, backbone waiting for pixels {res['extract_wait_ms'] or 0:.0f} ms, "
                      f"loadavg {res['load_avg']:.2f})", flush=True)
                if args.profile:
                    print("    " + ", ".join(f"{k} {v:.0f}" for k, v in res["train_epoch_kernels"]), flush=True)
    base = variants[0][0]
    print(f"medians of {args.rounds} rounds ({'worker' if args.worker else 'main thread'}); "
          f"ratio = variant / {base}, paired per round")
    for name, _, query, batch, cores in variants:
        rs = runs[name]
        line = f"  {name:<14} {query or '':<14} batch {batch:<3} cores {cores or 'all':<4}"
        for k in ("ready_ms", "load_ms", "extract_ms", "train_ms", "ours_ms"):
            med = statistics.median(x[k] for x in rs)
            ratio = statistics.median(x[k] / y[k] for x, y in zip(rs, runs[base]))
            line += f"  {k[:-3]} {med:6.0f} ({ratio:.2f}x)"
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"variants": variants, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 18's resize lever, paired: the page's wasm ResizeBilinear (web/src/wasm/resize.js)
against TF.js' own (?tfjs=resize), in two pages of one headless Chromium (wasm, threads as
the page ships them), measured alternately A B A B ... with the load average beside each round.

Per round and page: the resize alone per image (the 90 logos -> 224x224, a 1000x800 photo ->
224x224) and the page's preprocess per image (each the median and the fastest of --reps
passes), features per image at batch 16 (bench/page_bench.js
extract) and predict of one image (page_bench.js predict: through the page, and on the models
alone). Before timing, both pages resize every logo and the photo and compare digests of the
float32 bits: equal digests mean bit-exact results.

    .venv/bin/python bench/resize.py [--site DIR] [--rounds 4] [--one-thread] [--json OUT]

Without --site it builds the logos site (this worktree's web/dist) in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import python as py  # noqa: E402
from bench.browser import PAGE_BENCH_JS, _site_app, _wait_ready  # noqa: E402
from tests.harness import BRAND_TRAIN, MOBILENET_H5, launch_chromium, serve_wsgi  # noqa: E402

RESIZE_BENCH_JS = Path(__file__).resolve().parent / "resize_bench.js"
VARIANTS = {"ours": "?backend=wasm", "tfjs": "?backend=wasm&tfjs=resize"}
FIGURES = ("logoResizeMs", "logoResizeMinMs", "logoPreprocessMs", "logoPreprocessMinMs",
           "photoResizeMs", "photoResizeMinMs", "photoPreprocessMs", "photoPreprocessMinMs",
           "extract16MsPerImage", "predictPageP50Ms", "predictModelsP50Ms")


def load() -> float:
    return os.getloadavg()[0]


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(url)
    _wait_ready(page)
    page.evaluate(PAGE_BENCH_JS.read_text())
    page.evaluate(RESIZE_BENCH_JS.read_text())
    return page


def _round(page, reps: int, predicts: int) -> dict:
    t = {}
    for k, v in page.evaluate(f"window.__resizeBench.time({reps})").items():
        t[k], t[k.replace("Ms", "MinMs")] = v["median"], v["min"]
    t["extract16MsPerImage"] = page.evaluate("window.__bench.extract(16)")["msPerImage"]
    p = page.evaluate(f"window.__bench.predict({predicts})")
    t["predictPageP50Ms"] = statistics.median(p["page"])
    t["predictModelsP50Ms"] = statistics.median(p["models"])
    return t


def run(site: Path, rounds: int, reps: int, predicts: int, one_thread: bool = False, log=print) -> dict:
    from playwright.sync_api import sync_playwright

    images = json.loads((site / "images.json").read_text())["images"]
    # one thread: served without COOP/COEP (coi=0: nor through the page's service worker),
    # so wasm runs its single-threaded SIMD build
    with serve_wsgi(_site_app(site, not one_thread)) as url, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            pages = {name: _open(browser, url + q + ("&coi=0" if one_thread else ""))
                     for name, q in VARIANTS.items()}
            urls = [url + it["path"] for it in images]
            info = {"load_before": load()}
            for name, page in pages.items():
                info[name] = {"setup": page.evaluate("(u) => window.__resizeBench.setup(u)", urls),
                              "page": page.evaluate(f"window.__bench.setup({len(images)})")["info"],
                              "backendLine": page.inner_text("[data-testid=status]")}
            digests = {name: page.evaluate("window.__resizeBench.digests()") for name, page in pages.items()}
            same = {k: sum(a == b for a, b in zip(digests["ours"][k] if isinstance(digests["ours"][k], list)
                                                  else [digests["ours"][k]],
                                                  digests["tfjs"][k] if isinstance(digests["tfjs"][k], list)
                                                  else [digests["tfjs"][k]]))
                    for k in digests["ours"]}
            log(f"bit-exact (equal digests): {same} of {len(images)} logos (+ the photo)")
            got = {name: [] for name in pages}
            for r in range(rounds):
                order = list(pages) if r % 2 == 0 else list(pages)[::-1]
                for name in order:
                    before = load()
                    res = _round(pages[name], reps, predicts)
                    res["load"] = (before, load())
                    got[name].append(res)
                    log(f"round {r + 1} {name:<5} load {before:.2f}: "
                        + ", ".join(f"{k} {res[k]:.2f}" for k in FIGURES))
        finally:
            browser.close()
    summary = {}
    for k in FIGURES:
        ratios = [b[k] / a[k] for a, b in zip(got["ours"], got["tfjs"])]
        summary[k] = {"ours_median": statistics.median(x[k] for x in got["ours"]),
                      "tfjs_median": statistics.median(x[k] for x in got["tfjs"]),
                      "tfjs_over_ours_by_round": ratios, "tfjs_over_ours_median": statistics.median(ratios)}
    return {"info": info, "bit_exact": same, "rounds": got, "summary": summary}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5, help="passes over the logos (5 photos) per timing")
    ap.add_argument("--predicts", type=int, default=20)
    ap.add_argument("--one-thread", action="store_true", help="wasm's single-threaded build in both pages")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="resize-bench-") as tmp:
        site = args.site
        if site is None:
            import shutil
            data = Path(tmp) / "data"
            data.mkdir()
            for p in sorted(BRAND_TRAIN.iterdir()):
                if p.is_file():
                    shutil.copy2(p, data / p.name)
            site = Path(tmp) / "site"
            print("building the logos site", flush=True)
            py.run_build(data, str(MOBILENET_H5), site, Path(tmp) / "cache")
        res = run(site, args.rounds, args.reps, args.predicts, args.one_thread)
    print(f"{'figure':<22}{'ours':>10}{'tfjs':>10}{'tfjs/ours':>11}")
    for k, s in res["summary"].items():
        print(f"{k:<22}{s['ours_median']:>10.3f}{s['tfjs_median']:>10.3f}{s['tfjs_over_ours_median']:>11.2f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

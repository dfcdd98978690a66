"""Every registered backbone built into a site and run in headless Chromium: TF.js size
(float32 and uint8) and the page's predict latency. Weights are random (`none`): sizes
and speeds are those of the ImageNet models, and nothing is downloaded.

    .venv/bin/python bench/backbones.py [--backbones vgg16,inception_v3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tfjs_transfer.backbones import REGISTRY  # noqa: E402
from tfjs_transfer.build import BuildConfig, build  # noqa: E402
from tests.harness import BRAND_TRAIN, launch_chromium, open_ready, serve_wsgi  # noqa: E402

# VGG16 and InceptionV3 are large to fetch and slow to warm up in the page on a CPU.
READY_TIMEOUT_MS = 300_000


def build_site(name: str, out: Path, quantize: str | None) -> dict:
    cfg = BuildConfig(data=BRAND_TRAIN, weights="none", out=out, backbone=name, recipe="pooled",
                      recipe_overrides={"epochs": 1, "augment_copies": 0}, quantize=quantize, cache_dir=None, verbose=0)
    t = time.perf_counter()
    m = build(cfg)
    return {"build_s": time.perf_counter() - t, "backbone_bytes": m["backbone"]["bytes"],
            "head_bytes": m["head"]["bytes"], "feature_shape": m["backbone"]["output_shape"],
            "input": m["input"]["height"]}


def browser_latency(site: Path, predicts: int = 15) -> dict:
    from playwright.sync_api import sync_playwright

    from tfjs_transfer.serve import create_app

    with serve_wsgi(create_app(site)) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            load_ms = open_ready(page, url, READY_TIMEOUT_MS)
            times = page.evaluate("""async ([url, n]) => {
                const out = [];
                await window.tfjsTransfer.predictUrl(url);  // warm-up
                for (let i = 0; i < n; i++) {
                    const t = performance.now();
                    await window.tfjsTransfer.predictUrl(url);
                    out.push(performance.now() - t);
                }
                return out;
            }""", [f"{url}images/0/train-0.png", predicts])
            backend = page.evaluate("window.tfjsTransfer.backend()")
        finally:
            browser.close()
    times.sort()
    return {"backend": backend, "page_ready_ms": load_ms, "predict_p50_ms": statistics.median(times),
            "predict_p90_ms": times[int(0.9 * (len(times) - 1))]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", default=",".join(REGISTRY))
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backbones.split(","):
            row = {}
            for q in (None, "uint8"):
                site = Path(tmp) / f"{name}-{q or 'float32'}"
                info = build_site(name, site, q)
                row[q or "float32"] = {**info, **browser_latency(site)}
                print(f"{name:18} {q or 'float32':8} backbone {info['backbone_bytes'] / 1e6:7.1f} MB  "
                      f"features {info['feature_shape']}  page ready {row[q or 'float32']['page_ready_ms']:7.0f} ms  "
                      f"predict p50 {row[q or 'float32']['predict_p50_ms']:7.1f} ms "
                      f"p90 {row[q or 'float32']['predict_p90_ms']:7.1f} ms ({row[q or 'float32']['backend']})",
                      flush=True)
            rows[name] = row
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

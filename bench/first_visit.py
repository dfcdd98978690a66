"""A first visit, cold and throttled: what the page transfers and how long until it predicts.

    .venv/bin/python bench/first_visit.py --site SITE [--before-web-dist DIR] [--repeat 3] [--json F]

Each visit is a fresh browser context (empty HTTP cache) under Chromium's network emulation
(CDP Network.emulateNetworkConditions: 10 Mbit/s down, 5 up, 40 ms latency); the site is
served by the project's app (compressed, with COOP/COEP) on a loopback port. Measured per
visit, from navigation until the first prediction of one served logo:
  - bytes: the sum of CDP Network.loadingFinished encodedDataLength (compressed bodies plus
    headers) of every request finished by then;
  - ms: navigation to the prediction's result, on one clock.
Pages:
  ours      the site as built: app.js, then main-*.js (prediction) with its preloaded chunks;
            the page's own `window.tfjsTransfer.predictUrl`, called the moment it exists.
  before    (--before-web-dist: a web/dist built from an older checkout) the same site with
            that bundle, e.g. the single app.js that held tfjs-vis and the training code.
  tutorial  the TF.js tutorial's way: the whole tfjs bundle (tf.min.js) by a script tag, the
            whole MobileNet (the shared .h5 with its top, converted to TF.js layers) loaded,
            truncated at the site's cut layer, the site's head; one image predicted.
Then, unthrottled, isolation on a host without COOP/COEP (a plain static server): the
page's features per image (extractFeatures, batches of 16) and 20 epochs of trainHead, with
the headers (the app), on the plain server as it is (one thread) and through web/coi-sw.js
(?coi=1); and what the service worker's reload costs a first visit there. Rounds alternate
the order of the pages; the machine's load average is recorded (other work on a shared
machine slows a thread pool more than one thread).
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

from bench.browser import PAGE_BENCH_JS  # noqa: E402
from tests.harness import (MOBILENET_H5, chromium_missing, launch_chromium, open_ready,  # noqa: E402
                           serve_folder, serve_wsgi)

TF_MIN_JS = ROOT / "web" / "node_modules" / "@tensorflow" / "tfjs" / "dist" / "tf.min.js"
THROTTLE = {"offline": False, "latency": 40, "downloadThroughput": 10e6 / 8, "uploadThroughput": 5e6 / 8}
IMAGE = "images/0/train-0.png"  # a served logo: the same bytes for every page
TIMEOUT_MS = 300_000
# The page files a built site holds beside manifest, models and images (replaced for "before").
WEB_FILES = ("*.js", "*.map", "*.wasm", "index.html", "style.css", "favicon.svg")

TUTORIAL_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>the tutorial's way</title>
<script src="tf.min.js"></script><script src="tutorial.js" defer></script></head>
<body><p id="out">loading</p></body></html>
"""
# The tutorial (tfjs-examples webcam-transfer-learning): the whole MobileNet, truncated, then
# a head; here the site's head and one served image, preprocessed as the site's manifest says.
TUTORIAL_JS = """(async () => {
  const mobilenet = await tf.loadLayersModel('mobilenet/model.json');
  const cut = mobilenet.getLayer(%(cut)s);
  const truncated = tf.model({ inputs: mobilenet.inputs, outputs: cut.output });
  const head = await tf.loadLayersModel('models/head/model.json');
  const img = new Image();
  img.src = %(image)s;
  await img.decode();
  const probs = tf.tidy(() => {
    const x = tf.image.resizeBilinear(tf.browser.fromPixels(img), [%(h)d, %(w)d]).toFloat()
      .mul(%(scale)r).add(%(offset)r).expandDims(0);
    return head.predict(truncated.predict(x));
  });
  const p = Array.from(await probs.data());
  window.__first = { wall: Date.now(), backend: tf.getBackend(), top: p.indexOf(Math.max(...p)) };
  document.getElementById('out').textContent = JSON.stringify(p);
})();
"""
# Ours: the page's own hook, called as soon as the page exposes it (polled every 5 ms).
OURS_INIT = """(() => {
  const poll = setInterval(() => {
    const T = window.tfjsTransfer;
    if (!T) return;
    clearInterval(poll);
    T.predictUrl(%s).then((rows) => {
      window.__first = { wall: Date.now(), backend: T.backend(), top: T.manifest.labels.indexOf(rows[0].label) };
    });
  }, 5);
})();
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def _web_files(folder: Path) -> list[Path]:
    return sorted({p for pattern in WEB_FILES for p in folder.glob(pattern) if p.is_file()})


def before_site(site: Path, web_dist: Path, dest: Path) -> Path:
    """`site` with its page files replaced by those of `web_dist`."""
    shutil.copytree(site, dest)
    for p in _web_files(dest):
        p.unlink()
    for p in _web_files(web_dist):
        shutil.copy2(p, dest / p.name)
    return dest


def tutorial_site(site: Path, dest: Path, h5: Path) -> Path:
    """`site` plus tutorial.html: tf.min.js and the whole MobileNet as TF.js layers."""
    import tf_keras  # the Keras the pipeline loads .h5 models with

    from tfjs_transfer.convert import to_tfjs

    manifest = json.loads((site / "manifest.json").read_text())
    shutil.copytree(site, dest)
    to_tfjs(tf_keras.models.load_model(h5, compile=False), dest / "mobilenet")
    shutil.copy2(TF_MIN_JS, dest / "tf.min.js")
    pre = manifest["preprocessing"]
    (dest / "tutorial.html").write_text(TUTORIAL_HTML)
    (dest / "tutorial.js").write_text(TUTORIAL_JS % {
        "cut": json.dumps(manifest["backbone"]["cut_layer"]), "image": json.dumps(IMAGE),
        "h": pre["height"], "w": pre["width"], "scale": pre["scale"], "offset": pre["offset"]})
    return dest


def visit(browser, url: str, *, ours: bool, throttle: bool = True) -> dict:
    """One cold visit: bytes finished and ms from navigation until the first prediction."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        if ours:
            context.add_init_script(OURS_INIT % json.dumps(IMAGE))
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        if throttle:
            cdp.send("Network.emulateNetworkConditions", THROTTLE)
        done: dict[str, float] = {}
        urls: dict[str, str] = {}
        cdp.on("Network.requestWillBeSent", lambda e: urls.setdefault(e["requestId"], e["request"]["url"]))
        cdp.on("Network.loadingFinished", lambda e: done.__setitem__(e["requestId"], e["encodedDataLength"]))
        start = time.time() * 1000
        page.goto(url, wait_until="commit")
        page.wait_for_function("window.__first", timeout=TIMEOUT_MS)
        first = page.evaluate("window.__first")
        finished = dict(done)  # what had finished when the prediction was read
        by_file: dict[str, int] = {}
        for rid, n in finished.items():
            name = urls.get(rid, "?").split("?")[0].rsplit("/", 1)[-1]
            by_file[name] = by_file.get(name, 0) + int(n)
        return {"ms": first["wall"] - start, "bytes": int(sum(finished.values())), "requests": len(finished),
                "backend": first["backend"], "top": first["top"],
                "largest": sorted(by_file.items(), key=lambda kv: -kv[1])[:6]}
    finally:
        context.close()


def _median(rows: list[dict]) -> dict:
    return {"ms": statistics.median(r["ms"] for r in rows), "bytes": int(statistics.median(r["bytes"] for r in rows)),
            "requests": int(statistics.median(r["requests"] for r in rows)), "backend": rows[0]["backend"],
            "top": rows[0]["top"], "largest": rows[0]["largest"], "rounds_ms": [round(r["ms"]) for r in rows]}


def isolation_speed(browser, url: str) -> dict:
    """The page's features per image and 20 training epochs, as that host serves it."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        ready_ms = open_ready(page, url, TIMEOUT_MS)
        page.evaluate(PAGE_BENCH_JS.read_text())
        extract = page.evaluate("window.__bench.pageExtract(16)")
        train = page.evaluate("window.__bench.pageTrain(20)")
        return {"isolated": page.evaluate("crossOriginIsolated"),
                "backend_info": page.inner_text("[data-testid=backend-info]"),
                "ready_ms": ready_ms, "features_ms_per_image": extract["msPerImage"], "train_20_epochs_ms": train["ms"]}
    finally:
        context.close()


def run(site: Path, *, before_web_dist: Path | None = None, repeat: int = 3, isolation: bool = True) -> dict:
    from playwright.sync_api import sync_playwright

    from tfjs_transfer.serve import create_app

    site = Path(site)
    out: dict = {"throttle": {"down_mbit_s": 10, "up_mbit_s": 5, "latency_ms": 40}, "image": IMAGE,
                 "loadavg_1m_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="first-visit-") as tmp, sync_playwright() as pw:
        tmp = Path(tmp)
        sites = {"ours": (site, "", True)}
        if before_web_dist:
            sites["before"] = (before_site(site, Path(before_web_dist), tmp / "before"), "", True)
        sites["tutorial"] = (tutorial_site(site, tmp / "tutorial", MOBILENET_H5), "tutorial.html", False)
        browser = launch_chromium(pw)
        with contextlib.ExitStack() as stack:
            urls = {name: stack.enter_context(serve_wsgi(create_app(folder))) + path
                    for name, (folder, path, _) in sites.items()}
            rows: dict[str, list] = {name: [] for name in sites}
            for r in range(repeat):
                order = list(sites) if r % 2 == 0 else list(reversed(sites))
                for name in order:
                    rows[name].append(visit(browser, urls[name], ours=sites[name][2]))
                    log(f"  first visit {name} round {r + 1}: {rows[name][-1]['ms']:.0f} ms, "
                        f"{rows[name][-1]['bytes'] / 1e6:.2f} MB")
            out["pages"] = {name: _median(v) for name, v in rows.items()}
        if isolation:
            with serve_wsgi(create_app(site)) as app_url, serve_folder(site) as plain_url:
                variants = {"headers (the app)": app_url, "no headers (1 thread)": plain_url,
                            "no headers, ?coi=1 (worker)": plain_url + "?coi=1"}
                runs: dict[str, list] = {name: [] for name in variants}
                for r in range(repeat):
                    for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
                        runs[name].append(isolation_speed(browser, variants[name]))
                out["isolation"] = {name: {**v[0], **{k: statistics.median(x[k] for x in v) for k in
                                                      ("ready_ms", "features_ms_per_image", "train_20_epochs_ms")}}
                                    for name, v in runs.items()}
                # what the worker's reload costs a first visit on such a host (unthrottled)
                out["plain_host_first_prediction_ms"] = {
                    name: statistics.median(visit(browser, url, ours=True, throttle=False)["ms"] for _ in range(repeat))
                    for name, url in (("as served", plain_url), ("?coi=1", plain_url + "?coi=1"))}
        browser.close()
    out["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    return out


def print_report(res: dict) -> None:
    t = res["throttle"]
    log(f"load average {res['loadavg_1m_start']} -> {res['loadavg_1m_end']} (2 cores)")
    log(f"first visit, cold, {t['down_mbit_s']} Mbit/s down, {t['latency_ms']} ms latency "
        f"(median of rounds), until the first prediction of {res['image']}:")
    pages = res["pages"]
    for name, p in pages.items():
        log(f"  {name:<9} {p['bytes'] / 1e6:6.2f} MB transferred in {p['requests']:3d} requests, "
            f"{p['ms'] / 1000:5.2f} s to the first prediction ({p['backend']}; rounds {p['rounds_ms']} ms)")
        log("            largest: " + ", ".join(f"{k} {v / 1e3:.0f} kB" for k, v in p["largest"]))
    for other in ("before", "tutorial"):
        if other in pages:
            log(f"  ours vs {other}: {pages[other]['bytes'] / pages['ours']['bytes']:.2f}x fewer bytes, "
                f"{pages[other]['ms'] / pages['ours']['ms']:.2f}x sooner")
    if "isolation" in res:
        log("isolation on a host without COOP/COEP (unthrottled):")
        for name, r in res["isolation"].items():
            log(f"  {name:<28} isolated={r['isolated']!s:<5} features {r['features_ms_per_image']:.1f} ms/image, "
                f"20 epochs {r['train_20_epochs_ms']:.0f} ms, ready in {r['ready_ms']:.0f} ms")
        log("  first prediction on the plain host, unthrottled: " + ", ".join(
            f"{k} {v:.0f} ms" for k, v in res["plain_host_first_prediction_ms"].items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--site", required=True, type=Path, help="a built site (tfjs-transfer build --out)")
    ap.add_argument("--before-web-dist", type=Path, help="a web/dist from another checkout, to compare with")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-isolation", action="store_true", help="skip the host-without-COOP/COEP part")
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args(argv)
    why = chromium_missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    if not (args.site / "manifest.json").is_file():
        print(f"error: {args.site}: not a built site (no manifest.json)", file=sys.stderr)
        return 2
    res = run(args.site, before_web_dist=args.before_web_dist, repeat=args.repeat, isolation=not args.no_isolation)
    print_report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

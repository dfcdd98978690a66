"""Issue 18's LiteRT.js lever: the site's backbone as a .tflite on LiteRT.js (@litertjs/core,
XNNPACK in wasm) against the page's own backbone (TF.js 4.22's wasm backend, the fused plan
of web/src/fused.js through models.js `features`), in the built site's own page.

    .venv/bin/python bench/litert.py --site SITE [--litert DIR] [--rounds 3] [--json OUT]

SITE is a built site (its manifest's backbone: the TF.js layers model and, beside the site,
the Keras .h5 it was converted from, batch norms and paddings folded). @litertjs/core is not a
dependency of the page: install it in a private folder (`npm install @litertjs/core@2.5.3
--ignore-scripts` in /tmp/litert) and pass its package folder with --litert (or
LITERT_CORE); without it this script says so and exits 2.

What it prepares in a folder served on loopback with COOP/COEP (both runtimes need
SharedArrayBuffer for threads), the site linked in as site/:
  - backbone_bN.tflite: the Keras backbone converted by tf.lite.TFLiteConverter, float32,
    one file per batch size N (static shapes: LiteRT.js 2.5.3 compiles a fixed input shape);
  - input.bin: the first 32 training images preprocessed by the pipeline (dataset.load_rgb +
    preprocess.prepare), so both runtimes and Keras see the very same floats;
  - python.bin: Keras's features of those images (the parity reference), native.bin: the
    batch-32 .tflite's on TensorFlow's own interpreter (native XNNPACK);
  - @litertjs/core bundled by the page's esbuild, its wasm files, and their gzipped sizes.
Per thread count (2, 1: the page's pool through navigator.hardwareConcurrency, as
web/src/backend.js wasmThreads sizes it; 0: the page served without COOP/COEP and ?coi=0, as a
static host would, where both load their single-threaded builds; a fresh browser context
each) the site's page gets ready, then bench/litert_page.js times the page's fused features
alone, loads LiteRT.js, and alternates fused, LiteRT.js and the unfused layers model
(model.apply, ?fuse=0's path) batch size by batch size, the order reversed every round; it
reports ms/image, ratios by round, max |diff| of the features (each vs Keras, LiteRT vs the
fused path), load and compile times and the LiteRT wasm bytes fetched.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import BRAND_TRAIN, STATUS, chromium_missing, launch_chromium, wait_settled  # noqa: E402

PAGE_JS = Path(__file__).resolve().parent / "litert_page.js"
WEB = ROOT / "web"
DEFAULT_LITERT = Path(os.environ.get("LITERT_CORE", "/tmp/litert/node_modules/@litertjs/core"))
BATCHES = (1, 16, 32)
IMAGES = 32
READY_TIMEOUT_MS = 180_000


def litert_missing(core: Path) -> str | None:
    if not (core / "package.json").exists() or not (core / "wasm").is_dir():
        return (f"{core}: @litertjs/core not found; install it in a private folder "
                "(mkdir -p /tmp/litert && cd /tmp/litert && npm init -y && "
                "npm install @litertjs/core@2.5.3 --ignore-scripts) and pass --litert DIR")
    return None


def _keras_backbone(site: Path):
    import tf_keras as keras

    manifest = json.loads((site / "manifest.json").read_text())
    path = site / manifest["backbone"]["keras_path"]
    if not path.exists():
        raise SystemExit(f"error: {path}: the site's Keras backbone is missing (build the site with the pipeline)")
    return manifest, keras.models.load_model(path, compile=False)


def _inputs(manifest: dict, count: int):
    import numpy as np

    from tfjs_transfer.dataset import load_rgb
    from tfjs_transfer.preprocess import Preprocessing, prepare

    prep = Preprocessing.from_manifest(manifest["preprocessing"])
    paths = sorted(p for p in BRAND_TRAIN.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:count]
    if len(paths) < count:
        raise SystemExit(f"error: {BRAND_TRAIN}: {count} images needed, {len(paths)} found")
    return np.stack([prepare(load_rgb(p), prep) for p in paths]).astype("float32")


def _tflite(model, batch: int) -> bytes:
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([batch, *model.input_shape[1:]], tf.float32))
    return tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert()


def _native_tflite(path: Path, x):
    import warnings

    import numpy as np
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        it = tf.lite.Interpreter(model_path=str(path), num_threads=2)
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    it.set_tensor(inp["index"], x)
    it.invoke()
    return it.get_tensor(outp["index"]).astype(np.float32)


def prepare_folder(site: Path, core: Path, out: Path, batches=BATCHES) -> dict:
    """Everything the page needs, in `out`; returns what it wrote (sizes, shapes)."""
    manifest, model = _keras_backbone(site)
    x = _inputs(manifest, IMAGES)
    x.tofile(out / "input.bin")
    keras_features = model.predict(x, batch_size=IMAGES, verbose=0).astype("float32")
    info = {"input_shape": list(x.shape), "feature_shape": list(model.output_shape[1:]), "tflite_bytes": {}}
    for b in batches:
        flat = _tflite(model, b)
        (out / f"backbone_b{b}.tflite").write_bytes(flat)
        info["tflite_bytes"][b] = len(flat)
    # the same .tflite on TensorFlow's own interpreter (native XNNPACK): which part of a
    # browser-vs-Keras difference the conversion makes, which part the runtime
    native = _native_tflite(out / f"backbone_b{IMAGES}.tflite", x)
    native.tofile(out / "native.bin")
    info["native_tflite_max_diff_keras"] = float(abs(native - keras_features).max())
    keras_features.tofile(out / "python.bin")
    shutil.copytree(core / "wasm", out / "litert-wasm")
    entry = out / "litert-entry.js"
    entry.write_text("export * from '@litertjs/core';\n")
    # the page's esbuild; NODE_PATH finds @litertjs/core (and its @litertjs/wasm-utils) where it was installed
    subprocess.run([str(WEB / "node_modules/.bin/esbuild"), str(entry), "--bundle", "--format=iife",
                    "--global-name=LiteRT", "--log-level=warning", f"--outfile={out / 'litert.js'}"],
                   check=True, env=dict(os.environ, NODE_PATH=str(core.parent.parent)))
    # what adopting it would add to a download, gzipped as a static host serves it
    shipped = [out / "litert.js", *sorted((out / "litert-wasm").iterdir()), out / f"backbone_b{IMAGES}.tflite"]
    info["gzip_bytes"] = {f.name: len(gzip.compress(f.read_bytes(), 6)) for f in shipped}
    info["raw_bytes"] = {f.name: f.stat().st_size for f in shipped}
    return info


class _IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with COOP/COEP (as pipeline/serve.py sends them): threads need SharedArrayBuffer."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


class _PlainHandler(_IsolatedHandler):
    """The same files without COOP/COEP (a static host): no SharedArrayBuffer, so both
    runtimes load their single-threaded builds."""

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        http.server.SimpleHTTPRequestHandler.end_headers(self)


def _serve(folder: Path, isolated: bool = True):
    handler = _IsolatedHandler if isolated else _PlainHandler
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def run_page(url: str, plain_url: str, threads_list, batches, rounds: int, log=print) -> dict:
    """Per thread count a fresh context on the built site's own page; 0 threads: served
    without COOP/COEP (?coi=0: nor the page's isolation service worker)."""
    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            for threads in threads_list:
                context = browser.new_context()
                if threads:  # the page's pool is web/src/backend.js wasmThreads(cores): 1 -> 1, 2 -> 2
                    context.add_init_script("Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', "
                                            f"{{get: () => {int(threads)}}});")
                page = context.new_page()
                page.set_default_timeout(READY_TIMEOUT_MS)
                errors = []
                page.on("console", lambda m: m.type in ("error", "warning") and errors.append(m.text))
                page.on("console", lambda m: m.text.startswith("litert bench:") and print(" ", m.text, flush=True))
                page.goto(f"{url}site/index.html?backend=wasm" if threads else f"{plain_url}site/index.html?backend=wasm&coi=0")
                if wait_settled(page, READY_TIMEOUT_MS) != "ready":
                    raise RuntimeError(f"the site's page did not get ready: {page.inner_text(STATUS)}")
                page.add_script_tag(url=f"{url if threads else plain_url}litert.js")
                page.add_script_tag(url=f"{url if threads else plain_url}litert_page.js")
                res = page.evaluate("([t, b, r]) => window.__litert.run({threads: t, batches: b, rounds: r})",
                                    [threads, list(batches), rounds])
                res["console"] = errors[:10]
                results[f"threads_{threads}"] = res
                log(f"  threads {threads} (TF.js pool {res['tfjs']['threads']}, isolated {res['crossOriginIsolated']}), "
                    f"load {load_average()}:")
                for b in batches:
                    row = res["batches"][str(b)]
                    log(f"    batch {b:>2}: fused {row['fused_ms_per_image']:.2f} ms/image (alone, before LiteRT.js loaded: "
                        f"{res['fused_alone_ms_per_image'][str(b)]:.2f}), litert {row['litert_ms_per_image']:.2f}, "
                        f"unfused {row['unfused_ms_per_image']:.2f}; fused/litert {row['fused_over_litert_median']:.2f}x "
                        f"(rounds {', '.join(f'{x:.2f}' for x in row['fused_over_litert'])}), "
                        f"unfused/litert {row['unfused_over_litert_median']:.2f}x")
                    log(f"      max|diff| litert-fused {row['max_diff_litert_fused']:.2e}, litert-keras "
                        f"{row['max_diff_litert_python']:.2e}, fused-keras {row['max_diff_fused_python']:.2e}, "
                        f"unfused-keras {row['max_diff_unfused_python']:.2e}, litert-native tflite "
                        f"{row['max_diff_litert_native']:.2e} (max |feature| {row['max_abs_feature']:.1f})")
                context.close()
        finally:
            browser.close()
    return results


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, default=ROOT / "site", help="a built site (default: ./site)")
    ap.add_argument("--litert", type=Path, default=DEFAULT_LITERT, help="the @litertjs/core package folder")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="*", default=[2, 1, 0],
                    help="thread counts; 0: not cross-origin isolated, both runtimes' single-threaded builds")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--folder", type=Path, help="keep the prepared page here and reuse it on the next run")
    args = ap.parse_args(argv)
    why = litert_missing(args.litert) or chromium_missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    if not (args.site / "manifest.json").exists():
        print(f"error: {args.site}: no manifest.json (build a site first)", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    version = json.loads((args.litert / "package.json").read_text())["version"]
    with tempfile.TemporaryDirectory(prefix="litert-bench-") as tmp:
        folder = args.folder or Path(tmp)
        info = folder / "prepared.json"
        if not info.exists():  # prepared once: a --folder kept from an earlier run skips TensorFlow
            folder.mkdir(parents=True, exist_ok=True)
            info.write_text(json.dumps(prepare_folder(args.site, args.litert, folder)))
        prepared = json.loads(info.read_text())
        shutil.copy(PAGE_JS, folder / "litert_page.js")  # the page's code is fresh every run
        site_link = folder / "site"  # the built site's own page, served beside the LiteRT.js files
        if site_link.is_symlink():
            site_link.unlink()
        site_link.symlink_to(args.site.resolve(), target_is_directory=True)
        print(f"litert bench: @litertjs/core {version}, tflite bytes {prepared['tflite_bytes']}, gzipped "
              f"{', '.join(f'{k} {v / 1e6:.2f} MB' for k, v in prepared['gzip_bytes'].items())}; the b{IMAGES} .tflite "
              f"on TensorFlow's interpreter vs Keras: max|diff| {prepared['native_tflite_max_diff_keras']:.2e}; "
              f"load {load_average()}")
        (server, url), (plain, plain_url) = _serve(folder), _serve(folder, isolated=False)
        try:
            before = load_average()
            pages = run_page(url, plain_url, args.threads, BATCHES, args.rounds)
            after = load_average()
        finally:
            for s in (server, plain):
                s.shutdown()
                s.server_close()
    out = {"litertjs_core": version, "prepared": prepared, "load_average_before": before,
           "load_average_after": after, **pages}
    print(f"load average before {before}, after {after}")
    for key, res in pages.items():
        print(f"  {key}: the page's model load {res['tfjs']['model_load_ms']:.0f} ms, litert runtime load {res['litert_load_ms']:.0f} ms "
              f"({res['litert_wasm_bytes'] / 1e6:.2f} MB: {', '.join(f'{k} {v / 1e6:.2f} MB' for k, v in res['litert_files'].items())}), "
              f"compile {', '.join(f'b{b} {ms:.0f} ms' for b, ms in res['litert_compile_ms'].items())}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

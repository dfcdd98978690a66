"""The browser side of `make bench`: the built site in headless Debian Chromium (Playwright).

The site is served by the project's own app (tfjs_transfer.serve.create_app) under waitress on
a loopback port, in a thread, as the tests serve it (tests/harness.py's serve_wsgi). A
second server wraps the same app and drops the COOP/COEP headers, so its page is not
cross-origin isolated and the wasm backend runs its single-threaded SIMD build.

Per backend (wasm threaded as the page ships it, wasm single thread, wasm with TF.js' own
1-thread pool, webgl, cpu) and per repeat, a fresh browser context (empty HTTP cache) opens the page
with ?backend=NAME and measures:
  - the page's own model load time (`window.tfjsTransfer.timings.loadMs`: backbone +
    head fetched, parsed and warmed up) cold, then warm after a reload in the same context;
  - with the page's tf (`window.tfjsTransfer.tf`) and the same model.json files loaded
    again by bench/page_bench.js (evaluated in the page): decoding the 90 served logos,
    features one image at a time (the original tutorial's way) vs batched, a fresh head
    (manifest head.layers) trained 20 epochs with model.fit (the tutorial's way), and
    predict latency for a new image from a file (a fresh File of a served image's bytes
    through the page's file path, `probabilitiesFile`: read + decode + pixels + preprocess +
    backbone + head; the headline's predict_p50_ms_wasm; making the File, which the browser
    does for a dropped or chosen file, is timed apart), through the `probabilitiesUrl`
    hook (the same plus a fetch) and on the models alone, alternated image by image;
  - on the wasm variants, the page's own steps (`window.tfjsTransfer.steps`): extractFeatures
    over the served images (fetch, decode, preprocess, backbone; batches of 32, the next two
    loading meanwhile) and trainHead for 20 epochs; on wasm both on the main thread and
    through the page's TF.js worker (web/src/tfworker.js), alternated. The page's default path
    (the worker) is "ours" in the end-to-end comparison, the main thread's beside it; the
    tutorial side decodes, extracts one by one and trains with model.fit;
  - peak tensor bytes (tf.memory().numBytes after every kernel, via tf.profile) for one
    batch, one image, one training epoch and one prediction, and the kernels' time shares;
  - on wasm: other head shapes' training time, the page's own Train button, and, when the
    Python phase wrote one beside the site's, the backbone as trained (batch-norm and padding
    not folded into the convs), timed against the site's backbone batch by batch;
  - on wasm and wasm_unfused (?fuse=0, the "before" of web/src/fused.js), the page's own
    features (models.js: fused ops unless ?fuse=0) at batch 1, 16 and 32 and a prediction on
    the models as the page runs them; on wasm, the same fused vs layer by layer alternated in
    one page (A B A B) with the features' max |diff|;
  - wasm_tfjs_kernels: training with TF.js' own wasm kernels (?tfjs=all), the "before" of
    web/src/wasm/kernels.js (matmul.js, transpose.js, adam.js, identity.js).
After the rounds, on the wasm site in fresh pages: the Train button's longest task prepared in
idle time or not (train_button_long_tasks), the worker against the main thread paired, for the
page's steps (worker_vs_main) and for the Train button as a whole with its curves and
evaluation (train_button_worker_vs_main).
TF.js's wasm backend sizes its thread pool as navigator.hardwareConcurrency / 2 unless told;
the page asks for wasmThreads() (web/src/backend.js: 2 on a 2-core machine). The wasm_pool1
variant reports 1 core to the page (an init script), which gives TF.js' own pool of 1 here.
Nothing in web/src is changed; the page only has to expose `window.tfjsTransfer`.
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import STATUS, chromium_missing, launch_chromium, serve_wsgi, wait_settled  # noqa: E402

READY_TIMEOUT_MS = 180_000
ISOLATION_HEADERS = ("Cross-Origin-Opener-Policy", "Cross-Origin-Embedder-Policy")

# name -> (query backend, served with COOP/COEP?, navigator.hardwareConcurrency to report or None)
BACKENDS = {
    "wasm": ("wasm", True, None),          # SIMD + threads (cross-origin isolated), the page's default
    # before/after of web/src/fused.js: the backbone layer by layer (model.apply), not as fused ops
    "wasm_unfused": ("wasm&fuse=0", True, None),
    # SIMD, no SharedArrayBuffer -> the single-threaded build (coi=0: without the page's
    # isolation service worker, web/coi-sw.js, which would otherwise add the headers)
    "wasm_1thread": ("wasm&coi=0", False, None),
    # the pool TF.js would size by itself on this machine (hardwareConcurrency / 2 = 1 on 2 vCPUs):
    # the "before" of wasmThreads() in web/src/backend.js (reporting 1 core gives a pool of 1)
    "wasm_pool1": ("wasm", True, 1),
    "webgl": ("webgl", True, None),         # no GPU here: SwiftShader (software) if it starts
    "cpu": ("cpu", True, None),             # plain JavaScript
    # before/after of web/src/wasm/kernels.js: TF.js' own wasm kernels (training only matters)
    "wasm_tfjs_kernels": ("wasm&tfjs=all", True, None),
}

# extractFeatures' batch as the Train button runs it (web/src/train.js FEATURE_BATCH)
PAGE_BATCH = 32

# Evaluated in the page once it is ready: window.__bench, on the page's tf, manifest and steps.
PAGE_BENCH_JS = Path(__file__).resolve().parent / "page_bench.js"


class _DropIsolation:
    """WSGI middleware: the same app minus COOP/COEP, so the page is not cross-origin isolated."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            headers = [(k, v) for k, v in headers if k not in ISOLATION_HEADERS]
            return start_response(status, headers, exc_info)
        return self.app(environ, start)


def _site_app(site_dir, isolated: bool):
    """The project's app for the site; without COOP/COEP unless `isolated`."""
    from tfjs_transfer.serve import create_app

    app = create_app(site_dir)
    return app if isolated else _DropIsolation(app)


def available() -> str | None:
    """Why the browser side cannot run, or None."""
    return chromium_missing()


def _wait_ready(page):
    if wait_settled(page, READY_TIMEOUT_MS) != "ready":
        raise RuntimeError(f"page did not get ready: {page.inner_text(STATUS)}")


def pct(values, q):
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


UNFOLDED_PATH = "models/backbone-unfolded/model.json"

# Head variants trained on the wasm backend to show what the head's size costs in the page.
HEAD_VARIANTS = {
    "tutorial_dense10": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "relu"}],
    "pooled": [{"type": "global_average_pooling"}, {"type": "dropout", "rate": 0.2}],
}


def run_backend(browser, url: str, backend: str, *, n: int, rows: int, epochs: int, train_epochs: int,
                predicts: int, batches=(16,), backbone_only=(), page_train: bool = False, head_variants: bool = False,
                page_steps: bool = False, page_worker: bool = False, page_features=(), fuse_paired: int = 0,
                compare: str | None = None, cores: int | None = None, flip: bool = False) -> dict:
    """One fresh context (empty HTTP cache), one backend: every browser figure for it, in ms.
    Training runs `train_epochs` epochs and is reported scaled to `epochs` (equal when the
    backend is fast enough to run them all)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    if cores:
        context.add_init_script(f"Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', "
                                f"{{get: () => {int(cores)}}});")
    page = context.new_page()
    page.set_default_timeout(READY_TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    out = {"backend_requested": backend}
    phase = {"start": time.perf_counter()}
    try:
        t = time.perf_counter()
        page.goto(f"{url}?backend={backend}")
        _wait_ready(page)
        out["page_ready_cold_ms"] = (time.perf_counter() - t) * 1000
        out["model_load_cold_ms"] = page.evaluate("window.tfjsTransfer.timings.loadMs")
        # the whole cold start since navigation (loadMs starts once the backend is ready, and
        # the models' files download while it starts): the figure that shows nothing moved out
        out["ready_at_cold_ms"] = page.evaluate("window.tfjsTransfer.timings.readyAt")
        t = time.perf_counter()
        page.reload()
        _wait_ready(page)
        out["page_ready_warm_ms"] = (time.perf_counter() - t) * 1000
        out["model_load_warm_ms"] = page.evaluate("window.tfjsTransfer.timings.loadMs")
        phase["page_loads"] = time.perf_counter()
        page.evaluate(PAGE_BENCH_JS.read_text())
        setup = page.evaluate("n => window.__bench.setup(n)", n)
        out["info"] = setup.pop("info")
        out.update({"n_images": setup["n"], "decode_ms_per_image": setup["decodeMsPerImage"],
                    "first_inference_ms": setup["warmupMs"]})
        if out["info"]["backend"] != backend.split("&")[0]:
            out["fell_back_to"] = out["info"]["backend"]
        phase["setup"] = time.perf_counter()
        # one image at a time vs batched; the order alternates between rounds to spread drift
        sizes = [1, *batches]
        ext = {b: page.evaluate("b => window.__bench.extract(b)", b) for b in (sizes[::-1] if flip else sizes)}
        out["extract_ms_per_image"] = {str(b): ext[b]["msPerImage"] for b in sizes}
        out["batched_speedup"] = ext[1]["msPerImage"] / ext[batches[0]]["msPerImage"]
        if page_features:
            pf = {b: page.evaluate("b => window.__bench.pageFeatures(b)", b)
                  for b in (page_features[::-1] if flip else page_features)}
            out["page_features_ms_per_image"] = {str(b): pf[b]["msPerImage"] for b in page_features}
        if fuse_paired:
            fp = page.evaluate("([b, r, p]) => window.__bench.fusePaired(b, r, p)", [[1, 16, 32], fuse_paired, predicts])
            out["fuse_paired"] = {
                "max_abs_diff": fp["maxAbsDiff"],
                "batches": {b: {"fused_ms_per_image": statistics.median(v["fused"]),
                                "unfused_ms_per_image": statistics.median(v["unfused"]),
                                "speedup": statistics.median(u / f for f, u in zip(v["fused"], v["unfused"]))}
                            for b, v in fp["batches"].items()},
                "predict_models_p50": {"fused": pct(fp["predict"]["fused"], 50),
                                       "unfused": pct(fp["predict"]["unfused"], 50)}}
        if backbone_only:
            # the backbone alone on preprocessed inputs, at Python's batch (run.py's like-for-like ratio)
            out["backbone_only_ms_per_image"] = {
                str(b): page.evaluate("b => window.__bench.backboneOnly(b)", b)["msPerImage"] for b in backbone_only}
            # ... and as the page runs it by default: in its TF.js worker, or its lanes (web/src/tfworker.js)
            lanes = {str(b): page.evaluate("b => window.__bench.backboneWorker(b)", b) for b in backbone_only}
            if all(lanes.values()):
                out["backbone_only_worker_ms_per_image"] = {b: v["msPerImage"] for b, v in lanes.items()}
                out["backbone_only_worker_lanes"] = next(iter(lanes.values()))["lanes"]
        phase["extract"] = time.perf_counter()
        # model.fit on the features (fit's own shuffle): the tutorial's way of training
        tr = page.evaluate("([e, b, r]) => window.__bench.train(e, b, r)", [train_epochs, None, rows])
        out["train_fit_ms"] = out["train_ms"] = tr["ms"] * epochs / train_epochs
        out["train_epochs_run"] = train_epochs
        out["train_rows"] = tr["rows"]
        out["train_way"] = "model.fit"
        if page_steps:
            # the page's own code: features of the served images (fetch + decode + preprocess +
            # backbone, the next batch loading while this one runs), then its training loop; on
            # the main thread and, with page_worker, through the page's TF.js worker (its default
            # path: page_extract / train_ms are the default path's, *_main the main thread's),
            # the two alternated (the order flips with `flip`)
            worker = page_worker and page.evaluate("window.tfjsTransfer.tfWorker().then((w) => !!w)")
            # each path once untimed first (its decode and step code compiled, the pack fetched
            # in its realm), as bench/worker_pair.py does: the timed runs compare like with like
            for on_worker in (False, True) if worker else (False,):
                page.evaluate("([b, w]) => window.__bench.pageExtract(b, w)", [PAGE_BATCH, on_worker])
                page.evaluate("([e, w]) => window.__bench.pageTrain(e, w)", [2, on_worker])
            for on_worker in ((True, False) if flip else (False, True)) if worker else (False,):
                pe = page.evaluate("([b, w]) => window.__bench.pageExtract(b, w)", [PAGE_BATCH, on_worker])
                pt = page.evaluate("([e, w]) => window.__bench.pageTrain(e, w)", [epochs, on_worker])
                tail = "" if on_worker or not worker else "_main"
                out["page_extract" + tail] = {"ms": pe["ms"], "images": pe["images"], "ms_per_image": pe["msPerImage"],
                                              "wait_ms": pe.get("waitMs")}
                out["train_ms" + tail] = pt["ms"]
                out["train_loop_ms" + tail] = pt["loopMs"]
                if not tail:
                    out["train_final_accuracy"] = pt["finalTrainAccuracy"]
            out["page_path"] = "worker" if worker else "main"
            out["train_way"] = "page trainHead" + (" (TF.js worker)" if worker else "")
            if worker:  # the worker's own start (script, backend, backbone) after the page is ready
                out["worker_start_ms"] = page.evaluate("window.tfjsTransfer.tfWorker().then((w) => w.startMs)")
                out["worker_lanes"] = page.evaluate("window.tfjsTransfer.tfWorker().then((w) => w.lanes.length)")
            # the longest main-thread task extracting and training, main thread vs the TF.js worker
            out["long_tasks"] = page.evaluate("e => window.__bench.longTasks(e)", epochs)
        if head_variants:
            out["train_ms_by_head"] = {"manifest_head": out["train_ms"]}
            for name, layers in HEAD_VARIANTS.items():
                if head_variants is not True and name not in head_variants:
                    continue
                layers = layers + [{"type": "dense", "units": len(page.evaluate("window.tfjsTransfer.manifest.labels")),
                                    "activation": "softmax"}]
                r = page.evaluate("([e, b, r, l]) => window.__bench.train(e, b, r, l)", [epochs, None, rows, layers])
                out["train_ms_by_head"][name] = r["ms"]
        phase["train"] = time.perf_counter()
        pr = page.evaluate("c => window.__bench.predict(c)", predicts)
        out["predict_page_ms"] = {"p50": pct(pr["page"], 50), "p90": pct(pr["page"], 90)}
        out["predict_models_ms"] = {"p50": pct(pr["models"], 50), "p90": pct(pr["models"], 90)}
        out["predict_models_page_ms"] = {"p50": pct(pr["modelsPage"], 50), "p90": pct(pr["modelsPage"], 90)}
        # a new image from a file (a fresh File of a served image's bytes) through the page's file path;
        # making the File (the browser's work for a dropped file) apart
        out["predict_file_ms"] = {"p50": pct(pr["file"], 50), "p90": pct(pr["file"], 90), "n": len(pr["file"]),
                                  "making_the_file_p50": pct(pr["newFile"], 50)}
        phase["predict"] = time.perf_counter()
        prof = page.evaluate("r => window.__bench.peaks(r)", rows)
        out["peak_bytes"] = prof["bytes"]
        out["peak_tensor_bytes"] = max(prof["bytes"].values())
        out["kernels"] = prof["kernels"]
        phase["profile"] = time.perf_counter()
        if compare:
            # before/after of pipeline/fold.py: the backbone as trained vs the site's (folded)
            out["unfolded_backbone"] = {}
            for b in (16, 1):
                c = page.evaluate("([p, b, r]) => window.__bench.compareBackbone(p, b, r)", [compare, b, 2])
                out["unfolded_backbone"][str(b)] = {
                    "ms_per_image_unfolded": statistics.median(c["msPerImageOther"]),
                    "ms_per_image_site": statistics.median(c["msPerImageBase"]),
                    "site_speedup": statistics.median(x / y for x, y in zip(c["msPerImageOther"], c["msPerImageBase"])),
                    "max_abs_diff": c["maxAbsDiff"], "unfolded_top_kernels": c["kernels"]}
            phase["unfolded_backbone"] = time.perf_counter()
        out["tensors_left_after_dispose"] = page.evaluate("window.__bench.dispose()")
        if page_train:
            out["page_ui"] = _page_train(page, epochs)
            phase["page_ui_train"] = time.perf_counter()
    finally:
        context.close()
    names = list(phase)
    out["bench_seconds"] = {b: round(phase[b] - phase[a], 1) for a, b in zip(names, names[1:])}
    out["page_errors"] = errors[:5]
    return out


def _page_train(page, epochs: int) -> dict:
    """The page's own Train button (features at its batch size, 32, tfjs-vis curves, Stop checks)."""
    page.fill("[data-testid=epochs]", str(epochs))
    page.evaluate("() => { window.tfjsTransfer.timings.featuresMs = undefined; }")
    page.click("[data-testid=train]")
    page.wait_for_function("document.querySelector('[data-testid=status]').dataset.state !== 'ready'")
    page.wait_for_function("document.querySelector('[data-testid=status]').dataset.state === 'ready'",
                           timeout=READY_TIMEOUT_MS)
    t = page.evaluate("({...window.tfjsTransfer.timings})")
    return {"features_ms": t.get("featuresMs"), "train_ms": t.get("trainMs"), "epochs": t.get("trainEpochs")}


def _train_button_once(browser, url: str, epochs: int, worker: bool | None = None) -> dict:
    """The Train button once in a fresh page (empty cache, cold code) at `url`, after the page's
    idle-time preparation settled (page_bench.js trainButton); `worker`: the page must (True) or
    must not (False) have its TF.js worker."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(READY_TIMEOUT_MS)
        page.goto(url)
        _wait_ready(page)
        page.evaluate("window.tfjsTransfer.prepared")  # settled (null with ?prepare=0)
        if worker is not None and page.evaluate("window.tfjsTransfer.tfWorker().then((w) => Boolean(w))") != worker:
            raise RuntimeError(f"the page {'has no' if worker else 'has a'} TF.js worker")
        page.evaluate(PAGE_BENCH_JS.read_text())
        got = page.evaluate("e => window.__bench.trainButton(e)", epochs)
        if not got["status"].startswith("Trained"):
            raise RuntimeError(f"the Train button did not train: {got['status']}")
        return got
    finally:
        context.close()


def train_button_long_tasks(browser, url: str, rounds: int = 2, epochs: int = 20, log=print) -> dict:
    """Issue 18's stall figure for the page's Train button as a whole (page_bench.js trainButton):
    fresh pages (empty cache, cold code) alternating ?prepare=0 (the training and evaluation
    code imported and first drawn at the first Train: before) and the page as shipped (done in
    idle time once the page is ready, web/src/prepare.js: after), A B then B A; with the load average."""
    out = {"before": [], "after": [], "load": []}
    for r in range(rounds):
        for prepare in ((False, True) if r % 2 == 0 else (True, False)):
            got = _train_button_once(browser, url + ("" if prepare else "?prepare=0"), epochs)
            out["after" if prepare else "before"].append(got)
            out["load"].append(os.getloadavg()[0])
            log(f"  Train button ({'prepared in idle time' if prepare else '?prepare=0'}): longest task "
                f"{got['longestTaskMs']:.0f} ms, {got['tasksOver50']} over 50 ms, {got['ms']:.0f} ms; "
                f"load {out['load'][-1]:.1f}")
    return out


def train_button_worker_vs_main(browser, url: str, pairs: int = 4, epochs: int = 20, log=print) -> dict:
    """Issue 18's "same or better end to end" as the user meets it: the page's Train button as a
    whole (page_bench.js trainButton: features, `epochs` epochs with the live curves, the
    evaluation's scoring and drawings) in fresh pages, prepared in idle time, with the TF.js
    worker and with ?worker=0, alternated A B then B A; the paired ratios' median with a 95%
    interval, and each run's longest main-thread task."""
    rows = []
    for r in range(pairs):
        row = {}
        for worker in ((True, False) if r % 2 == 0 else (False, True)):
            row["worker" if worker else "main"] = _train_button_once(
                browser, url + ("" if worker else "?worker=0"), epochs, worker=worker)
        row["load_avg"] = os.getloadavg()[0]
        rows.append(row)
        log(f"  Train button, worker vs main thread, pair {r + 1}/{pairs}: {row['worker']['ms']:.0f} vs "
            f"{row['main']['ms']:.0f} ms ({row['worker']['ms'] / row['main']['ms']:.2f}x), longest task "
            f"{row['worker']['longestTaskMs']:.0f} vs {row['main']['longestTaskMs']:.0f} ms; load {row['load_avg']:.1f}")
    ratios = [r_["worker"]["ms"] / r_["main"]["ms"] for r_ in rows]
    return {"pairs": rows, "ratios": ratios, "median": statistics.median(ratios), "median_95": median_interval(ratios),
            "ms": {p: statistics.median(r_[p]["ms"] for r_ in rows) for p in ("worker", "main")},
            "longest_task_ms": {p: [r_[p]["longestTaskMs"] for r_ in rows] for p in ("worker", "main")}}


def worker_vs_main(browser, url: str, pages: int = 3, pairs: int = 4, epochs: int = 20, log=print) -> dict:
    """Issue 18's "same or better end to end" for the TF.js worker: fresh pages as a user opens
    them (bench/worker_pair.py one_page: each path warmed once, then `pairs` pairs of extract +
    train, main thread and worker alternated A B B A), where the bench's own page has run its
    other phases on the main thread first. Per pair and the medians of the paired ratios."""
    from bench.worker_pair import end_to_end_ratios, one_page, summary

    rows = []
    for p in range(pages):
        got = one_page(browser, url, list(range(p * pairs, (p + 1) * pairs)), epochs, PAGE_BATCH)
        rows.extend(got)
        log(f"  worker vs main thread, fresh page {p + 1}/{pages}: worker/main end to end "
            + ", ".join(f"{x:.2f}x" for x in end_to_end_ratios(got)) + f"; load {got[-1]['load_avg']:.1f}")
    ratios = end_to_end_ratios(rows)
    return {"pairs": rows, "summary": summary({"pages": rows})["pages"], "end_to_end_ratios": ratios,
            "end_to_end_median_95": median_interval(ratios), "pages": pages, "pairs_per_page": pairs}


def median_interval(values: list[float], draws: int = 2000, seed: int = 0) -> list[float]:
    """A 95% bootstrap interval of the median of `values` (resampled with replacement, fixed
    seed): whether a ratio near 1 is "the same" or "better" is read off it, not off one median."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return [medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]]


def end_to_end(res: dict, batch: int, total: int, page: bool = False, main_thread: bool = False) -> dict:
    """The in-browser path for `total` images: load the models (cold), decode, extract at
    `batch`, train the head, predict one image; per-image steps scaled to `total` when
    fewer images were measured (the slow backends). With `page`, decoding and features are
    the page's own pipelined extractFeatures and training its trainHead, on the page's
    default path (its TF.js worker where it has one; `main_thread`: on the main thread);
    otherwise decoding one by one, features at `batch` and model.fit (the tutorial's way)."""
    steps = {"load_models": res["model_load_cold_ms"]}
    tail = "_main" if main_thread and "page_extract_main" in res else ""
    if page:
        steps["decode_and_extract"] = res["page_extract" + tail]["ms_per_image"] * total
    else:
        steps["decode_images"] = res["decode_ms_per_image"] * total
        steps["extract_features"] = res["extract_ms_per_image"][str(batch)] * total
    steps["train_head"] = res["train_ms" + tail] if page else res["train_fit_ms"]
    steps["predict_one"] = res["predict_page_ms"]["p50"]
    total_ms = sum(steps.values())
    return {"total_ms": total_ms, "steps_ms": steps, "batch": batch, "backend": res["info"]["backend"],
            "images": total, "images_measured": res["n_images"],
            "path": ("main" if tail else res.get("page_path", "main")) if page else "tutorial",
            "dominant_step": max(steps, key=steps.get),
            "dominant_fraction": max(steps.values()) / total_ms}


def run(site_dir, *, repeat: int, n: int, n_slow: int, epochs: int = 20, predicts: int = 20,
        predicts_slow: int = 8, cpu_epochs: int = 5, backends=tuple(BACKENDS), log=print) -> dict:
    """Every backend, `repeat` times, interleaved (backend order rotates each round).
    The wasm backends extract `n` images, webgl and cpu `n_slow` (per-image figures are
    scaled to all the site's images in the end-to-end comparison); training always uses
    as many feature rows as the site has images."""
    import json

    from playwright.sync_api import sync_playwright

    total = len(json.loads((Path(site_dir) / "images.json").read_text())["images"])
    # the unfolded backbone written beside the site's by the Python phase, if any
    unfolded = UNFOLDED_PATH if (Path(site_dir) / UNFOLDED_PATH).is_file() else None
    n, n_slow = min(n, total), min(n_slow, total)
    runs: dict[str, list[dict]] = {b: [] for b in backends}
    e2e: list[dict] = []
    with contextlib.ExitStack() as stack:
        urls = {isolated: stack.enter_context(serve_wsgi(_site_app(site_dir, isolated)))
                for isolated in (True, False)}
        browser = launch_chromium(stack.enter_context(sync_playwright()))
        stack.callback(browser.close)
        for r in range(repeat):
            order = list(backends[r % len(backends):]) + list(backends[:r % len(backends)])
            got = {}
            for name in order:
                query, isolated, cores = BACKENDS[name]
                fast = name.startswith("wasm")
                training_only = name == "wasm_tfjs_kernels"
                t = time.perf_counter()
                res = run_backend(browser, urls[isolated], query,
                                  n=n_slow if training_only or not fast else n, cores=cores,
                                  rows=total, epochs=epochs,
                                  train_epochs=min(cpu_epochs, epochs) if name == "cpu" else epochs,
                                  predicts=predicts if fast and not training_only else predicts_slow,
                                  batches=(16, 4, 8, 32) if name in ("wasm", "wasm_unfused") else (16,),
                                  backbone_only=(32, 16) if name in ("wasm", "wasm_pool1", "wasm_unfused") else (),
                                  page_features=(1, 16, 32) if name in ("wasm", "wasm_unfused") else (),
                                  fuse_paired=2 if name == "wasm" else 0,
                                  page_train=(name == "wasm"), page_steps=fast, page_worker=(name == "wasm"),
                                  head_variants=True if name == "wasm" else
                                  ["tutorial_dense10"] if name == "webgl" else False,
                                  compare=unfolded if name == "wasm" else None,
                                  flip=bool(r % 2))
                log(f"  browser {name:<12} round {r + 1}/{repeat}: on {res['info']['backend']}, "
                    f"{res['n_images']} images: {res['extract_ms_per_image']['1']:.1f} ms/image one by one, "
                    f"{res['extract_ms_per_image']['16']:.1f} batched (16); train {epochs} epochs "
                    f"{res['train_ms']:.0f} ms; predict p50 {res['predict_page_ms']['p50']:.0f} ms "
                    f"({time.perf_counter() - t:.0f}s: {res['bench_seconds']})")
                runs[name].append(res)
                got[name] = res
            if "wasm" in got and ("webgl" in got or "cpu" in got):
                tutorial = got.get("webgl")
                if tutorial is None or tutorial["info"]["backend"] != "webgl":
                    tutorial = got["cpu"]
                ours, theirs = end_to_end(got["wasm"], PAGE_BATCH, total, page=True), end_to_end(tutorial, 1, total)
                row = {"ours": ours, "tutorial": theirs, "speedup": theirs["total_ms"] / ours["total_ms"]}
                # the same on the page's main thread (?worker=0's path), beside the default path's
                main = end_to_end(got["wasm"], PAGE_BATCH, total, page=True, main_thread=True)
                row.update(ours_main_thread=main, speedup_main_thread=theirs["total_ms"] / main["total_ms"])
                # the stricter reading: the tutorial also trains its own, smaller head
                own = tutorial.get("train_ms_by_head", {}).get("tutorial_dense10")
                if own is not None:
                    own_total = theirs["total_ms"] - theirs["steps_ms"]["train_head"] + own
                    row["tutorial_own_head_total_ms"] = own_total
                    row["speedup_vs_tutorial_own_head"] = own_total / ours["total_ms"]
                e2e.append(row)
        if "wasm" in backends:
            train_button = train_button_long_tasks(browser, urls[True], rounds=2, epochs=epochs, log=log)
            button_pairs = train_button_worker_vs_main(browser, urls[True], pairs=2 * repeat, epochs=epochs, log=log)
            worker_pairs = worker_vs_main(browser, urls[True], pages=repeat, epochs=epochs, log=log)
    out = {name: summarize(rs) for name, rs in runs.items()}
    out["site_images"] = total
    if "wasm" in backends:
        out["train_button_long_tasks"] = train_button
        out["worker_vs_main"] = worker_pairs
        out["train_button_worker_vs_main"] = button_pairs
    if e2e:
        out["end_to_end"] = {"speedup": statistics.median(x["speedup"] for x in e2e),
                             "speedups": [x["speedup"] for x in e2e],
                             "rounds": [{"ours_ms": x["ours"]["total_ms"], "tutorial_ms": x["tutorial"]["total_ms"],
                                         "ours_main_thread_ms": x["ours_main_thread"]["total_ms"]} for x in e2e],
                             # ours on the page's main thread (the default path is its TF.js worker)
                             "speedup_main_thread": statistics.median(x["speedup_main_thread"] for x in e2e),
                             "speedups_main_thread": [x["speedup_main_thread"] for x in e2e],
                             "ours_main_thread": _dominant(_median_tree([x["ours_main_thread"] for x in e2e])),
                             "speedup_vs_tutorial_own_head": statistics.median(
                                 x["speedup_vs_tutorial_own_head"] for x in e2e)
                             if all("speedup_vs_tutorial_own_head" in x for x in e2e) else None,
                             "ours": _dominant(_median_tree([x["ours"] for x in e2e])),
                             "tutorial": _dominant(_median_tree([x["tutorial"] for x in e2e]))}
    return out


def _dominant(e2e: dict) -> dict:
    """Total and dominant step recomputed from the median steps (not taken from round 1)."""
    steps = e2e["steps_ms"]
    e2e["total_ms"] = sum(steps.values())
    e2e["dominant_step"] = max(steps, key=steps.get)
    e2e["dominant_fraction"] = steps[e2e["dominant_step"]] / e2e["total_ms"]
    return e2e


def _median_tree(items):
    """Median of numbers leaf by leaf; other leaves from the first run."""
    first = items[0]
    if isinstance(first, bool) or not isinstance(first, (int, float, dict)):
        return first
    if isinstance(first, dict):
        return {k: _median_tree([it[k] for it in items if isinstance(it, dict) and k in it]) for k in first}
    vals = [v for v in items if isinstance(v, (int, float)) and v is not None]
    return statistics.median(vals) if vals else None


def summarize(rs: list[dict]) -> dict:
    s = _median_tree(rs)
    s["runs"] = len(rs)
    s["page_errors"] = sorted({e for r in rs for e in r.get("page_errors", [])})[:5]
    return s

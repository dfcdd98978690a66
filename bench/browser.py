"""The browser side of `make bench`: the built site in headless Debian Chromium (Playwright).

The site is served by the project's own app (pipeline.serve.create_app) under waitress
on 127.0.0.1, port 0, in a thread, as tests/conftest.py's `served_site` does. A second
server wraps the same app and drops the COOP/COEP headers, so its page is not
cross-origin isolated and the wasm backend runs its single-threaded SIMD build.

Per backend (wasm threaded as the page ships it, wasm single thread, wasm with TF.js' own
1-thread pool, webgl, cpu) and per repeat, a fresh browser context (empty HTTP cache) opens the page
with ?backend=NAME and measures:
  - the page's own model load time (`window.tfjsTransfer.timings.loadMs`: backbone +
    head fetched, parsed and warmed up) cold, then warm after a reload in the same context;
  - with the page's tf (`window.tfjsTransfer.tf`) and the same model.json files loaded
    again in page.evaluate: decoding the 90 served logos, features one image at a time
    (the original tutorial's way) vs batched, a fresh head (manifest head.layers)
    trained 20 epochs with model.fit (the tutorial's way), and predict latency through the page's `probabilitiesUrl` hook
    (fetch + decode + preprocess + backbone + head) and on the models alone;
  - on the wasm variants, the page's own steps (`window.tfjsTransfer.steps`): extractFeatures
    over the served images (fetch, decode, preprocess, backbone; batches of 16, the next one
    loading meanwhile) and trainHead for 20 epochs. These are "ours" in the end-to-end
    comparison; the tutorial side decodes, extracts one by one and trains with model.fit;
  - peak tensor bytes (tf.memory().numBytes after every kernel, via tf.profile) for one
    batch, one image, one training epoch and one prediction, and the kernels' time shares;
  - on wasm: other head shapes' training time, the page's own Train button, and, when the
    Python phase wrote one beside the site's, the backbone as trained (batch-norm and padding
    not folded into the convs), timed against the site's backbone batch by batch;
  - wasm_tfjs_kernels: training with TF.js' own wasm kernels (?tfjs=all), the "before" of
    web/src/kernels.js (matmul.js, transpose.js, adam.js, identity.js).
TF.js's wasm backend sizes its thread pool as navigator.hardwareConcurrency / 2 unless told;
the page asks for wasmThreads() (web/src/backend.js: 2 on a 2-core machine). The wasm_pool1
variant reports 1 core to the page (an init script), which gives TF.js' own pool of 1 here.
Nothing in web/src is changed; the page only has to expose `window.tfjsTransfer`.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
# The same flags as tests/browser/conftest.py.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
READY_TIMEOUT_MS = 180_000
ISOLATION_HEADERS = ("Cross-Origin-Opener-Policy", "Cross-Origin-Embedder-Policy")

# name -> (query backend, served with COOP/COEP?, navigator.hardwareConcurrency to report or None)
BACKENDS = {
    "wasm": ("wasm", True, None),          # SIMD + threads (cross-origin isolated), the page's default
    "wasm_1thread": ("wasm", False, None),  # SIMD, no SharedArrayBuffer -> the single-threaded build
    # the pool TF.js would size by itself on this machine (hardwareConcurrency / 2 = 1 on 2 vCPUs):
    # the "before" of wasmThreads() in web/src/backend.js (reporting 1 core gives a pool of 1)
    "wasm_pool1": ("wasm", True, 1),
    "webgl": ("webgl", True, None),         # no GPU here: SwiftShader (software) if it starts
    "cpu": ("cpu", True, None),             # plain JavaScript
    # before/after of web/src/kernels.js: TF.js' own wasm kernels (training only matters)
    "wasm_tfjs_kernels": ("wasm&tfjs=all", True, None),
}

# Installed into the page after it is ready; everything uses the page's tf and manifest.
BENCH_JS = r"""
(() => {
  const T = window.tfjsTransfer, tf = T.tf, m = T.manifest;
  const S = { bitmaps: [], labels: [], urls: [], backbone: null, head: null, feats: null };
  const H = m.input.height, W = m.input.width, C = m.input.channels;
  const FEATURE_SIZE = m.backbone.output_shape.reduce((a, b) => a * b, 1);
  const url = (p) => new URL(p, document.baseURI).href;

  // The page's preprocessing (web/src/preprocess.js) and model call (web/src/models.js).
  const pre = (pixels) => T.steps.preprocess(tf, pixels, m);
  // one image at a time through model.predict, the tutorial's way; batches as the page runs them
  const backboneOn = (model, x) => (x.shape[0] === 1 ? model.predict(x) : T.steps.features(tf, model, x));

  function batchOf(start, count) {
    return tf.tidy(() => {
      const xs = S.bitmaps.slice(start, start + count).map((b) => pre(tf.browser.fromPixels(b, C)));
      return xs.length === 1 ? xs[0] : tf.concat(xs, 0);
    });
  }

  // The page's head builder (web/src/models.js), for the manifest's layers or others.
  const buildHead = (layers) => T.steps.buildHead(tf, layers ? { ...m, head: { ...m.head, layers } } : m);

  function info() {
    const b = tf.backend();
    const out = { backend: tf.getBackend(), crossOriginIsolated: self.crossOriginIsolated,
      hardwareConcurrency: navigator.hardwareConcurrency, tfjs: tf.version.tfjs };
    out.registered = Object.fromEntries(Object.entries(tf.engine().registryFactory).map(([k, v]) => [k, v.priority]));
    if (out.backend === 'wasm') {
      out.simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      out.multithread = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
      try { out.threads = b.wasm.tfjs.getThreadsCount(); } catch (e) { out.threads = null; }
    }
    if (out.backend === 'webgl') {
      const gl = b.gpgpu && b.gpgpu.gl;
      const ext = gl && gl.getExtension('WEBGL_debug_renderer_info');
      out.renderer = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : (gl ? gl.getParameter(gl.RENDERER) : null);
      out.webglVersion = tf.env().get('WEBGL_VERSION');
    }
    return out;
  }

  // The features and labels of `rows` training rows (the extracted images repeated when
  // fewer were extracted: training time depends on the row count, not the values), as the
  // page caches them: {data, count, size} and a label index per row.
  function featureRows(rows) {
    const n = S.bitmaps.length;
    rows = rows || n;
    const data = new Float32Array(rows * FEATURE_SIZE);
    const labelIndex = [];
    for (let r = 0; r < rows; r++) {
      data.set(S.feats.subarray((r % n) * FEATURE_SIZE, (r % n + 1) * FEATURE_SIZE), r * FEATURE_SIZE);
      labelIndex.push(S.labels[r % n]);
    }
    return { feats: { data, count: rows, size: FEATURE_SIZE }, labelIndex };
  }

  // ... as tensors, for model.fit
  function trainingData(rows) {
    const { feats, labelIndex } = featureRows(rows);
    const xs = tf.tensor(feats.data, [feats.count, ...m.backbone.output_shape]);
    const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(labelIndex, 'int32'), m.labels.length).toFloat());
    return [xs, ys];
  }

  // The page's training loop (web/src/train.js) on every row, no validation, with the
  // manifest's hyper-parameters and `epochs`.
  async function pageTrainHead(feats, labelIndex, epochs) {
    const hp = m.training.hyperparameters;
    const r = await T.steps.trainHead({ tf, manifest: m, feats, labelIndex,
      split: { train: [...Array(feats.count).keys()], valid: [] },
      hyper: { epochs, batchSize: hp.batch_size, learningRate: hp.learning_rate, optimizer: hp.optimizer, loss: hp.loss } });
    r.model.dispose();
    return r;
  }

  window.__bench = {
    info,
    async setup(n) {
      const list = (await (await fetch(url(m.images.path || 'images.json'))).json()).images;
      // Interleave the classes so any prefix of n images holds all of them.
      const byLabel = m.labels.map((l) => list.filter((it) => it.label === l));
      const order = [];
      for (let i = 0; order.length < list.length; i++) byLabel.forEach((g) => { if (i < g.length) order.push(g[i]); });
      const chosen = order.slice(0, n);
      const t0 = performance.now();
      S.backbone = await tf.loadLayersModel(url(m.backbone.path));
      S.head = await tf.loadLayersModel(url(m.head.path));
      const loadMs = performance.now() - t0;
      const t1 = performance.now();
      tf.tidy(() => { S.head.predict(S.backbone.predict(tf.zeros([1, H, W, C]))).dataSync(); });
      const warmupMs = performance.now() - t1;
      const t2 = performance.now();
      for (const it of chosen) {
        const blob = await (await fetch(url(it.path))).blob();
        S.bitmaps.push(await createImageBitmap(blob));
        S.labels.push(m.labels.indexOf(it.label));
        S.urls.push(url(it.path));
      }
      const decodeMs = performance.now() - t2;
      // One warm-up batch of the largest size used, so kernel set-up is not timed.
      tf.tidy(() => backboneOn(S.backbone, batchOf(0, Math.min(16, n))).dataSync());
      return { n: chosen.length, loadMsFromHttpCache: loadMs, warmupMs, decodeMs,
        decodeMsPerImage: decodeMs / chosen.length, modelBytes: tf.memory().numBytes, info: info() };
    },
    async extract(batch) {
      const n = S.bitmaps.length;
      const data = new Float32Array(n * FEATURE_SIZE);
      const t = performance.now();
      for (let s = 0; s < n; s += batch) {
        const out = tf.tidy(() => backboneOn(S.backbone, batchOf(s, batch)));
        data.set(await out.data(), s * FEATURE_SIZE);
        out.dispose();
      }
      const ms = performance.now() - t;
      S.feats = data;
      return { batch, ms, msPerImage: ms / n };
    },
    async train(epochs, batchSize, rows, layers) {
      const [xs, ys] = trainingData(rows);
      const hp = m.training.hyperparameters;
      const model = buildHead(layers);
      model.compile({ optimizer: tf.train.adam(hp.learning_rate), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      const t = performance.now();
      const h = await model.fit(xs, ys, { epochs, batchSize: batchSize || hp.batch_size, shuffle: true, verbose: 0 });
      const ms = performance.now() - t;
      const acc = h.history.acc[h.history.acc.length - 1];
      xs.dispose(); ys.dispose(); model.optimizer.dispose(); model.dispose();
      return { epochs, rows: xs.shape[0], ms, finalTrainAccuracy: acc };
    },
    // The page's own steps (web/src/train.js via window.tfjsTransfer.steps): what "ours" is.
    async pageExtract(batch) {
      const P = T.steps, set = P.trainSet();
      const t = performance.now();
      const feats = await P.extractFeatures({ tf, backbone: P.backbone(), manifest: m, items: set.items,
        loadPixels: P.loadPixels, batchSize: batch });
      const ms = performance.now() - t;
      S.page = { feats, labelIndex: set.labelIndex };
      return { batch, ms, images: set.items.length, msPerImage: ms / set.items.length };
    },
    async pageTrain(epochs) {
      // every extracted row trains (no validation), as the tutorial's fit does
      const r = await pageTrainHead(S.page.feats, S.page.labelIndex, epochs);
      const acc = r.history.history.acc;
      return { epochs: r.epochs, rows: S.page.feats.count, ms: r.ms, finalTrainAccuracy: acc[acc.length - 1] };
    },
    async predict(count) {
      const page = [], models = [];
      for (let i = 0; i < count; i++) {
        const u = S.urls[i % S.urls.length];
        let t = performance.now();
        await T.probabilitiesUrl(u);
        page.push(performance.now() - t);
        t = performance.now();
        const out = tf.tidy(() => S.head.predict(S.backbone.predict(batchOf(i % S.bitmaps.length, 1))));
        await out.data();
        out.dispose();
        models.push(performance.now() - t);
      }
      return { page, models };
    },
    async peaks(rows) {
      // tf.profile records tf.memory().numBytes after every kernel: the true peak of a step.
      // (It returns one shared object, so read peakBytes before the next profile.)
      const base = tf.memory().numBytes;
      const n = S.bitmaps.length;
      const kernels = {};
      const peak = async (f, what) => {
        const p = await tf.profile(f);
        const peakBytes = p.peakBytes;
        if (what) {
          const byName = {};
          for (const k of p.kernels) {
            if (k.name.endsWith('__op')) continue; // the op wrapping a kernel: counted once, as the kernel
            const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
            byName[k.name] = (byName[k.name] || 0) + ms;
          }
          const total = Object.values(byName).reduce((a, b) => a + b, 0);
          kernels[what] = { totalMs: total, top: Object.entries(byName).sort((a, b) => b[1] - a[1]).slice(0, 6)
            .map(([name, ms]) => ({ name, ms, share: total ? ms / total : null })) };
        }
        return peakBytes;
      };
      const extractOne = await peak(() => { tf.tidy(() => S.backbone.predict(batchOf(0, 1))).dispose(); });
      const extractBatch4 = await peak(() => { tf.tidy(() => backboneOn(S.backbone, batchOf(0, Math.min(4, n)))).dispose(); });
      const extractBatch16 = await peak(() => { tf.tidy(() => backboneOn(S.backbone, batchOf(0, Math.min(16, n)))).dispose(); }, 'extractBatch16');
      const predictOne = await peak(() => { tf.tidy(() => S.head.predict(S.backbone.predict(batchOf(0, 1)))).dispose(); });
      // one epoch of the page's training loop on `rows` feature rows
      const { feats, labelIndex } = featureRows(rows);
      const trainEpoch = await peak(async () => { await pageTrainHead(feats, labelIndex, 1); }, 'trainEpoch');
      return { bytes: { modelsBytes: base, extractOne, extractBatch4, extractBatch16, predictOne, trainEpoch }, kernels };
    },
    async compareBackbone(path, batch, rounds) {
      // Another backbone (e.g. the unfolded one) against the site's, paired batch by batch.
      const other = await tf.loadLayersModel(url(path));
      tf.tidy(() => backboneOn(other, batchOf(0, Math.min(batch, S.bitmaps.length))).dataSync());
      const n = S.bitmaps.length;
      const time = async (model) => {
        const t = performance.now();
        let maxDiff = 0;
        for (let s = 0; s < n; s += batch) {
          const out = tf.tidy(() => backboneOn(model, batchOf(s, batch)));
          const d = await out.data();
          out.dispose();
          if (model === other) {
            const ref = S.feats.subarray(s * FEATURE_SIZE, s * FEATURE_SIZE + d.length);
            for (let i = 0; i < d.length; i++) maxDiff = Math.max(maxDiff, Math.abs(d[i] - ref[i]));
          }
        }
        return { ms: performance.now() - t, maxDiff };
      };
      const base = [], alt = [];
      let maxDiff = 0;
      for (let r = 0; r < rounds; r++) {
        base.push((await time(S.backbone)).ms / n);
        const a = await time(other);
        alt.push(a.ms / n);
        maxDiff = Math.max(maxDiff, a.maxDiff);
      }
      const kernels = await tf.profile(() => { tf.tidy(() => backboneOn(other, batchOf(0, Math.min(batch, n)))).dispose(); });
      const names = {};
      for (const k of kernels.kernels) {
        if (k.name.endsWith('__op')) continue;
        names[k.name] = (names[k.name] || 0) + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0);
      }
      const layers = other.layers.length;
      other.dispose();
      return { batch, msPerImageBase: base, msPerImageOther: alt, maxAbsDiff: maxDiff, layers,
        baseLayers: S.backbone.layers.length,
        kernels: Object.entries(names).sort((a, b) => b[1] - a[1]).slice(0, 5) };
    },
    dispose() {
      S.bitmaps.forEach((b) => b.close());
      if (S.backbone) S.backbone.dispose();
      if (S.head) S.head.dispose();
      S.bitmaps = []; S.labels = []; S.urls = []; S.feats = null; S.page = null;
      return tf.memory().numTensors;
    },
  };
  return true;
})()
"""


class _DropIsolation:
    """WSGI middleware: the same app minus COOP/COEP, so the page is not cross-origin isolated."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            headers = [(k, v) for k, v in headers if k not in ISOLATION_HEADERS]
            return start_response(status, headers, exc_info)
        return self.app(environ, start)


class Served:
    """The site behind the real app and waitress on 127.0.0.1:0, in a thread."""

    def __init__(self, site_dir, isolated: bool = True):
        import waitress

        from pipeline.serve import create_app

        app = create_app(site_dir)
        self.server = waitress.create_server(app if isolated else _DropIsolation(app), host="127.0.0.1",
                                             port=0, threads=8)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.effective_port}/"

    def close(self):
        self.server.task_dispatcher.shutdown()
        self.server.close()
        self.thread.join(timeout=10)


def available() -> str | None:
    """Why the browser side cannot run, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing (pip install -e '.[test]')"
    return None


def _wait_ready(page):
    page.wait_for_function(
        "['ready', 'error'].includes(document.querySelector('[data-testid=status]')?.dataset.state)",
        timeout=READY_TIMEOUT_MS)
    state = page.get_attribute("[data-testid=status]", "data-state")
    if state != "ready":
        raise RuntimeError(f"page did not get ready: {page.inner_text('[data-testid=status]')}")


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
                predicts: int, batches=(16,), page_train: bool = False, head_variants: bool = False,
                page_steps: bool = False,
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
        t = time.perf_counter()
        page.reload()
        _wait_ready(page)
        out["page_ready_warm_ms"] = (time.perf_counter() - t) * 1000
        out["model_load_warm_ms"] = page.evaluate("window.tfjsTransfer.timings.loadMs")
        phase["page_loads"] = time.perf_counter()
        page.evaluate(BENCH_JS)
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
        phase["extract"] = time.perf_counter()
        # model.fit on the features (fit's own shuffle): the tutorial's way of training
        tr = page.evaluate("([e, b, r]) => window.__bench.train(e, b, r)", [train_epochs, None, rows])
        out["train_fit_ms"] = out["train_ms"] = tr["ms"] * epochs / train_epochs
        out["train_epochs_run"] = train_epochs
        out["train_rows"] = tr["rows"]
        out["train_way"] = "model.fit"
        if page_steps:
            # the page's own code: features of the served images (fetch + decode + preprocess +
            # backbone, the next batch loading while this one runs), then its training loop
            pe = page.evaluate("b => window.__bench.pageExtract(b)", 16)
            out["page_extract"] = {"ms": pe["ms"], "images": pe["images"], "ms_per_image": pe["msPerImage"]}
            pt = page.evaluate("e => window.__bench.pageTrain(e)", epochs)
            out["train_ms"] = pt["ms"]
            out["train_way"] = "page trainHead"
            out["train_final_accuracy"] = pt["finalTrainAccuracy"]
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
    """The page's own Train button (features at its batch size 16, tfjs-vis curves, Stop checks)."""
    page.fill("[data-testid=epochs]", str(epochs))
    page.evaluate("() => { window.tfjsTransfer.timings.featuresMs = undefined; }")
    page.click("[data-testid=train]")
    page.wait_for_function("document.querySelector('[data-testid=status]').dataset.state !== 'ready'")
    page.wait_for_function("document.querySelector('[data-testid=status]').dataset.state === 'ready'",
                           timeout=READY_TIMEOUT_MS)
    t = page.evaluate("({...window.tfjsTransfer.timings})")
    return {"features_ms": t.get("featuresMs"), "train_ms": t.get("trainMs"), "epochs": t.get("trainEpochs")}


def end_to_end(res: dict, batch: int, total: int, page: bool = False) -> dict:
    """The in-browser path for `total` images: load the models (cold), decode, extract at
    `batch`, train the head, predict one image; per-image steps scaled to `total` when
    fewer images were measured (the slow backends). With `page`, decoding and features are
    the page's own pipelined extractFeatures and training its trainHead; otherwise decoding
    one by one, features at `batch` and model.fit (the tutorial's way)."""
    steps = {"load_models": res["model_load_cold_ms"]}
    if page:
        steps["decode_and_extract"] = res["page_extract"]["ms_per_image"] * total
    else:
        steps["decode_images"] = res["decode_ms_per_image"] * total
        steps["extract_features"] = res["extract_ms_per_image"][str(batch)] * total
    steps["train_head"] = res["train_ms"] if page else res["train_fit_ms"]
    steps["predict_one"] = res["predict_page_ms"]["p50"]
    total_ms = sum(steps.values())
    return {"total_ms": total_ms, "steps_ms": steps, "batch": batch, "backend": res["info"]["backend"],
            "images": total, "images_measured": res["n_images"],
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
    servers = {True: Served(site_dir, isolated=True), False: Served(site_dir, isolated=False)}
    runs: dict[str, list[dict]] = {b: [] for b in backends}
    e2e: list[dict] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for r in range(repeat):
                    order = list(backends[r % len(backends):]) + list(backends[:r % len(backends)])
                    got = {}
                    for name in order:
                        query, isolated, cores = BACKENDS[name]
                        fast = name.startswith("wasm")
                        training_only = name == "wasm_tfjs_kernels"
                        t = time.perf_counter()
                        res = run_backend(browser, servers[isolated].url, query,
                                          n=n_slow if training_only or not fast else n, cores=cores,
                                          rows=total, epochs=epochs,
                                          train_epochs=min(cpu_epochs, epochs) if name == "cpu" else epochs,
                                          predicts=predicts if fast and not training_only else predicts_slow,
                                          batches=(16, 4, 32) if name == "wasm" else (16,),
                                          page_train=(name == "wasm"), page_steps=fast,
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
                        ours, theirs = end_to_end(got["wasm"], 16, total, page=True), end_to_end(tutorial, 1, total)
                        row = {"ours": ours, "tutorial": theirs, "speedup": theirs["total_ms"] / ours["total_ms"]}
                        # the stricter reading: the tutorial also trains its own, smaller head
                        own = tutorial.get("train_ms_by_head", {}).get("tutorial_dense10")
                        if own is not None:
                            own_total = theirs["total_ms"] - theirs["steps_ms"]["train_head"] + own
                            row["tutorial_own_head_total_ms"] = own_total
                            row["speedup_vs_tutorial_own_head"] = own_total / ours["total_ms"]
                        e2e.append(row)
            finally:
                browser.close()
    finally:
        for s in servers.values():
            s.close()
    out = {name: summarize(rs) for name, rs in runs.items()}
    out["site_images"] = total
    if e2e:
        out["end_to_end"] = {"speedup": statistics.median(x["speedup"] for x in e2e),
                             "speedups": [x["speedup"] for x in e2e],
                             "rounds": [{"ours_ms": x["ours"]["total_ms"], "tutorial_ms": x["tutorial"]["total_ms"]}
                                        for x in e2e],
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

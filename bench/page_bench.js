// The bench's measurements inside the page (bench/browser.py evaluates this file once the
// page is ready): window.__bench, built on the page's own tf, manifest and steps
// (window.tfjsTransfer), so what it times is what the page runs. It only needs the page to
// expose window.tfjsTransfer; nothing in web/src depends on it.
(() => {
  const T = window.tfjsTransfer, tf = T.tf, m = T.manifest;
  const S = { bitmaps: [], labels: [], urls: [], files: [], backbone: null, head: null, feats: null };
  const H = m.input.height, W = m.input.width, C = m.input.channels;
  const FEATURE_SIZE = m.backbone.output_shape.reduce((a, b) => a * b, 1);
  const url = (p) => new URL(p, document.baseURI).href;
  // the page's TF.js worker (null without one) once its lanes have started (web/src/tfworker.js)
  const workerReady = async () => {
    const w = await T.tfWorker();
    if (w && w.lanesStarted) await w.lanesStarted;
    return w;
  };

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
      hardwareConcurrency: navigator.hardwareConcurrency, tfjs: tf.version_core };
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
    const ys = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labelIndex, 'int32'), m.labels.length), 'float32'));
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
        S.files.push({ bytes: await blob.arrayBuffer(), name: it.path.split('/').pop(), type: blob.type });
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
    // The page's features (web/src/models.js: the fused plan of web/src/fused.js unless ?fuse=0)
    // at `batch`, one image included: what the page pays per image for its backbone.
    async pageFeatures(batch) {
      const n = S.bitmaps.length;
      tf.tidy(() => T.steps.features(tf, S.backbone, batchOf(0, Math.min(batch, n))).dataSync()); // plan compiled, kernels warm
      const t = performance.now();
      for (let s = 0; s < n; s += batch) {
        const out = tf.tidy(() => T.steps.features(tf, S.backbone, batchOf(s, batch)));
        await out.data();
        out.dispose();
      }
      const ms = performance.now() - t;
      return { batch, ms, msPerImage: ms / n };
    },
    // web/src/fused.js before/after in this one page: the backbone as fused ops vs layer by layer
    // (model.apply), alternated A B A B (order flipped each round) over every image at each
    // batch size, one-image predictions (features + head) likewise; and the features' max |diff|.
    async fusePaired(batches, rounds, predicts) {
      const n = S.bitmaps.length;
      const feats = async (batch, keep) => {
        const rows = [];
        for (let s = 0; s < n; s += batch) {
          const out = tf.tidy(() => T.steps.features(tf, S.backbone, batchOf(s, batch)));
          const d = await out.data();
          out.dispose();
          if (keep) rows.push(d);
        }
        return rows;
      };
      const time = async (fused, f) => {
        T.steps.useFusedPlans(fused);
        const t = performance.now();
        const r = await f();
        return { ms: performance.now() - t, r };
      };
      const out = { batches: {}, predict: { fused: [], unfused: [] }, maxAbsDiff: 0 };
      try {
        // parity on every image, batch 16: the fused plan against model.apply
        const a = (await time(true, () => feats(16, true))).r, b = (await time(false, () => feats(16, true))).r;
        a.forEach((d, i) => { for (let j = 0; j < d.length; j++) out.maxAbsDiff = Math.max(out.maxAbsDiff, Math.abs(d[j] - b[i][j])); });
        for (const batch of batches) {
          const row = { fused: [], unfused: [] };
          for (let r = 0; r < rounds; r++) {
            for (const fused of (r % 2 ? [false, true] : [true, false])) {
              row[fused ? 'fused' : 'unfused'].push((await time(fused, () => feats(batch, false))).ms / n);
            }
          }
          out.batches[batch] = row;
        }
        for (let i = 0; i < predicts; i++) {
          for (const fused of (i % 2 ? [false, true] : [true, false])) {
            const { ms } = await time(fused, async () => {
              const p = tf.tidy(() => S.head.apply(T.steps.features(tf, S.backbone, batchOf(i % n, 1)), { training: false }));
              await p.data();
              p.dispose();
            });
            out.predict[fused ? 'fused' : 'unfused'].push(ms);
          }
        }
      } finally {
        T.steps.useFusedPlans(true);
      }
      return out;
    },
    // The backbone alone on inputs preprocessed beforehand (fromPixels + resize + normalise
    // not timed): the like-for-like of Python's images/s, which starts from preprocessed pixels.
    async backboneOnly(batch) {
      const n = S.bitmaps.length;
      const inputs = [];
      for (let s = 0; s < n; s += batch) inputs.push(batchOf(s, batch));
      tf.tidy(() => backboneOn(S.backbone, inputs[0]).dataSync()); // this batch shape's set-up
      const t = performance.now();
      for (const x of inputs) {
        const out = tf.tidy(() => backboneOn(S.backbone, x));
        await out.data();
        out.dispose();
      }
      const ms = performance.now() - t;
      inputs.forEach((x) => x.dispose());
      return { batch, ms, msPerImage: ms / n };
    },
    // The same through the page's TF.js worker (its default path): every lane runs batches of
    // `batch`, as extract() has them, all at once, each as many as backboneOnly runs. Null
    // without a worker.
    async backboneWorker(batch) {
      const w = await workerReady();
      if (!w) return null;
      const lanes = w.liveLanes().length;
      const { ms, images } = await w.backboneMs(batch, Math.ceil(S.bitmaps.length / batch));
      return { batch, ms, msPerImage: ms / images, lanes };
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
    // The page's own steps (web/src/train.js via window.tfjsTransfer.steps): what "ours" is,
    // on the main thread or (worker = true) through the page's TF.js worker (web/src/tfworker.js,
    // the page's default path where it has one; null when it has none). Times are the caller's:
    // for the worker, messages and the trained head's rebuilding on this thread included.
    async pageExtract(batch, worker = false) {
      const P = T.steps, set = P.trainSet();
      const w = worker ? await workerReady() : null;
      if (worker && !w) return null;
      const ex = { tf, backbone: P.backbone(), manifest: m, items: set.items, loadPixels: P.loadPixels, batchSize: batch };
      const t = performance.now();
      const feats = await (w ? w.extract(ex) : P.extractFeatures(ex));
      const ms = performance.now() - t;
      S.page = { feats, labelIndex: set.labelIndex };
      // waitMs: the backbone waiting for pixels (fetch + decode behind), where the page reports it
      return { batch, ms, images: set.items.length, msPerImage: ms / set.items.length, waitMs: feats.waitMs,
        where: w ? 'worker' : 'main' };
    },
    _pageFeats: () => S.page, // pageExtract's features and labels (bench/page_pair.py profiles with them)
    async pageTrain(epochs, worker = false) {
      const w = worker ? await workerReady() : null;
      if (worker && !w) return null;
      const hp = m.training.hyperparameters;
      // the worker takes the features' buffer (transferred): a copy goes, as the page's featureRows makes one
      const feats = w ? { ...S.page.feats, data: S.page.feats.data.slice() } : S.page.feats;
      const opts = { tf, manifest: m, feats, labelIndex: S.page.labelIndex,
        split: { train: [...Array(feats.count).keys()], valid: [] }, // every row trains, as the tutorial's fit does
        hyper: { epochs, batchSize: hp.batch_size, learningRate: hp.learning_rate, optimizer: hp.optimizer, loss: hp.loss } };
      const t = performance.now();
      const r = await (w ? w.trainHead(opts) : T.steps.trainHead(opts));
      const ms = performance.now() - t;
      r.model.dispose();
      const acc = r.history.history.acc;
      // loopMs: trainHead's own figure (in the worker: its loop alone)
      return { epochs: r.epochs, rows: feats.count, ms, loopMs: r.ms, finalTrainAccuracy: acc[acc.length - 1],
        where: w ? 'worker' : 'main' };
    },
    // Issue 18's stall figure: the longest main-thread task (Chromium's long-task observer)
    // while the page extracts the served images' features (batches of 32, the page's) and trains `epochs`
    // epochs, on the main thread and in the TF.js worker (web/src/tfworker.js), with the times.
    async longTasks(epochs) {
      const P = T.steps, set = P.trainSet();
      const hp = m.training.hyperparameters;
      const observe = () => {
        const tasks = [];
        const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) tasks.push(e.duration); });
        obs.observe({ type: 'longtask' });
        return async () => {
          await new Promise((r) => setTimeout(r, 50)); // entries are delivered after the task
          for (const e of obs.takeRecords()) tasks.push(e.duration);
          obs.disconnect();
          return { longestTaskMs: Math.max(0, ...tasks), tasksOver50: tasks.length };
        };
      };
      const run = async (worker) => {
        let stop = observe(), t = performance.now();
        const ex = { tf, backbone: P.backbone(), manifest: m, items: set.items, loadPixels: P.loadPixels, batchSize: 32 };
        const feats = worker ? await worker.extract(ex) : await P.extractFeatures(ex);
        const extract = { ms: performance.now() - t, ...(await stop()) };
        stop = observe(); t = performance.now();
        const tr = { tf, manifest: m, feats, labelIndex: set.labelIndex, split: { train: [...Array(feats.count).keys()], valid: [] },
          hyper: { epochs, batchSize: hp.batch_size, learningRate: hp.learning_rate, optimizer: hp.optimizer, loss: hp.loss } };
        const r = worker ? await worker.trainHead(tr) : await P.trainHead(tr);
        const train = { ms: performance.now() - t, ...(await stop()) };
        r.model.dispose();
        return { extract, train, images: feats.count };
      };
      const worker = await workerReady();
      return { mainThread: await run(null), worker: worker ? await run(worker) : null };
    },
    // ...and the page's Train button as a whole (the training chunk's import if not yet done,
    // features, the live curves, the new head and its evaluation's drawings): clicked as a user
    // does, until the status is ready again. bench/browser.py's train_button_long_tasks runs it
    // on fresh pages with and without the idle-time preparation (web/src/prepare.js).
    async trainButton(epochs) {
      const tasks = [];
      const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) tasks.push(e.duration); });
      obs.observe({ type: 'longtask' });
      const status = document.querySelector('[data-testid=status]');
      const epochsInput = document.querySelector('[data-testid=epochs]');
      epochsInput.value = String(epochs);
      epochsInput.dispatchEvent(new Event('input', { bubbles: true }));
      const until = (f) => new Promise((resolve) => { const check = () => (f() ? resolve() : setTimeout(check, 10)); check(); });
      const t = performance.now();
      document.querySelector('[data-testid=train]').click();
      await until(() => status.dataset.state !== 'ready');
      await until(() => status.dataset.state === 'ready');
      const ms = performance.now() - t;
      await new Promise((r) => setTimeout(r, 100)); // entries are delivered after the task
      for (const e of obs.takeRecords()) tasks.push(e.duration);
      obs.disconnect();
      return { ms, longestTaskMs: Math.max(0, ...tasks), tasksOver50: tasks.length, status: status.textContent };
    },
    // Predict latency three ways, alternated image by image: a new image from a file (a new
    // File of the image's bytes each time, through the page's own file path: decode,
    // pixels, preprocess, backbone, head, one read back), the page's URL hook (the same plus
    // a fetch from the server) and the models alone on a decoded bitmap.
    async predict(count) {
      const page = [], models = [], modelsPage = [], file = [], newFile = [];
      for (let i = 0; i < count; i++) {
        const u = S.urls[i % S.urls.length];
        const f = S.files[i % S.files.length];
        // A dropped or chosen file reaches the page as a File the browser made; this one is made
        // here from bytes (a Blob the browser process registers), timed apart from the page's work.
        let t = performance.now();
        const made = new File([f.bytes], f.name, { type: f.type });
        newFile.push(performance.now() - t);
        t = performance.now();
        await T.probabilitiesFile(made);
        file.push(performance.now() - t);
        t = performance.now();
        await T.probabilitiesUrl(u);
        page.push(performance.now() - t);
        t = performance.now();
        const out = tf.tidy(() => S.head.predict(S.backbone.predict(batchOf(i % S.bitmaps.length, 1))));
        await out.data();
        out.dispose();
        models.push(performance.now() - t);
        // the models as the page runs them (models.js' features: fused unless ?fuse=0)
        t = performance.now();
        const own = tf.tidy(() => S.head.apply(T.steps.features(tf, S.backbone, batchOf(i % S.bitmaps.length, 1)), { training: false }));
        await own.data();
        own.dispose();
        modelsPage.push(performance.now() - t);
      }
      return { page, models, modelsPage, file, newFile };
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
      S.bitmaps = []; S.labels = []; S.urls = []; S.files = []; S.feats = null; S.page = null;
      return tf.memory().numTensors;
    },
  };
  return true;
})();

// bench/litert.py's page: the same backbone on TF.js 4.22's wasm backend (the site's layers
// model) and on LiteRT.js (its .tflite, XNNPACK in wasm), on the same preprocessed images,
// timed alternately in this page. window.__litert.run({threads, batches, rounds}) -> JSON.
(() => {
  const here = (p) => new URL(p, location.href).href;
  const median = (v) => { const s = [...v].sort((a, b) => a - b); const k = s.length >> 1; return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2; };
  const IMAGES_PER_TIMING = 64; // images each timing covers (batch 1: 64 calls, batch 32: 2)

  async function floats(path) { return new Float32Array(await (await fetch(here(path))).arrayBuffer()); }

  function maxDiff(a, b) {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return m;
  }

  async function run({ threads, batches, rounds }) {
    const out = { threads, crossOriginIsolated: self.crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency };
    const input = await floats('input.bin'), python = await floats('python.bin'), native = await floats('native.bin');
    const [H, W, C] = [224, 224, 3], imageSize = H * W * C, featureSize = python.length / (input.length / imageSize);
    const images = input.length / imageSize;

    // TF.js: the wasm backend with `threads` threads, the site's layers model
    let t0 = performance.now();
    tf.wasm.setWasmPaths(here('tfjs/'));
    if (threads) tf.wasm.setThreadsCount(threads);
    await tf.setBackend('wasm');
    const tfModel = await tf.loadLayersModel(here('backbone/model.json'));
    tf.tidy(() => tfModel.predict(tf.zeros([1, H, W, C])).dataSync());
    out.tfjs_load_ms = performance.now() - t0;
    out.tfjs = { version: tf.version_core, backend: tf.getBackend(), threads: tf.backend().wasm.tfjs.getThreadsCount(),
      multithread: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') };

    const slice = (b, start) => {
      const x = new Float32Array(b * imageSize);
      for (let i = 0; i < b; i++) x.set(input.subarray(((start + i) % images) * imageSize, ((start + i) % images + 1) * imageSize), i * imageSize);
      return x;
    };
    const inputs = {};
    for (const b of batches) inputs[b] = Array.from({ length: Math.max(1, IMAGES_PER_TIMING / b) }, (_, k) => slice(b, k * b));
    async function timing(name, b) {
      const xs = inputs[b];
      const start = performance.now();
      for (const x of xs) await runners[name](b, x);
      return (performance.now() - start) / (xs.length * b);
    }
    const runners = {
      tfjs: async (b, x) => {
        const t = tf.tensor4d(x, [b, H, W, C]);
        const y = tfModel.predict(t);
        const d = await y.data();
        tf.dispose([t, y]);
        return d;
      },
    };
    // TF.js before LiteRT.js is in the page: does the other runtime's thread pool cost it anything?
    out.tfjs_alone_ms_per_image = {};
    for (const b of batches) {
      await runners.tfjs(b, inputs[b][0]);
      out.tfjs_alone_ms_per_image[b] = await timing('tfjs', b);
    }

    // LiteRT.js: the threaded wasm build (relaxed SIMD) with `threads` XNNPACK threads;
    // threads 0 (not isolated): its single-threaded build
    t0 = performance.now();
    await LiteRT.loadLiteRt(here('litert-wasm/'), { threads: threads > 0 });
    out.litert_load_ms = performance.now() - t0;
    const files = performance.getEntriesByType('resource').filter((e) => e.name.includes('/litert-wasm/'));
    // the threaded build's workers fetch its .js again (no-store here; a cached site would not)
    const unique = new Map(files.map((e) => [e.name.split('/').pop(), e.encodedBodySize]));
    out.litert_files = Object.fromEntries(unique);
    out.litert_wasm_bytes = [...unique.values()].reduce((a, v) => a + v, 0);
    out.litert_fetches = files.length;
    out.litert_compile_ms = {};
    const lite = {};
    for (const b of batches) {
      t0 = performance.now();
      lite[b] = await LiteRT.loadAndCompile(here(`backbone_b${b}.tflite`), { accelerator: 'wasm', cpuOptions: { numThreads: Math.max(1, threads) } });
      out.litert_compile_ms[b] = performance.now() - t0;
    }

    // each call copies the input in and the features out, as the page would use them
    runners.litert = async (b, x) => {
      const t = new LiteRT.Tensor(x, [b, H, W, C]);
      const outs = await lite[b].run(t);
      t.delete();
      const d = outs[0].toTypedArray().slice();
      for (const o of outs) o.delete();
      return d;
    };

    out.batches = {};
    for (const b of batches) {
      // parity on all the images (inputs[b] starts with them, in order); also warms up
      const calls = Math.max(1, images / b), want = python.subarray(0, calls * b * featureSize);
      const fromTfjs = new Float32Array(want.length), fromLitert = new Float32Array(want.length);
      for (let k = 0; k < calls; k++) {
        fromTfjs.set(await runners.tfjs(b, inputs[b][k]), k * b * featureSize);
        fromLitert.set(await runners.litert(b, inputs[b][k]), k * b * featureSize);
      }
      const row = { tfjs: [], litert: [], ratios: [],
        max_diff_litert_tfjs: maxDiff(fromLitert, fromTfjs),
        max_diff_litert_python: maxDiff(fromLitert, want),
        max_diff_tfjs_python: maxDiff(fromTfjs, want),
        max_diff_litert_native: maxDiff(fromLitert, native.subarray(0, want.length)),
        max_abs_feature: want.reduce((m, v) => Math.max(m, Math.abs(v)), 0) };
      out.batches[b] = row;
    }
    // A B A B: every round times each batch size on both, the order swapped every round
    for (let r = 0; r < rounds; r++) {
      for (const b of batches) {
        const row = out.batches[b];
        const order = r % 2 ? ['litert', 'tfjs'] : ['tfjs', 'litert'];
        const ms = {};
        for (const name of order) ms[name] = await timing(name, b);
        row.tfjs.push(ms.tfjs);
        row.litert.push(ms.litert);
        row.ratios.push(ms.tfjs / ms.litert);
      }
    }
    for (const b of batches) {
      const row = out.batches[b];
      row.tfjs_ms_per_image = median(row.tfjs);
      row.litert_ms_per_image = median(row.litert);
      row.ratio_median = median(row.ratios);
    }
    return out;
  }

  window.__litert = { run };
})();

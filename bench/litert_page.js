// bench/litert.py's page script, added to the built site's own page once it is ready: the
// page's backbone as the page runs it (window.tfjsTransfer.steps.features: web/src/models.js,
// the fused plan of web/src/fused.js; with useFusedPlans(false) layer by layer, the
// unfused model.apply) against the same backbone as a .tflite on LiteRT.js (XNNPACK in wasm),
// on the same preprocessed images, timed alternately in this page.
// window.__litert.run({threads, batches, rounds}) -> JSON.
(() => {
  const here = (p) => new URL(p, location.href).href;
  const median = (v) => { const s = [...v].sort((a, b) => a - b); const k = s.length >> 1; return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2; };
  const IMAGES_PER_TIMING = 64; // images each timing covers (batch 1: 64 calls, batch 32: 2)
  const RUNTIMES = ['fused', 'litert', 'unfused'];

  async function floats(path) { return new Float32Array(await (await fetch(here(path))).arrayBuffer()); }

  function maxDiff(a, b) {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return m;
  }

  const progress = (text) => console.log(`litert bench: ${text} (${(performance.now() / 1000).toFixed(1)} s)`);

  async function run({ threads, batches, rounds }) {
    const T = window.tfjsTransfer, tf = T.tf, backbone = T.steps.backbone();
    const out = { threads, crossOriginIsolated: self.crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency };
    const input = await floats('../input.bin'), python = await floats('../python.bin'), native = await floats('../native.bin');
    const { height: H, width: W, channels: C } = T.manifest.input;
    const imageSize = H * W * C, images = input.length / imageSize, featureSize = python.length / images;
    out.tfjs = { version: tf.version_core, backend: tf.getBackend(), threads: tf.backend().wasm.tfjs.getThreadsCount(),
      multithread: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'), model_load_ms: T.timings.loadMs };

    const slice = (b, start) => {
      const x = new Float32Array(b * imageSize);
      for (let i = 0; i < b; i++) x.set(input.subarray(((start + i) % images) * imageSize, ((start + i) % images + 1) * imageSize), i * imageSize);
      return x;
    };
    const inputs = {};
    for (const b of batches) inputs[b] = Array.from({ length: Math.max(1, IMAGES_PER_TIMING / b) }, (_, k) => slice(b, k * b));
    // each call copies the input in and the features out, as the page uses them
    const page = (fused) => async (b, x) => {
      T.steps.useFusedPlans(fused);
      const t = tf.tensor4d(x, [b, H, W, C]);
      const y = T.steps.features(tf, backbone, t);
      const d = await y.data();
      tf.dispose([t, y]);
      return d;
    };
    const runners = { fused: page(true), unfused: page(false) };
    async function timing(name, b) {
      const xs = inputs[b];
      const start = performance.now();
      for (const x of xs) await runners[name](b, x);
      return (performance.now() - start) / (xs.length * b);
    }
    try {
      // the fused path before LiteRT.js is in the page: does the other runtime's thread pool cost it anything?
      out.fused_alone_ms_per_image = {};
      for (const b of batches) {
        await runners.fused(b, inputs[b][0]);
        out.fused_alone_ms_per_image[b] = await timing('fused', b);
        progress(`fused alone, batch ${b}: ${out.fused_alone_ms_per_image[b].toFixed(2)} ms/image`);
      }

      // LiteRT.js: the threaded wasm build with `threads` XNNPACK threads; threads 0 (not
      // isolated): its single-threaded build
      let t0 = performance.now();
      await LiteRT.loadLiteRt(here('../litert-wasm/'), { threads: threads > 0 });
      out.litert_load_ms = performance.now() - t0;
      const files = performance.getEntriesByType('resource').filter((e) => e.name.includes('/litert-wasm/'));
      // the threaded build's workers fetch its .js again (no-store here; a cached site would not)
      const unique = new Map(files.map((e) => [e.name.split('/').pop(), e.encodedBodySize]));
      out.litert_files = Object.fromEntries(unique);
      out.litert_wasm_bytes = [...unique.values()].reduce((a, v) => a + v, 0);
      out.litert_compile_ms = {};
      const lite = {};
      for (const b of batches) {
        t0 = performance.now();
        lite[b] = await LiteRT.loadAndCompile(here(`../backbone_b${b}.tflite`), { accelerator: 'wasm', cpuOptions: { numThreads: Math.max(1, threads) } });
        out.litert_compile_ms[b] = performance.now() - t0;
        progress(`LiteRT.js compiled batch ${b}`);
      }
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
        const got = Object.fromEntries(RUNTIMES.map((name) => [name, new Float32Array(want.length)]));
        for (let k = 0; k < calls; k++) {
          for (const name of RUNTIMES) got[name].set(await runners[name](b, inputs[b][k]), k * b * featureSize);
        }
        out.batches[b] = { fused: [], litert: [], unfused: [], fused_over_litert: [], unfused_over_litert: [],
          max_diff_litert_fused: maxDiff(got.litert, got.fused),
          max_diff_litert_unfused: maxDiff(got.litert, got.unfused),
          max_diff_fused_unfused: maxDiff(got.fused, got.unfused),
          max_diff_litert_python: maxDiff(got.litert, want),
          max_diff_fused_python: maxDiff(got.fused, want),
          max_diff_unfused_python: maxDiff(got.unfused, want),
          max_diff_litert_native: maxDiff(got.litert, native.subarray(0, want.length)),
          max_abs_feature: want.reduce((m, v) => Math.max(m, Math.abs(v)), 0) };
        progress(`parity, batch ${b}`);
      }
      // A B C, C B A, ...: every round times each batch size on all three, the order reversed
      // every round, so fused and LiteRT.js always run next to each other
      for (let r = 0; r < rounds; r++) {
        for (const b of batches) {
          const row = out.batches[b];
          const ms = {};
          for (const name of (r % 2 ? [...RUNTIMES].reverse() : RUNTIMES)) ms[name] = await timing(name, b);
          for (const name of RUNTIMES) row[name].push(ms[name]);
          row.fused_over_litert.push(ms.fused / ms.litert);
          row.unfused_over_litert.push(ms.unfused / ms.litert);
          progress(`round ${r + 1}, batch ${b}: ${RUNTIMES.map((n) => `${n} ${ms[n].toFixed(2)}`).join(', ')} ms/image`);
        }
      }
      for (const b of batches) {
        const row = out.batches[b];
        for (const name of RUNTIMES) row[`${name}_ms_per_image`] = median(row[name]);
        row.fused_over_litert_median = median(row.fused_over_litert);
        row.unfused_over_litert_median = median(row.unfused_over_litert);
      }
    } finally {
      T.steps.useFusedPlans(true);
    }
    return out;
  }

  window.__litert = { run };
})();

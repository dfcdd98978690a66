// Evaluated in the ready page by bench/load_decode.py (issue 18, task "load"): where the page's
// cold model load and an image's decode spend their time, step by step, and the alternatives'
// figures with their pixels compared byte for byte with the page's path (web/src/data.js).
(() => {
  const T = window.tfjsTransfer;
  const tf = T.tf;
  const m = T.manifest;
  const url = (p) => new URL(p, location.href).href;
  const now = () => performance.now();

  async function fetchArtifacts(path) {
    const t0 = now();
    const res = await fetch(url(path), { cache: 'no-store' });
    const text = await res.text();
    const t1 = now();
    const json = JSON.parse(text);
    const t2 = now();
    const base = url(path).replace(/[^/]*$/, '');
    const specs = [];
    const paths = [];
    for (const group of json.weightsManifest) {
      specs.push(...group.weights);
      paths.push(...group.paths);
    }
    const bufs = await Promise.all(paths.map(async (p) => (await fetch(base + p, { cache: 'no-store' })).arrayBuffer()));
    const t3 = now();
    const bytes = bufs.reduce((n, b) => n + b.byteLength, 0);
    const data = new Uint8Array(bytes);
    let o = 0;
    for (const b of bufs) { data.set(new Uint8Array(b), o); o += b.byteLength; }
    return { json, specs, data: data.buffer, bytes, fetchJsonMs: t1 - t0, parseMs: t2 - t1, fetchWeightsMs: t3 - t2, doneAt: t3 };
  }

  // Every initializer in a Keras topology replaced by Zeros: the loaded weights overwrite them.
  function zeroInit(node) {
    if (Array.isArray(node)) return node.map(zeroInit);
    if (!node || typeof node !== 'object') return node;
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k.endsWith('_initializer') && v && v.class_name ? { class_name: 'Zeros', config: {} } : zeroInit(v);
    }
    return out;
  }

  async function build(a, zeros = false) {
    const t0 = now();
    const model = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: zeros ? zeroInit(a.json.modelTopology) : a.json.modelTopology, weightSpecs: a.specs, weightData: a.data }));
    return { model, ms: now() - t0 };
  }

  // Building the layers models from fetched artifacts, with the topology's initializers
  // (drawn, then overwritten by the weights) vs Zeros, alternated `rounds` times.
  async function buildPaired(rounds) {
    const [ba, ha] = await Promise.all([fetchArtifacts(m.backbone.path), fetchArtifacts(m.head.path)]);
    const res = { headAsIs: [], headZeros: [], backboneAsIs: [], backboneZeros: [] };
    for (let r = 0; r < rounds; r++) {
      for (const zeros of r % 2 ? [true, false] : [false, true]) {
        const h = await build(ha, zeros);
        const b = await build(ba, zeros);
        const sig = [h, b].map((x) => x.model.getWeights().map((w) => { const d = w.dataSync(); return hash(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)); }).join(',')).join(';');
        res.signature = res.signature || sig;
        const same = sig === res.signature;
        res[zeros ? 'headZeros' : 'headAsIs'].push(h.ms);
        res[zeros ? 'backboneZeros' : 'backboneAsIs'].push(b.ms);
        h.model.dispose(); b.model.dispose();
        if (!same) throw new Error('weights differ');
      }
    }
    return res;
  }

  function timed(fn) {
    const t0 = now();
    tf.tidy(() => { fn().dataSync(); });
    return now() - t0;
  }

  // The page's load, step by step (fresh models, weights not in the HTTP cache): fetches of
  // both models in parallel, parse, weights -> backend + layers build, then runs of the
  // backbone (the page's fused plan, models.js features) at batch 1 and `batch`.
  async function loadBreakdown(batch) {
    const { height: H, width: W, channels: C } = m.input;
    const t0 = now();
    const [ba, ha] = await Promise.all([fetchArtifacts(m.backbone.path), fetchArtifacts(m.head.path)]);
    const fetchedMs = now() - t0;
    const bb = await build(ba);
    const hb = await build(ha);
    const backbone = bb.model;
    const head = hb.model;
    const feats = (n) => T.steps.features(tf, backbone, tf.zeros([n, H, W, C]));
    const out = {
      fetchMs: fetchedMs, backboneBytes: ba.bytes, headBytes: ha.bytes,
      backboneFetchJsonMs: ba.fetchJsonMs, backboneParseMs: ba.parseMs, backboneFetchWeightsMs: ba.fetchWeightsMs,
      headFetchJsonMs: ha.fetchJsonMs, headParseMs: ha.parseMs, headFetchWeightsMs: ha.fetchWeightsMs,
      backboneBuildMs: bb.ms, headBuildMs: hb.ms,
    };
    // the first run: kernel set-up (XNNPACK operators created, weights packed) + the fused plan
    out.firstBackbone1Ms = timed(() => feats(1));
    out.secondBackbone1Ms = timed(() => feats(1));
    out.thirdBackbone1Ms = timed(() => feats(1));
    out.firstBackboneBatchMs = timed(() => feats(batch));
    out.secondBackboneBatchMs = timed(() => feats(batch));
    out.firstHeadMs = timed(() => head.apply(tf.zeros([1, ...m.backbone.output_shape]), { training: false }));
    out.secondHeadMs = timed(() => head.apply(tf.zeros([1, ...m.backbone.output_shape]), { training: false }));
    backbone.dispose();
    head.dispose();
    return out;
  }

  // A second copy of the models: the first run at batch `batch` cold (no warm-up), then again.
  async function coldBatch(batch) {
    const { height: H, width: W, channels: C } = m.input;
    const backbone = (await build(await fetchArtifacts(m.backbone.path))).model;
    const feats = (n) => T.steps.features(tf, backbone, tf.zeros([n, H, W, C]));
    const first = timed(() => feats(batch));
    const second = timed(() => feats(batch));
    backbone.dispose();
    return { firstBatchColdMs: first, secondBatchMs: second };
  }

  // ---------- decode ----------

  const OPTS = { imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none' };

  function drawWhite(canvas, bitmap) {
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bitmap, 0, 0);
    return ctx;
  }

  function newCanvas(w, h) {
    if (typeof document === 'undefined') return new OffscreenCanvas(w, h);
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    return c;
  }

  // A canvas of the bitmap's size: a new one, or (reuse) holder.canvas resized to it.
  function canvasFor(bitmap, reuse, holder) {
    if (!reuse) return newCanvas(bitmap.width, bitmap.height);
    const c = holder.canvas = holder.canvas || newCanvas(1, 1);
    if (c.width !== bitmap.width || c.height !== bitmap.height) {
      c.width = bitmap.width;
      c.height = bitmap.height;
    }
    return c;
  }

  async function blobs() {
    const list = (await (await fetch(url(m.images.path || 'images.json'))).json()).images;
    return Promise.all(list.map(async (it) => (await fetch(url(it.path))).blob()));
  }

  function hash(bytes) { // FNV-1a over the bytes: equal pixels give equal hashes
    let h = 0x811c9dc5;
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
    return h >>> 0;
  }

  // Today's path, step by step, on every image: sniff read, createImageBitmap, a new canvas
  // filled white + drawImage, getImageData, rgbaToPixels (float32 copy + tensor), preprocess.
  async function decodeSteps(list, { reuse = false } = {}) {
    const t = { sniff: 0, bitmap: 0, draw: 0, read: 0, pixels: 0, preprocess: 0 };
    const hashes = [];
    const shared = {}; // canvasFor's reused canvas
    const t0 = now();
    for (const blob of list) {
      let a = now();
      await blob.slice(0, 65536).arrayBuffer();
      let b = now(); t.sniff += b - a; a = b;
      const bitmap = await createImageBitmap(blob, OPTS);
      b = now(); t.bitmap += b - a; a = b;
      const canvas = canvasFor(bitmap, reuse, shared);
      const ctx = drawWhite(canvas, bitmap);
      bitmap.close();
      b = now(); t.draw += b - a; a = b;
      const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      b = now(); t.read += b - a; a = b;
      hashes.push(hash(img.data));
      a = now();
      const px = new Float32Array(img.width * img.height * 3);
      for (let i = 0, j = 0; j < px.length; i += 4, j += 3) { px[j] = img.data[i]; px[j + 1] = img.data[i + 1]; px[j + 2] = img.data[i + 2]; }
      if (tf) {
        const x = tf.tensor3d(px, [img.height, img.width, 3], 'float32');
        b = now(); t.pixels += b - a; a = b;
        const y = T.steps.preprocess(tf, x, m);
        y.dataSync();
        x.dispose(); y.dispose();
        b = now(); t.preprocess += b - a;
      } else {
        b = now(); t.pixels += b - a;
      }
    }
    const total = now() - t0;
    const n = list.length;
    const perImage = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v / n]));
    return { n, totalMsPerImage: total / n, perImage, hashes };
  }

  // createImageBitmap for `k` images at once (decodes overlap), then draw + read each.
  async function decodeConcurrent(list, k) {
    const hashes = [];
    const t0 = now();
    for (let s = 0; s < list.length; s += k) {
      const bitmaps = await Promise.all(list.slice(s, s + k).map((b) => createImageBitmap(b, OPTS)));
      for (const bitmap of bitmaps) {
        const canvas = newCanvas(bitmap.width, bitmap.height);
        const img = drawWhite(canvas, bitmap).getImageData(0, 0, canvas.width, canvas.height);
        bitmap.close();
        hashes.push(hash(img.data));
      }
    }
    return { msPerImage: (now() - t0) / list.length, hashes };
  }

  // WebCodecs ImageDecoder -> VideoFrame drawn onto the white canvas.
  async function decodeWebCodecs(list) {
    if (typeof ImageDecoder === 'undefined') return { unavailable: true };
    const hashes = [];
    const t0 = now();
    for (const blob of list) {
      const dec = new ImageDecoder({ data: await blob.arrayBuffer(), type: blob.type || 'image/jpeg',
        colorSpaceConversion: 'none', preferAnimation: false });
      const { image } = await dec.decode();
      const canvas = newCanvas(image.displayWidth, image.displayHeight);
      const img = drawWhite(canvas, image).getImageData(0, 0, canvas.width, canvas.height);
      image.close(); dec.close();
      hashes.push(hash(img.data));
    }
    return { msPerImage: (now() - t0) / list.length, hashes };
  }

  function sameAs(ref, hashes) {
    if (!hashes) return null;
    let diff = 0;
    ref.forEach((h, i) => { if (hashes[i] !== h) diff++; });
    return diff;
  }

  // The same steps in a worker (OffscreenCanvas), without tf (pixels only).
  function inWorker(list, reuse) {
    const src = `const tf = null, T = null, m = null;
      ${newCanvas.toString()} ${canvasFor.toString()} ${drawWhite.toString()} ${hash.toString()} const now = () => performance.now();
      const OPTS = ${JSON.stringify(OPTS)};
      ${decodeSteps.toString()}
      onmessage = async (e) => postMessage(await decodeSteps(e.data.list, { reuse: e.data.reuse }));`;
    const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
    return new Promise((resolve, reject) => {
      w.onmessage = (e) => { w.terminate(); resolve(e.data); };
      w.onerror = (e) => { w.terminate(); reject(new Error(e.message)); };
      w.postMessage({ list, reuse });
    });
  }

  // From the URL to RGBA bytes, the page's way (response.blob(), a read of the blob's head to
  // sniff it, createImageBitmap(blob)) vs the bytes read once (response.arrayBuffer(), sniffed
  // in memory, createImageBitmap of a Blob made from them); serial and `k` at once, alternated.
  async function viaBlob(u) {
    const blob = await (await fetch(u)).blob();
    await blob.slice(0, 65536).arrayBuffer();
    return createImageBitmap(blob, OPTS);
  }
  async function viaBytes(u) {
    const res = await fetch(u);
    const bytes = await res.arrayBuffer();
    new Uint8Array(bytes, 0, Math.min(bytes.byteLength, 65536)); // sniffed here
    return createImageBitmap(new Blob([bytes], { type: res.headers.get('content-type') || '' }), OPTS);
  }
  async function decodePaths(rounds, k) {
    const list = (await (await fetch(url(m.images.path || 'images.json'))).json()).images.map((it) => url(it.path));
    const res = { blob: [], bytes: [], blobK: [], bytesK: [], bytesReusedK: [] };
    const hashes = {};
    const shared = {}; // canvasFor's reused canvas
    const run = async (name, fn, conc, reuse = false) => {
      const hs = [];
      const t0 = now();
      for (let s = 0; s < list.length; s += conc) {
        const bitmaps = await Promise.all(list.slice(s, s + conc).map(fn));
        for (const bitmap of bitmaps) {
          const canvas = canvasFor(bitmap, reuse, shared);
          hs.push(hash(drawWhite(canvas, bitmap).getImageData(0, 0, canvas.width, canvas.height).data));
          bitmap.close();
        }
      }
      res[name].push((now() - t0) / list.length);
      hashes[name] = hs;
    };
    for (let r = 0; r < rounds; r++) {
      const order = [['blob', viaBlob, 1], ['bytes', viaBytes, 1], ['blobK', viaBlob, k], ['bytesK', viaBytes, k],
        ['bytesReusedK', viaBytes, k, true]];
      for (const [name, fn, conc, reuse] of r % 2 ? order.reverse() : order) await run(name, fn, conc, reuse);
    }
    res.bytesDiffering = sameAs(hashes.blob, hashes.bytes);
    res.bytesReusedDiffering = sameAs(hashes.blob, hashes.bytesReusedK);
    return res;
  }

  async function decodeBreakdown() {
    const list = await blobs();
    await decodeSteps(list.slice(0, 5)); // code warm, not timed
    const base = await decodeSteps(list);
    const reused = await decodeSteps(list, { reuse: true });
    const base2 = await decodeSteps(list);
    const reused2 = await decodeSteps(list, { reuse: true });
    const conc4 = await decodeConcurrent(list, 4);
    const conc1 = await decodeConcurrent(list, 1);
    const conc32 = await decodeConcurrent(list, 32);
    const wc = await decodeWebCodecs(list);
    const worker = await inWorker(list, false);
    const workerReused = await inWorker(list, true);
    const strip = (r) => { const { hashes, ...rest } = r; return rest; };
    return {
      today: [strip(base), strip(base2)], reused: [strip(reused), strip(reused2)],
      reusedDiffering: sameAs(base.hashes, reused.hashes),
      concurrent1: strip(conc1), concurrent4: { ...strip(conc4), differing: sameAs(base.hashes, conc4.hashes) },
      concurrent32: { ...strip(conc32), differing: sameAs(base.hashes, conc32.hashes) },
      webcodecs: { ...strip(wc), differing: sameAs(base.hashes, wc.hashes) },
      worker: { ...strip(worker), differing: sameAs(base.hashes, worker.hashes) },
      workerReused: { ...strip(workerReused), differing: sameAs(base.hashes, workerReused.hashes) },
    };
  }

  window.__loadDecode = { buildPaired, decodePaths, loadBreakdown, coldBatch, decodeBreakdown };
})();

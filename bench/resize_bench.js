// Issue 18's resize lever, measured inside the page: bench/resize.py evaluates this file in
// two pages of one browser, the page as shipped (its wasm ResizeBilinear, web/src/wasm/resize.js)
// and ?tfjs=resize (TF.js' own), and alternates between them. Built on the page's tf,
// manifest and preprocessing (window.tfjsTransfer), like bench/page_bench.js.
(() => {
  const T = window.tfjsTransfer, tf = T.tf, m = T.manifest;
  const rz = m.preprocessing.resize || {};
  const size = [m.input.height, m.input.width];
  const resize = (x) => tf.image.resizeBilinear(x, size, Boolean(rz.align_corners), Boolean(rz.half_pixel_centers));
  const S = { logos: [], photo: null };
  // FNV-1a over the float32 bits: equal digests, equal values to the bit
  const digest = (values) => {
    const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
    let h = 0x811c9dc5;
    for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193);
    return h >>> 0;
  };
  // ms per call over `reps` passes of `count` calls: the median pass and the fastest (on a
  // shared, loaded machine the fastest pass is the closest to the work itself)
  const perCall = (fn, count, reps) => {
    fn(0); // warm-up: kernel set-up is not timed
    const passes = [];
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      for (let i = 0; i < count; i++) fn(i);
      passes.push((performance.now() - t) / count);
    }
    passes.sort((a, b) => a - b);
    return { median: passes[Math.floor(passes.length / 2)], min: passes[0] };
  };
  window.__resizeBench = {
    async setup(urls) {
      for (const u of urls) {
        const bitmap = await createImageBitmap(await (await fetch(u)).blob());
        const pixels = tf.browser.fromPixels(bitmap, 3); // int32, as the page decodes
        bitmap.close();
        S.logos.push({ pixels, floats: tf.cast(pixels, 'float32') });
      }
      // a 1000x800 photo's worth of pixels (the values do not change the work)
      const pixels = tf.randomUniform([800, 1000, 3], 0, 256, 'int32', 18);
      S.photo = { pixels, floats: tf.cast(pixels, 'float32') };
      return { logos: S.logos.length, logoShape: S.logos[0].pixels.shape, photoShape: S.photo.pixels.shape };
    },
    digests() {
      const one = (x) => { const y = resize(x); const d = digest(y.dataSync()); y.dispose(); return d; };
      return { logos: S.logos.map((l) => one(l.floats)), logosInt: S.logos.map((l) => one(l.pixels)),
        photo: one(S.photo.floats) };
    },
    // ms per call: the resize kernel alone (float32 input, as preprocess.js feeds it) and the
    // page's whole preprocess (int32 pixels -> cast, resize, (x - mean) * scale + offset)
    time(reps) {
      const n = S.logos.length;
      return {
        logoResizeMs: perCall((i) => resize(S.logos[i].floats).dispose(), n, reps),
        logoPreprocessMs: perCall((i) => T.steps.preprocess(tf, S.logos[i].pixels, m).dispose(), n, reps),
        photoResizeMs: perCall(() => resize(S.photo.floats).dispose(), 5, reps),
        photoPreprocessMs: perCall(() => T.steps.preprocess(tf, S.photo.pixels, m).dispose(), 5, reps),
      };
    },
  };
  return true;
})();

// Bilinear resize on the wasm backend (source in resize.wat), bit-exact with
// tfjs-backend-wasm 4.22's ResizeBilinear (XNNPACK's f32 resize: coordinates and weights in
// float32, computed here with Math.fround in XNNPACK's order; the blend in resize.wat).
//
// XNNPACK blends every output pixel from its four source pixels; this makes each source
// row's horizontal blend once (output rows that share a source row reuse it) and blends
// rows vertically four floats at a time. It also reads int32 images directly, where TF.js
// first casts them to float32. registerResizeNormalise() adds preprocess.js' fused step: the
// same resize with the normalisation done on each output row while it is in cache.
// TF.js' cpu backend computes the weights in float64, so its results differ from the wasm
// backend's (and these kernels') in the low bits.

import { replaceKernel } from './replace.js';
import { kernelExports, memoryOf, offsetOf, supported } from './memory.js';
import { RESIZE_NORMALISE } from '../preprocess.js';

const f32 = Math.fround;

/**
 * XNNPACK's source coordinates along one axis (xnn_indirection_init_resize_bilinear2d_hwc_f32).
 * @returns {{lo: Int32Array, hi: Int32Array, alpha: Float32Array}}
 */
export function axisWeights(inSize, outSize, alignCorners, halfPixelCenters) {
  const adjust = alignCorners && outSize !== 1 ? 1 : 0;
  const scale = f32((inSize - adjust) / (outSize - adjust));
  const last = inSize - 1;
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const alpha = new Float32Array(outSize);
  const legacy = alignCorners || !halfPixelCenters;
  const offset = f32(f32(0.5 * scale) - 0.5);
  for (let o = 0; o < outSize; o++) {
    let v = f32(o * scale);
    if (!legacy) v = Math.min(Math.max(f32(v + offset), 0), last);
    lo[o] = Math.trunc(v);
    hi[o] = Math.min(lo[o] + 1, last);
    alpha[o] = f32(v - lo[o]);
  }
  return { lo, hi, alpha };
}

/**
 * Replaces the wasm ResizeBilinear kernel for float32 and int32 images (see above).
 * @param {{shared: Uint8Array, local: Uint8Array}} binaries resize.wat compiled
 * @returns {boolean} whether the kernel is in place (false when wasm is not registered)
 */
export function patchWasmResizeBilinear(tf, binaries) {
  if (!supported(binaries)) return false;
  return replaceKernel(tf, 'ResizeBilinear', (original) => ({ inputs, backend, attrs }) => {
    const { images } = inputs;
    if (images.dtype !== 'float32' && images.dtype !== 'int32') {
      return original.kernelFunc({ inputs, backend, attrs });
    }
    return resized(backend, images, attrs.size, (out, scratch) => resize(backend, binaries, images, out, scratch, attrs));
  });
}

/** The output tensor and its scratch buffer for `images` resized to attrs.size; calls run(out, scratch). */
function resized(backend, images, size, run) {
  const [batch, inH, inW, channels] = images.shape;
  const [outH, outW] = size;
  const out = backend.makeOutput([batch, outH, outW, channels], 'float32');
  if (batch * inH * inW * channels === 0 || outH * outW === 0) return out;
  // two row buffers (4 floats of slack each for hrow's last store), then the column table
  const scratch = backend.makeOutput([2 * (outW * channels + 4) + 3 * outW], 'float32');
  try {
    run(out, scratch);
  } finally {
    backend.disposeData(scratch.dataId);
  }
  return out;
}

/**
 * Registers preprocess.js' fused step on the wasm backend: kernel RESIZE_NORMALISE, inputs
 * {images} ([batch, h, w, c] int32 or float32), attrs {size, alignCorners, halfPixelCenters,
 * mean, scale, offset} (one mean for every channel) -> float32
 * ((resizeBilinear(images) - mean) * scale) + offset, bit-exact with those TF.js ops on wasm.
 * @returns {boolean} whether it is registered
 */
export function registerResizeNormalise(tf, binaries) {
  if (!supported(binaries)) return false;
  if (tf.getKernel(RESIZE_NORMALISE, 'wasm')) return true;
  tf.registerKernel({
    kernelName: RESIZE_NORMALISE,
    backendName: 'wasm',
    kernelFunc: ({ inputs: { images }, backend, attrs }) => resized(backend, images, attrs.size,
      (out, scratch) => resize(backend, binaries, images, out, scratch, attrs, attrs)),
  });
  return true;
}

function resize(backend, binaries, images, out, scratch, { alignCorners, halfPixelCenters, size }, normalise) {
  const [batch, inH, inW, channels] = images.shape;
  const [outH, outW] = size;
  const { hrow, vrow, vrowNormalise } = kernelExports(binaries, backend);
  const blend = normalise
    ? (t, u, ay, dst, n) => vrowNormalise(t, u, ay, dst, n, normalise.mean, normalise.scale, normalise.offset)
    : vrow;
  const rowFloats = outW * channels;
  const rows = offsetOf(backend, scratch);
  const buffers = [rows, rows + 4 * (rowFloats + 4)];
  const table = rows + 8 * (rowFloats + 4);
  const cols = axisWeights(inW, outW, alignCorners, halfPixelCenters);
  const memory = memoryOf(backend.wasm).buffer;
  const ints = new Int32Array(memory, table, 3 * outW);
  const floats = new Float32Array(memory, table, 3 * outW);
  const pixelBytes = 4 * channels;
  for (let x = 0; x < outW; x++) {
    ints[3 * x] = cols.lo[x] * pixelBytes;
    ints[3 * x + 1] = cols.hi[x] * pixelBytes;
    floats[3 * x + 2] = cols.alpha[x];
  }
  const { lo, hi, alpha } = axisWeights(inH, outH, alignCorners, halfPixelCenters);
  const isInt = images.dtype === 'int32' ? 1 : 0;
  const simd = channels === 3 || channels === 4;
  const src = offsetOf(backend, images);
  const dst = offsetOf(backend, out);
  const imageBytes = inH * inW * pixelBytes;
  for (let b = 0; b < batch; b++) {
    const held = [-1, -1]; // the source row each buffer holds
    const fill = (i, row) => {
      // a 3-channel pixel read as 16 bytes overruns the last row of the tensor by 4
      const safe = simd && !(channels === 3 && b === batch - 1 && row === inH - 1);
      hrow(src + b * imageBytes + row * inW * pixelBytes, isInt, safe ? 1 : 0, buffers[i], outW, channels, table);
      held[i] = row;
    };
    for (let y = 0; y < outH; y++) {
      let t = held.indexOf(lo[y]);
      if (t < 0) fill(t = held[0] === hi[y] ? 1 : 0, lo[y]);
      let u = held.indexOf(hi[y]);
      if (u < 0) fill(u = 1 - t, hi[y]);
      blend(buffers[t], buffers[u], alpha[y], dst + 4 * (b * outH + y) * rowFloats, rowFloats);
    }
  }
}

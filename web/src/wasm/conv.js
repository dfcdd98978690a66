// A MobileNet's convolutions on the wasm backend: its pointwise (1x1) and 3x3 depthwise layers
// and its first 3x3 convolution, with their bias and activation (source in conv.wat).
//
// Extracting features is almost all these two. The XNNPACK inside tfjs-backend-wasm 4.22 runs
// them well under what plain SIMD loops with fused multiply-adds (relaxed SIMD) do on a
// MobileNet's shapes, worst on the wide, shallow early layers (112x112x8); make bench shows
// the backbone with and without them (?tfjs=conv). This replaces the wasm FusedConv2D kernel
// for 1x1 convolutions with stride 1 and for 3x3 ones with equal strides, a multiple of 8
// filters each, and FusedDepthwiseConv2D for 3x3 ones with a multiplier of 1 and a multiple of
// 4 channels: float32, NHWC, dilation 1, a bias, linear / relu / relu6. Everything else keeps
// TF.js' kernel. Output rows are split over pool.js' threads. Each output is its sum in a fixed
// order, rounded once per multiply-add where the machine fuses them, the bias added last:
// results agree with the cpu backend's to float32 rounding (web/test/conv.test.mjs), and a
// backbone's features equal Keras's here (tests/browser/test_page_fused.py).

import { kernelExports, memoryOf, offsetOf, supported } from './memory.js';
import { FUNCTIONS, poolOf } from './pool.js';
import { replaceKernel } from './replace.js';

/** Convolutions run here so far, by conv.wat function (tests check which path features take). */
export const counts = { pointwise: 0, depthwise: 0, conv3x3: 0 };

// activation -> [lo, hi] the kernels clamp to
const BOUNDS = { linear: [-Infinity, Infinity], relu: [0, Infinity], relu6: [0, 6] };

// Chunks of output rows a convolution is cut into, taken by pool.js' threads as they come free.
const CHUNKS = 8;
// Outputs from which a convolution is split (pool.js' MIN_SPLIT is for the products and Adam):
// one image's 14x14 and 28x28 layers take both threads too, where a prediction spends most of its time.
const CONV_MIN_SPLIT = 8192;

const ones = (v) => (Array.isArray(v) ? v : [v]).every((d) => d === 1);
const size = (shape) => shape.reduce((a, b) => a * b, 1);
const squareStride = (s) => (Array.isArray(s) ? s[0] === s[1] && s[0] > 0 : s > 0);
/** pool.js' index of a conv.wat function. */
const job = (name) => FUNCTIONS.findIndex(([module, fn]) => module === 'conv' && fn === name);

/** The [lo, hi] a fused convolution clamps to, or null when these kernels do not take it. */
function boundsOf({ x, filter, bias, preluActivationWeights }, attrs) {
  const bounds = BOUNDS[attrs.activation || 'linear'];
  if (!bounds || preluActivationWeights || !bias || attrs.dataFormat !== 'NHWC' || !ones(attrs.dilations)) return null;
  if ([x, filter, bias].some((t) => t.dtype !== 'float32') || x.shape.length !== 4) return null;
  return bounds;
}

/** Which conv.wat function takes a FusedConv2D, or null: a 1x1 filter with stride 1 and no
 * padding (pointwise) or a 3x3 one (conv3x3), filters a multiple of 8. */
export function convFunction(inputs, attrs) {
  const [fh, fw, k, n] = inputs.filter.shape;
  if (!boundsOf(inputs, attrs) || k !== inputs.x.shape[3] || k === 0 || n === 0 || n % 8 !== 0
    || size(inputs.bias.shape) !== n) return null;
  if (fh === 1 && fw === 1 && ones(attrs.strides) && ['same', 'valid', 0].includes(attrs.pad)) return 'pointwise';
  if (fh === 3 && fw === 3 && squareStride(attrs.strides)) return 'conv3x3';
  return null;
}

/** Whether conv.wat's depthwise takes a FusedDepthwiseConv2D: 3x3, multiplier 1, channels a multiple of 4. */
export function takesDepthwise(inputs, attrs) {
  const [fh, fw, c, mult] = inputs.filter.shape;
  return !!boundsOf(inputs, attrs) && fh === 3 && fw === 3 && mult === 1 && c === inputs.x.shape[3]
    && c > 0 && c % 4 === 0 && squareStride(attrs.strides) && size(inputs.bias.shape) === c;
}

/**
 * Replaces the wasm FusedConv2D and FusedDepthwiseConv2D kernels (see above).
 * @param {object} tf the TF.js namespace
 * @param {{shared: Uint8Array, local: Uint8Array}} binaries conv.wat compiled
 * @returns {boolean} whether the kernels are in place (false without relaxed SIMD here)
 */
export function patchWasmConvolutions(tf, binaries) {
  if (!binaries || !supported(binaries)) return false;
  const conv = replaceKernel(tf, 'FusedConv2D', (original) => (args) => {
    const name = convFunction(args.inputs, args.attrs);
    if (name === 'pointwise') return pointwise(binaries, args);
    return name ? windowed(tf, binaries, name, args) : original.kernelFunc(args);
  });
  const depthwise = replaceKernel(tf, 'FusedDepthwiseConv2D', (original) => (args) =>
    (takesDepthwise(args.inputs, args.attrs) ? windowed(tf, binaries, 'depthwise', args) : original.kernelFunc(args)));
  return conv && depthwise;
}

/** A 1x1 convolution: the product of the [batch x height x width, k] input by the [k, n] filter. */
function pointwise(binaries, { inputs, backend, attrs }) {
  const { x, filter, bias } = inputs;
  const [k, n] = filter.shape.slice(2);
  const out = backend.makeOutput([...x.shape.slice(0, 3), n], 'float32');
  const m = size(x.shape.slice(0, 3));
  const [lo, hi] = boundsOf(inputs, attrs);
  const [a, w, b, o] = [x, filter, bias, out].map((t) => offsetOf(backend, t));
  counts.pointwise += 1;
  if (m > 0) {
    split(kernelExports(binaries, backend).pointwise, poolOf(memoryOf(backend.wasm)), job('pointwise'), m, m * n,
      (r0, r1) => [a + 4 * r0 * k, w, b, o + 4 * r0 * n, r1 - r0, k, n, lo, hi], 6);
  }
  return out;
}

/** A 3x3 convolution, depthwise or not, by conv.wat's function `name`, its output rows split. */
function windowed(tf, binaries, name, { inputs, backend, attrs }) {
  const { x, filter, bias } = inputs;
  const depthwise = name === 'depthwise';
  const info = tf.backend_util.computeConv2DInfo(x.shape, filter.shape, attrs.strides, 1, attrs.pad,
    attrs.dimRoundingMode, depthwise);
  const out = backend.makeOutput(info.outShape, 'float32');
  const [lo, hi] = boundsOf(inputs, attrs);
  const [batch, h, w, c] = x.shape;
  const { outHeight, outWidth, outChannels, strideHeight, padInfo } = info;
  const shape = depthwise ? [h, w, c] : [h, w, c, outChannels];
  const at = [x, filter, bias, out].map((t) => offsetOf(backend, t));
  counts[name] += 1;
  const rows = batch * outHeight;
  if (rows > 0 && outWidth > 0) {
    split(kernelExports(binaries, backend)[name], poolOf(memoryOf(backend.wasm)), job(name), rows,
      size(info.outShape), (r0, r1) => [...at, ...shape, outHeight, outWidth, strideHeight, padInfo.top,
        padInfo.left, lo, hi, r0, r1], 1);
  }
  return out;
}

/**
 * Runs `kernel` over `rows` output rows: argsOf(r0, r1) gives its arguments for rows [r0, r1).
 * With a pool and enough outputs (`values`), CHUNKS chunks of a multiple of `align` rows each
 * (the last takes the rest), taken by pool.js' threads (as its function `fn`); else one call.
 */
export function split(kernel, pool, fn, rows, values, argsOf, align, chunks = CHUNKS) {
  const per = Math.floor(rows / chunks / align) * align;
  if (!pool || values < CONV_MIN_SPLIT || per === 0) {
    kernel(...argsOf(0, rows));
    return;
  }
  const first = argsOf(0, per);
  const step = argsOf(per, 2 * per).map((v, i) => (v === first[i] ? 0 : v - first[i])); // (lo, hi may be infinite)
  pool.run(fn, kernel, first, step, argsOf(per * (chunks - 1), rows), chunks);
}

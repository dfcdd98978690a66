// Fast transposed matrix products on the wasm backend, for training in the page.
//
// tfjs-backend-wasm 4.22 hands a BatchMatMul to XNNPACK only when neither operand is
// transposed; otherwise it runs a naive blocked loop. Back-propagation through a dense
// layer asks for exactly those products (kernel gradient x^T @ dy, input gradient
// dy @ w^T), so training the default head (flatten 12544 -> dense 100) spent most of its
// time there, far more than an explicit transpose followed by the XNNPACK product costs.
// This module re-registers the wasm BatchMatMul kernel so transposed operands are
// transposed first (a copy, freed at once) and the product always takes the XNNPACK path.
// Results are the same products; only the summation order inside XNNPACK differs (tested
// against the cpu backend).
//
// XNNPACK also packs the right operand into its own layout whenever it meets a new one
// (it caches by tensor). At prediction the weights stay, so that happens once; in training
// they change every step, and packing the 12544x100 kernel costs more than the product
// itself. So under a gradient tape, x @ w with few rows in x and a wide w is computed as
// (w^T @ x^T)^T: the small x is what gets packed.
// Validation between epochs has no tape but the same fresh weights: train.js runs it
// inside withoutPacking() (as evaluation.js runs a head's held-out batches), where dense
// layers' fused product-bias-activation kernel (_FusedMatMul, used without a tape) is also
// split into that product, the bias and the activation, so validation does not pack the
// kernel again each epoch either.
// Given sparse.wat, the two training products whose left operand is the (mostly zero)
// batch of features, x @ w and x^T @ dy, skip its zeros instead (sparse.js), and so does
// one image's prediction through the head, plain or fused (oneRowForward).

import { BACKEND, replaceKernel } from './replace.js';
import { sparseProduct } from './sparse.js';

const KERNEL = 'BatchMatMul';
let unpacked = 0;

/**
 * Runs fn (synchronous) with its products of few rows kept off XNNPACK's packed weights (see
 * above): for training, whose weights change every step, and for products run a few times
 * on weights just made (the evaluation after a Train), where packing costs more than they do.
 */
export function withoutPacking(fn) {
  unpacked += 1;
  try {
    return fn();
  } finally {
    unpacked -= 1;
  }
}

/** True when XNNPACK would take a product with these shapes once nothing is transposed. */
function singleBatch(shape) {
  return shape.slice(0, -2).reduce((a, b) => a * b, 1) === 1;
}

function swapLastTwo(transpose, x, backend) {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } });
}

/** A dense layer's forward product during training: new weights each step (see above). */
function trainingForward(tf, a, b) {
  if (!(unpacked > 0 || tf.engine().state.gradientDepth > 0)) return false;
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  return k * n >= 65536 && 2 * m <= n;
}

/**
 * One image's prediction through a dense layer: one row of features against weights that
 * stay. XNNPACK reads all of its packed weights (the default head's 5 MB) and wakes its
 * pool's thread for it; over mostly-zero features the sparse product reads only the weight
 * rows the nonzeros pick (about 15% of them), on the calling thread. From a few rows on,
 * XNNPACK's one pass over the weights for all of them is the faster (measured in the page:
 * README, Performance).
 */
function oneRowForward(a, b) {
  const [m, k] = a.shape.slice(-2);
  return m === 1 && k * b.shape[b.shape.length - 1] >= 65536;
}

/** A dense layer's kernel gradient x^T @ dy: a wide output from a few rows. */
function kernelGradient(a, b) {
  const k = a.shape[a.shape.length - 1];
  const n = b.shape[b.shape.length - 1];
  return k * n >= 65536;
}

/**
 * Replaces the wasm BatchMatMul kernel with one that transposes operands explicitly.
 * Safe to call more than once and before or after the wasm backend started; a no-op
 * when the wasm kernels are not registered.
 * @param {{shared: Uint8Array, local: Uint8Array}|null} sparseBinaries sparse.wat compiled
 *   (null: every product on XNNPACK)
 * @returns {boolean} whether the patched kernel is in place
 */
export function patchWasmMatMul(tf, sparseBinaries = null) {
  const sparse = sparseProduct(sparseBinaries);
  if (!tf.getKernel('Transpose', BACKEND) || !replaceKernel(tf, KERNEL, batchMatMul(tf, sparse))) return false;
  replaceKernel(tf, '_FusedMatMul', fusedMatMul(tf, sparse));
  return true;
}

/** BatchMatMul with every single-batch product on XNNPACK's path (see above), or sparse.js'. */
function batchMatMul(tf, sparse) {
  return (original) => ({ inputs, backend, attrs }) => {
    const transpose = tf.getKernel('Transpose', BACKEND); // transpose.js' when installed
    const { a, b } = inputs;
    const { transposeA, transposeB } = attrs;
    if (!singleBatch(a.shape) || !singleBatch(b.shape)) return original.kernelFunc({ inputs, backend, attrs });
    if (sparse && !transposeB && (transposeA ? kernelGradient(a, b) : trainingForward(tf, a, b) || oneRowForward(a, b))) {
      const out = sparse(backend, a, b, transposeA);
      if (out) return out;
    }
    if (!(transposeA || transposeB)) {
      if (!trainingForward(tf, a, b)) return original.kernelFunc({ inputs, backend, attrs });
      // (b^T @ a^T)^T
      const bT = swapLastTwo(transpose, b, backend);
      const aT = swapLastTwo(transpose, a, backend);
      let yT = null;
      try {
        yT = original.kernelFunc({ inputs: { a: bT, b: aT }, backend, attrs });
        return swapLastTwo(transpose, yT, backend);
      } finally {
        [bT, aT, yT].forEach((t) => t && backend.disposeData(t.dataId));
      }
    }
    const copies = [];
    const a2 = transposeA ? swapLastTwo(transpose, a, backend) : a;
    if (transposeA) copies.push(a2);
    const b2 = transposeB ? swapLastTwo(transpose, b, backend) : b;
    if (transposeB) copies.push(b2);
    try {
      return original.kernelFunc({ inputs: { a: a2, b: b2 }, backend,
        attrs: { ...attrs, transposeA: false, transposeB: false } });
    } finally {
      copies.forEach((t) => backend.disposeData(t.dataId));
    }
  };
}

// _FusedMatMul's activations, as the wasm kernels that apply them on their own
const ACTIVATIONS = {
  linear: null,
  relu: ['Relu', () => ({})],
  relu6: ['Relu6', () => ({})],
  sigmoid: ['Sigmoid', () => ({})],
  elu: ['Elu', () => ({})],
  leakyrelu: ['LeakyRelu', (attrs) => ({ alpha: attrs.leakyreluAlpha })],
  prelu: ['Prelu', () => ({})],
};

/**
 * _FusedMatMul that, while weights change or for one image over sparse features, runs as
 * product (above) + bias + activation.
 */
function fusedMatMul(tf, sparse) {
  return (original) => ({ inputs, backend, attrs }) => {
    const { a, b, bias, preluActivationWeights } = inputs;
    const { transposeA, transposeB, activation = 'linear' } = attrs;
    if (transposeA || transposeB || !(activation in ACTIVATIONS) || !singleBatch(a.shape) || !singleBatch(b.shape)) {
      return original.kernelFunc({ inputs, backend, attrs });
    }
    const run = (name, kernelInputs, kernelAttrs = {}) => tf.getKernel(name, BACKEND)
      .kernelFunc({ inputs: kernelInputs, backend, attrs: kernelAttrs });
    let y;
    if (unpacked > 0 && trainingForward(tf, a, b)) {
      y = run(KERNEL, { a, b }, { transposeA: false, transposeB: false });
    } else {
      y = sparse && oneRowForward(a, b) ? sparse(backend, a, b, false) : null;
      if (!y) return original.kernelFunc({ inputs, backend, attrs }); // XNNPACK, bias and activation inside
    }
    const then = (next) => {
      const out = next(y);
      backend.disposeData(y.dataId);
      y = out;
    };
    if (bias) then((x) => run('Add', { a: x, b: bias }));
    const step = ACTIVATIONS[activation];
    if (step) {
      const [name, attrsOf] = step;
      then((x) => run(name, name === 'Prelu' ? { x, alpha: preluActivationWeights } : { x }, attrsOf(attrs)));
    }
    return y;
  };
}

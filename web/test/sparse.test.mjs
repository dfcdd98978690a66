// web/src/wasm/sparse.js on the wasm backend: with sparse.wat in place, a dense layer's
// training products over mostly-zero features (forward x @ w under a tape, kernel gradient
// x^T @ dy) skip the zeros and give the cpu backend's values; a batch with few zeros
// still gets XNNPACK's product; prediction (no tape) takes the sparse path for one image
// only, plain or fused with its bias and activation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { taped } from './taped.mjs';
import { patchWasmMatMul } from '../src/wasm/matmul.js';
import { patchWasmTranspose } from '../src/wasm/transpose.js';
import { counts, sparseProduct } from '../src/wasm/sparse.js';
import { kernelExports, offsetOf } from '../src/wasm/memory.js';
import { compileKernels } from '../tools/wat.mjs';

const maxDiff = (p, q) => p.reduce((acc, v, i) => Math.max(acc, Math.abs(v - q[i])), 0);
const maxAbs = (p) => p.reduce((acc, v) => Math.max(acc, Math.abs(v)), 0);

/** [rows, cols] features as a ReLU6 gives them: `zeros` of them exactly 0 (seeded). */
function features(rows, cols, zeros, seed) {
  return tf.tidy(() => {
    const u = tf.randomUniform([rows, cols], 0, 1, 'float32', seed);
    return tf.mul(tf.cast(tf.greaterEqual(u, zeros), 'float32'), tf.randomUniform([rows, cols], 0, 6, 'float32', seed + 1));
  });
}

// [rows, k, n, fraction of zeros]: the default head's shape, an n that is no multiple of 4,
// and a batch with too few zeros (XNNPACK's path)
const CASES = [[32, 12544, 100, 0.85], [7, 20000, 10, 0.9], [26, 12544, 100, 0.3]];

await tf.setBackend('cpu');
const inputs = CASES.map(([m, k, n, zeros], i) => ({ x: features(m, k, zeros, 10 * i + 1),
  w: tf.randomNormal([k, n], 0, 0.05, 'float32', 10 * i + 3) }));
const expected = inputs.map(({ x, w }) => taped(x, w));

await tf.setBackend('wasm');
await tf.ready();
const binaries = await compileKernels();
patchWasmTranspose(tf, binaries.transpose);
const patched = patchWasmMatMul(tf, binaries.sparse);
const tensorsBefore = tf.memory().numTensors;

test('the sparse products are in place', () => {
  assert.equal(patched, true);
  assert.equal(typeof sparseProduct(binaries.sparse), 'function');
  assert.equal(sparseProduct(null), null);
});

test('forward values and kernel gradient under a tape match the cpu backend, zeros or not', () => {
  CASES.forEach(([m, k, n, zeros], i) => {
    const got = taped(inputs[i].x, inputs[i].w);
    const c = { m, k, n, zeros, forward: maxDiff(got.y, expected[i].y), forwardMax: maxAbs(expected[i].y),
      grad: maxDiff(got.grad, expected[i].grad), gradMax: maxAbs(expected[i].grad) };
    // float32 sums of up to 20000 products, in another order than the cpu backend's
    assert.ok(c.forward < 1e-4 * c.forwardMax, JSON.stringify(c));
    assert.ok(c.grad < 1e-4 * c.gradMax, JSON.stringify(c));
    assert.equal(got.grad.length, k * n);
  });
});

test('the kernel gradient skips exactly the zero terms: equal to the naive sum in the same order', () => {
  const x = tf.tensor2d([[0, 2, 0, -1.5], [3, 0, 0, 0.25]]);
  const dy = tf.tensor2d([[1, 2, 3, 4, 5], [-1, 0.5, 0, 2, 1]]);
  const product = sparseProduct(binaries.sparse, 1);
  const backend = tf.backend();
  const out = product(backend, { dataId: x.dataId, shape: x.shape, dtype: 'float32' },
    { dataId: dy.dataId, shape: dy.shape, dtype: 'float32' }, true);
  const got = tf.engine().makeTensorFromTensorInfo(out);
  assert.deepEqual(Array.from(got.dataSync()), [-3, 1.5, 0, 6, 3, 2, 4, 6, 8, 10, 0, 0, 0, 0, 0,
    -1.75, -2.875, -4.5, -5.5, -7.25]);
  tf.dispose([x, dy, got]);
});

test('which products take the sparse path: training ones over few nonzeros, and one image\'s prediction', () => {
  const { x, w } = inputs[0];
  const dense = inputs[2].x; // 30% zeros
  const dy = tf.randomNormal([x.shape[0], 100]);
  const taken = (fn) => {
    const before = { ...counts };
    tf.dispose(fn());
    return { sparse: counts.sparse - before.sparse, dense: counts.dense - before.dense };
  };
  // no tape: a batch's prediction keeps XNNPACK's product (its packed weights are cached) ...
  assert.deepEqual(taken(() => tf.matMul(x, w)), { sparse: 0, dense: 0 });
  assert.deepEqual(taken(() => tf.tidy(() => tf.matMul(x.slice(0, 2), w))), { sparse: 0, dense: 0 });
  // ... one image's reads only the weight rows of its nonzeros, plain or fused; not over dense features
  assert.deepEqual(taken(() => tf.tidy(() => tf.matMul(x.slice(0, 1), w))), { sparse: 1, dense: 0 });
  assert.deepEqual(taken(() => tf.tidy(() => tf.fused.matMul({ a: x.slice(0, 1), b: w, activation: 'relu' }))),
    { sparse: 1, dense: 0 });
  assert.deepEqual(taken(() => tf.tidy(() => tf.matMul(dense.slice(0, 1), w))), { sparse: 0, dense: 1 });
  // the kernel gradient's product a^T @ b, a the batch: sparse when mostly zeros
  assert.deepEqual(taken(() => tf.matMul(x, dy, true, false)), { sparse: 1, dense: 0 });
  assert.deepEqual(taken(() => tf.tidy(() => tf.matMul(dense, tf.randomNormal([26, 100]), true, false))), { sparse: 0, dense: 1 });
  // under a tape: the forward product and the kernel gradient (the input gradient is not needed)
  assert.deepEqual(taken(() => { taped(x, w); return []; }), { sparse: 2, dense: 0 });
  dy.dispose();
});

test('one image\'s prediction, plain and fused with bias and activation, matches the cpu backend', async () => {
  const { x, w } = inputs[0];
  const bias = tf.randomNormal([100], 0, 1, 'float32', 7);
  const run = () => tf.tidy(() => [0, 1, 2].map((i) => {
    const row = x.slice(i, 1);
    return [tf.matMul(row, w), tf.fused.matMul({ a: row, b: w, bias, activation: 'relu' })].map((t) => t.dataSync());
  }));
  const before = counts.sparse;
  const got = run();
  assert.equal(counts.sparse - before, 6);
  const [xs, ws, bs] = [x, w, bias].map((t) => ({ values: t.dataSync(), shape: t.shape }));
  await tf.setBackend('cpu');
  const cpu = tf.tidy(() => {
    const [cx, cw, cb] = [xs, ws, bs].map(({ values, shape }) => tf.tensor(values, shape));
    return [0, 1, 2].map((i) => [tf.matMul(cx.slice(i, 1), cw),
      tf.relu(tf.add(tf.matMul(cx.slice(i, 1), cw), cb))].map((t) => t.dataSync()));
  });
  await tf.setBackend('wasm');
  got.forEach((pair, i) => pair.forEach((values, j) => {
    const d = maxDiff(values, cpu[i][j]);
    assert.ok(d < 1e-4 * Math.max(1, maxAbs(cpu[i][j])), JSON.stringify({ i, j, d }));
  }));
  bias.dispose();
});

test('nothing leaks', () => {
  assert.equal(tf.memory().numTensors, tensorsBefore);
});

test('nonzeros counts exactly what is not 0 or -0 (NaN counts), SIMD lanes and the tail alike', () => {
  const kernel = kernelExports(binaries.sparse, tf.backend());
  const values = [0, -0, 1.5, NaN, -2, Infinity, 1e-40];
  for (const length of [0, 1, 3, 4, 5, 8, 1001]) {
    const data = Float32Array.from({ length }, (_, i) => values[(i * 5 + length) % values.length]);
    const t = tf.tensor1d(data);
    const want = data.filter((v) => v !== 0).length;
    assert.equal(kernel.nonzeros(offsetOf(tf.backend(), t), length), want, `length ${length}`);
    t.dispose();
  }
});

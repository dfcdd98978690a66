// web/src/wasm/matmul.js on the wasm backend: the replaced BatchMatMul gives the cpu
// backend's products for every transpose combination and shape a dense head's training
// uses, under a gradient tape too, and so does the fused product-bias-activation kernel
// split while weights change (every activation); nothing leaks. The kernel gradient's time
// before and after is reported, not asserted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { taped } from './taped.mjs';
import { patchWasmMatMul, withoutPacking } from '../src/wasm/matmul.js';

const CASES = [
  // [a shape, b shape, transposeA, transposeB]
  [[32, 12544], [32, 100], true, false],   // kernel gradient of flatten -> dense(100)
  [[32, 100], [12544, 100], false, true],  // input gradient
  [[7, 5], [7, 3], true, false],
  [[5, 7], [3, 7], false, true],
  [[7, 5], [3, 7], true, true],
  [[1, 7, 5], [1, 7, 3], true, false],     // rank 3, batch 1
  [[2, 7, 5], [2, 7, 3], true, false],     // batch 2: left to the original kernel
  [[4, 6], [6, 3], false, false],
];
const FUSED = ['linear', 'relu', 'relu6', 'sigmoid', 'elu', 'leakyrelu', 'prelu'];

const maxDiff = (p, q) => p.reduce((acc, v, i) => Math.max(acc, Math.abs(v - q[i])), 0);
const maxAbs = (p) => p.reduce((acc, v) => Math.max(acc, Math.abs(v)), 0);

function product([sa, sb, ta, tb], seed) {
  // seeds from 1: randomNormal treats a seed of 0 as "no seed"
  return tf.tidy(() => tf.matMul(tf.randomNormal(sa, 0, 1, 'float32', seed),
    tf.randomNormal(sb, 0, 1, 'float32', seed + 1), ta, tb).dataSync());
}

function timeGradient(runs) {
  const x = tf.randomNormal([32, 12544]);
  const dy = tf.randomNormal([32, 100]);
  const once = () => tf.tidy(() => tf.matMul(x, dy, true, false).dataSync());
  once();
  const started = performance.now();
  for (let i = 0; i < runs; i++) once();
  const ms = (performance.now() - started) / runs;
  x.dispose();
  dy.dispose();
  return ms;
}

/** A dense layer's fused kernel (no tape): product + bias + activation. */
function fusedProduct(activation, seed) {
  return tf.tidy(() => {
    const a = tf.randomNormal([6, 3000], 0, 1, 'float32', seed);
    const b = tf.randomNormal([3000, 64], 0, 0.05, 'float32', seed + 1);
    const bias = tf.randomNormal([64], 0, 1, 'float32', seed + 2);
    const preluActivationWeights = tf.randomNormal([64], 0, 0.3, 'float32', seed + 3);
    return tf.fused.matMul({ a, b, bias, activation, leakyreluAlpha: 0.2,
      preluActivationWeights: activation === 'prelu' ? preluActivationWeights : undefined }).dataSync();
  });
}

/** Runs fn counting the wasm Transpose kernels it calls (matmul.js looks Transpose up per call). */
function countingTransposes(fn) {
  const original = tf.getKernel('Transpose', 'wasm');
  let count = 0;
  tf.unregisterKernel('Transpose', 'wasm');
  tf.registerKernel({ ...original, kernelFunc: (args) => { count += 1; return original.kernelFunc(args); } });
  try {
    return { result: fn(), count };
  } finally {
    tf.unregisterKernel('Transpose', 'wasm');
    tf.registerKernel(original);
  }
}

// Expected values from the cpu backend first, then everything on wasm.
await tf.setBackend('cpu');
const expected = CASES.map((c, i) => product(c, 10 * i + 1));
const x = tf.randomNormal([32, 12544], 0, 1, 'float32', 7);
const w = tf.randomNormal([12544, 100], 0, 0.05, 'float32', 8);
const tapedCpu = taped(x, w);
const fusedCpu = FUSED.map((act, i) => fusedProduct(act, 100 + 10 * i));

await tf.setBackend('wasm');
await tf.ready();
const gradientMsBefore = timeGradient(3);
const patched = patchWasmMatMul(tf);
const tensorsBefore = tf.memory().numTensors;

test('the replaced kernel is in place', () => {
  assert.equal(patched, true);
});

test('products match the cpu backend for every transpose combination and shape', () => {
  const cases = CASES.map((c, i) => {
    const got = product(c, 10 * i + 1);
    return { a: c[0], b: c[1], transposeA: c[2], transposeB: c[3], size: got.length,
      expectedSize: expected[i].length, maxAbsDiff: maxDiff(got, expected[i]) };
  });
  const combos = new Set(cases.map((c) => `${c.transposeA},${c.transposeB}`));
  assert.deepEqual(combos, new Set(['true,false', 'false,true', 'true,true', 'false,false']));
  for (const c of cases) {
    assert.equal(c.size, c.expectedSize, JSON.stringify(c));
    // float32 sums of up to 100 products of N(0, 1) values: differences are ~1e-5
    assert.ok(c.maxAbsDiff < 1e-3, JSON.stringify(c));
  }
});

test('under a gradient tape, (w^T @ x^T)^T gives the cpu forward values and kernel gradient', () => {
  const wasm = taped(x, w);
  // float32 sums of 12544 products
  const forward = { maxAbsDiff: maxDiff(wasm.y, tapedCpu.y), maxAbs: maxAbs(tapedCpu.y),
    gradMaxAbsDiff: maxDiff(wasm.grad, tapedCpu.grad), gradMaxAbs: maxAbs(tapedCpu.grad) };
  assert.ok(forward.maxAbsDiff < 1e-4 * forward.maxAbs, JSON.stringify(forward));
  assert.ok(forward.gradMaxAbsDiff < 1e-4 * forward.gradMaxAbs, JSON.stringify(forward));
});

test('the fused kernel is split while weights change, and stays XNNPACK\'s outside', () => {
  // inside withoutPacking: 3 transposes (w, x, y); outside: none; cpu's values either way
  const fused = FUSED.map((activation, i) => {
    const split = countingTransposes(() => withoutPacking(() => fusedProduct(activation, 100 + 10 * i)));
    const plain = countingTransposes(() => fusedProduct(activation, 100 + 10 * i));
    return { activation, split: split.count, transposesOutside: plain.count,
      maxAbsDiff: maxDiff(split.result, fusedCpu[i]), plainMaxAbsDiff: maxDiff(plain.result, fusedCpu[i]),
      maxAbs: maxAbs(fusedCpu[i]) };
  });
  assert.deepEqual(fused.map((c) => c.activation), FUSED);
  for (const c of fused) {
    assert.equal(c.split, 3, JSON.stringify(c));
    assert.equal(c.transposesOutside, 0, JSON.stringify(c));
    const bound = 1e-4 * Math.max(c.maxAbs, 1); // float32 sums of 3000 products
    assert.ok(c.maxAbsDiff < bound && c.plainMaxAbsDiff < bound, JSON.stringify(c));
  }
});

test('no tensor leaks', (t) => {
  assert.equal(tf.memory().numTensors - tensorsBefore, 0);
  tf.dispose([x, w]);
  const gradientMsAfter = timeGradient(3);
  t.diagnostic(`kernel gradient x^T @ dy (32x12544, 100 units) in node: ${gradientMsBefore.toFixed(0)} ms -> `
    + `${gradientMsAfter.toFixed(0)} ms`);
});

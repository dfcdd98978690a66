// web/src/wasm/transpose.js on the wasm backend: every shape (4x4 blocks, edges, batches,
// empty) gives exactly TF.js' transpose, other permutations and dtypes keep TF.js' kernel,
// nothing leaks. The head kernel's transpose time before and after is reported, not asserted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { patchWasmTranspose } from '../src/wasm/transpose.js';
import { compileKernels } from '../tools/wat.mjs';

const CASES = [
  // [shape, perm, dtype]
  [[12544, 100], [1, 0], 'float32'],  // the default head's kernel
  [[32, 12544], [1, 0], 'float32'],   // a training batch
  [[26, 12544], [1, 0], 'float32'],   // the last batch of 90
  [[5, 7], [1, 0], 'float32'],        // edges only
  [[9, 13], [1, 0], 'float32'],       // blocks and both edges
  [[1, 1], [1, 0], 'float32'],
  [[4, 0], [1, 0], 'float32'],
  [[3, 6, 10], [0, 2, 1], 'float32'], // a batch of matrices
  [[1, 8, 12], [0, 2, 1], 'float32'],
  [[3, 4, 5], [2, 0, 1], 'float32'],  // not ours: TF.js' kernel
  [[6, 10], [1, 0], 'int32'],         // not ours
];

function values([shape, perm, dtype], seed) {
  return tf.tidy(() => {
    const x = tf.randomUniform(shape, -100, 100, 'float32', seed);
    return Array.from(tf.transpose(dtype === 'int32' ? x.toInt() : x, perm).dataSync());
  });
}

function timeKernelTranspose(runs) {
  const w = tf.randomNormal([12544, 100]);
  tf.transpose(w).dispose();
  const started = performance.now();
  for (let i = 0; i < runs; i++) tf.transpose(w).dispose();
  const ms = (performance.now() - started) / runs;
  w.dispose();
  return ms;
}

await tf.setBackend('wasm');
await tf.ready();
const expected = CASES.map((c, i) => values(c, i + 1));
const kernelMsBefore = timeKernelTranspose(20);
const patched = patchWasmTranspose(tf, (await compileKernels()).transpose);
const baseline = tf.memory().numTensors;

test('the replaced kernel is in place', () => {
  assert.equal(patched, true);
});

test('every value moves as TF.js moves it', () => {
  // blocks, edges, batches, empty; other permutations and int32 go to TF.js' kernel
  assert.equal(CASES.length, 11);
  CASES.forEach((c, i) => {
    const got = values(c, i + 1);
    const same = got.length === expected[i].length && got.every((v, k) => v === expected[i][k]);
    assert.ok(same, `shape ${JSON.stringify(c[0])} perm ${JSON.stringify(c[1])} ${c[2]}: values differ`);
  });
});

test('no tensor leaks', (t) => {
  assert.equal(tf.memory().numTensors - baseline, 0);
  const kernelMsAfter = timeKernelTranspose(20);
  t.diagnostic(`transpose of a 12544x100 kernel in node: ${kernelMsBefore.toFixed(2)} ms -> ${kernelMsAfter.toFixed(2)} ms`);
});

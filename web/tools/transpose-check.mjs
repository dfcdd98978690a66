// Checks web/src/transpose.js in Node on the wasm backend: every shape (4x4 blocks, edges,
// batches, empty) gives exactly TF.js' transpose, other permutations and dtypes keep TF.js'
// kernel, nothing leaks; prints the head kernel's transpose time before and after.
//   node web/tools/transpose-check.mjs > result.json
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { patchWasmTranspose } from '../src/transpose.js';
import { compileKernels } from './wat.mjs';

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
const before = timeKernelTranspose(20);
const patched = patchWasmTranspose(tf, (await compileKernels()).transpose);
const baseline = tf.memory().numTensors;
const cases = CASES.map((c, i) => {
  const got = values(c, i + 1);
  const same = got.length === expected[i].length && got.every((v, k) => v === expected[i][k]);
  return { shape: c[0], perm: c[1], dtype: c[2], same, size: got.length };
});
const after = timeKernelTranspose(20);
console.log(JSON.stringify({ patched, cases, leakedTensors: tf.memory().numTensors - baseline,
  kernelMsBefore: before, kernelMsAfter: after }));

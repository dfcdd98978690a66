// web/src/wasm/replace.js: replaceKernel() puts ours in place of the wasm kernel once,
// keeping the original's config and letting ours call it; a kernel wasm lacks is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { replaceKernel } from '../src/wasm/replace.js';

await tf.setBackend('wasm');
await tf.ready();

test('a kernel the wasm backend does not have is not replaced', () => {
  assert.equal(replaceKernel(tf, 'NoSuchKernel', () => () => null), false);
  assert.equal(tf.getKernel('NoSuchKernel', 'wasm'), undefined);
});

test('ours runs in place of the original, which it can call; replacing again changes nothing', () => {
  const original = tf.getKernel('Neg', 'wasm');
  let calls = 0;
  const wrap = (kernel) => (args) => {
    calls += 1;
    return kernel.kernelFunc(args);
  };
  assert.equal(replaceKernel(tf, 'Neg', wrap), true);
  assert.equal(replaceKernel(tf, 'Neg', wrap), true);
  const ours = tf.getKernel('Neg', 'wasm');
  assert.notEqual(ours.kernelFunc, original.kernelFunc);
  assert.deepEqual({ ...ours, kernelFunc: null }, { ...original, kernelFunc: null });
  const y = tf.neg(tf.tensor([1, -2]));
  assert.deepEqual(Array.from(y.dataSync()), [-1, 2]);
  assert.equal(calls, 1); // wrapped once, not twice
});

// web/src/wasm/adam.js: a head trained with the fused Adam kernel on wasm ends with the
// weights and optimizer state tf.train.adam gives (float32, op for op), the kernel really
// runs, the optimizer saves and restores like TF.js' Adam, wasm before registering and
// the cpu backend fall back to TF.js' update, and no tensor leaks. The update's time with
// tf.train.adam and fused is reported, not asserted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { adam, counts, registerFusedAdam } from '../src/wasm/adam.js';
import { compileKernels } from '../tools/wat.mjs';

const LR = 0.01;
const binaries = (await compileKernels()).adam;

// 101 inputs x 7 units: 707 kernel weights, not a multiple of 4, so the kernel's lane-by-lane
// tail runs too; the bias has 7.
function model() {
  return tf.sequential({ layers: [
    tf.layers.dense({ inputShape: [101], units: 7, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
  ] });
}

/** Trains `steps` batches, then restores the optimizer's saved state into a new one and trains `more`. */
async function train(makeOptimizer, x, y, steps, more) {
  const m = model();
  let optimizer = makeOptimizer();
  m.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const kernels = new Set();
  for (let i = 0; i < steps; i++) {
    const p = await tf.profile(() => m.trainOnBatch(x, y));
    p.kernels.forEach((k) => kernels.add(k.name));
  }
  const saved = await optimizer.getWeights();
  // names without the layers' running numbers, which differ from model to model
  const state = { names: saved.map((w) => w.name.replace(/_\d+/g, '').replace(/\d+\//g, '/')),
    values: saved.map((w) => Array.from(w.tensor.dataSync())) };
  const restored = makeOptimizer();
  const copies = saved.map((w) => ({ name: w.name, tensor: w.tensor.clone() }));
  await restored.setWeights(copies);
  tf.dispose([saved[0].tensor, ...copies.map((w) => w.tensor)]); // iterations; the restored state holds its own
  optimizer.dispose();
  optimizer = restored;
  m.compile({ optimizer, loss: 'categoricalCrossentropy' });
  for (let i = 0; i < more; i++) await m.trainOnBatch(x, y);
  const weights = m.getWeights().map((w) => Array.from(w.dataSync()));
  optimizer.dispose();
  m.dispose();
  return { weights, state, fused: kernels.has('TransferAdam') };
}

function maxDiff(a, b) {
  let d = 0;
  a.forEach((arr, i) => arr.forEach((v, k) => { d = Math.max(d, Math.abs(v - b[i][k])); }));
  return d;
}

/** 4 steps, a save/restore of the optimizer and 3 more, with adam() and with tf.train.adam. */
async function compareWithTfjs() {
  const x = tf.randomNormal([16, 101], 0, 1, 'float32', 5);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0], 'int32'), 3).toFloat());
  const ours = await train(() => adam(tf, LR), x, y, 4, 3);
  const theirs = await train(() => tf.train.adam(LR), x, y, 4, 3);
  tf.dispose([x, y]);
  return { fused: ours.fused, weightsMaxAbsDiff: maxDiff(ours.weights, theirs.weights),
    stateMaxAbsDiff: maxDiff(ours.state.values, theirs.state.values),
    sameStateNames: JSON.stringify(ours.state.names) === JSON.stringify(theirs.state.names),
    changed: maxDiff(ours.weights, theirs.weights.map((w) => w.map(() => 0))) > 0 };
}

/** ms per update of a 12544x100 variable (the default head's kernel). */
function timeUpdate(makeOptimizer, runs) {
  const w = tf.variable(tf.randomNormal([12544, 100], 0, 0.01, 'float32', 6));
  const g = tf.randomNormal([12544, 100], 0, 1, 'float32', 7);
  const optimizer = makeOptimizer();
  optimizer.applyGradients({ [w.name]: g });
  const started = performance.now();
  for (let i = 0; i < runs; i++) optimizer.applyGradients({ [w.name]: g });
  w.dataSync();
  const ms = (performance.now() - started) / runs;
  tf.dispose([w, g]);
  optimizer.dispose();
  return ms;
}

/** Trained as tf.train.adam trains: same weights, same state under the same names. */
function assertSameAsTfjs(c) {
  assert.ok(c.changed, `training changed no weight: ${JSON.stringify(c)}`);
  assert.ok(c.sameStateNames, `optimizer state names differ: ${JSON.stringify(c)}`);
  assert.ok(c.weightsMaxAbsDiff <= 1e-6 && c.stateMaxAbsDiff <= 1e-6, JSON.stringify(c));
}

test('on cpu, adam() is TF.js\' own update', async () => {
  await tf.setBackend('cpu');
  const c = await compareWithTfjs();
  assert.equal(c.fused, false);
  assertSameAsTfjs(c);
});

test('on wasm before the kernel is registered, adam() is TF.js\' own update', async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  const c = await compareWithTfjs();
  assert.equal(c.fused, false);
  assertSameAsTfjs(c);
});

test('on wasm with the kernel, the fused update trains exactly as tf.train.adam and leaks nothing', async (t) => {
  assert.equal(registerFusedAdam(tf, binaries), true);
  const baseline = tf.memory().numTensors;
  const c = await compareWithTfjs();
  assert.equal(c.fused, true);
  assertSameAsTfjs(c);
  assert.equal(tf.memory().numTensors - baseline, 0);
  const updateMsTfjs = timeUpdate(() => tf.train.adam(1e-3), 20);
  const updateMsFused = timeUpdate(() => adam(tf, 1e-3), 20);
  t.diagnostic(`Adam update of a 12544x100 variable in node: ${updateMsTfjs.toFixed(1)} ms (tf.train.adam) -> `
    + `${updateMsFused.toFixed(1)} ms (fused)`);
});

test('on wasm, a layers model\'s variables are updated in place, and a clone keeps its values', async () => {
  const before = { ...counts };
  const c = await compareWithTfjs();
  assertSameAsTfjs(c);
  // 2 dense layers x (kernel, bias) x 7 steps, none copied
  assert.equal(counts.inPlace - before.inPlace, 28, JSON.stringify(counts));
  assert.equal(counts.copied - before.copied, 0, JSON.stringify(counts));
  // a clone shares the variable's data (identity.js on the page): that update is copied
  const w = tf.variable(tf.zeros([5, 4]));
  const held = w.clone();
  const optimizer = adam(tf, LR);
  const copied = counts.copied;
  const g = tf.ones([5, 4]);
  optimizer.applyGradients({ [w.name]: g });
  assert.equal(counts.copied - copied, 1);
  assert.deepEqual(Array.from(held.dataSync()), new Array(20).fill(0));
  assert.notDeepEqual(Array.from(w.dataSync()), new Array(20).fill(0));
  tf.dispose([w, held, g]);
  optimizer.dispose();
});

test('on wasm, a prediction after an in-place update uses the new weights, not XNNPACK\'s packed old ones', () => {
  // without a tape, dense's product packs its kernel into XNNPACK's cache (keyed by tensor id)
  const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [64], units: 32, useBias: false })] });
  const x = tf.randomNormal([4, 64], 0, 1, 'float32', 8);
  const predict = () => tf.tidy(() => Array.from(m.predict(x).dataSync()));
  const expected = () => tf.tidy(() => {
    const w = m.getWeights()[0].dataSync(), xs = x.dataSync();
    return Array.from({ length: 4 * 32 }, (_, k) => {
      let sum = 0;
      for (let j = 0; j < 64; j++) sum += xs[Math.floor(k / 32) * 64 + j] * w[j * 32 + (k % 32)];
      return sum;
    });
  });
  predict(); // packed
  const optimizer = adam(tf, 0.1);
  const inPlace = counts.inPlace;
  const g = tf.ones([64, 32]);
  optimizer.applyGradients({ [m.getWeights()[0].name]: g });
  assert.equal(counts.inPlace - inPlace, 1);
  const after = predict();
  const want = expected();
  const diff = Math.max(...after.map((v, i) => Math.abs(v - want[i])));
  assert.ok(diff < 1e-4, `prediction differs from x @ w by ${diff}`);
  tf.dispose([x, g]);
  optimizer.dispose();
  m.dispose();
});

test('the optimizer says it is an Adam', () => {
  assert.equal(adam(tf, LR).getClassName(), 'Adam');
});

// Checks web/src/adam.js in Node on the wasm backend: a head trained with the fused Adam
// kernel ends with the weights and optimizer state tf.train.adam gives (float32, op for op),
// the kernel really runs, the optimizer saves and restores like TF.js' Adam, other backends
// fall back to TF.js' update, and no tensor leaks. Prints the update's time before and after.
//   node web/tools/adam-check.mjs > result.json
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { adam, registerFusedAdam } from '../src/adam.js';
import { compileKernels } from './wat.mjs';

const binaries = (await compileKernels()).adam;
await tf.setBackend('cpu');

// 101 inputs x 7 units: 707 kernel weights, not a multiple of 4, so the kernel's lane-by-lane
// tail runs too; the bias has 7.
function model() {
  return tf.sequential({ layers: [
    tf.layers.dense({ inputShape: [101], units: 7, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
  ] });
}
const x = tf.randomNormal([16, 101], 0, 1, 'float32', 5);
const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0], 'int32'), 3).toFloat();

/** Trains `steps` batches, then restores the optimizer's saved state into a new one and trains `more`. */
async function train(makeOptimizer, steps, more) {
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

function compare(ours, theirs) {
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

const LR = 0.01;
const out = {};
out.cpu = compare(await train(() => adam(tf, LR), 4, 3), await train(() => tf.train.adam(LR), 4, 3));
await tf.setBackend('wasm');
await tf.ready();
out.unregistered = compare(await train(() => adam(tf, LR), 4, 3), await train(() => tf.train.adam(LR), 4, 3));
out.registered = registerFusedAdam(tf, binaries);
const baseline = tf.memory().numTensors;
out.wasm = compare(await train(() => adam(tf, LR), 4, 3), await train(() => tf.train.adam(LR), 4, 3));
out.leakedTensors = tf.memory().numTensors - baseline;
out.updateMsTfjs = timeUpdate(() => tf.train.adam(1e-3), 20);
out.updateMsFused = timeUpdate(() => adam(tf, 1e-3), 20);
out.className = adam(tf, LR).getClassName();
tf.dispose([x, y]);
console.log(JSON.stringify(out));

// Checks web/src/matmul.js in Node: the patched wasm BatchMatMul gives the cpu backend's
// products for every transpose combination and shape a dense head's training uses, and
// so does the fused product-bias-activation kernel split while weights change (every
// activation); nothing leaks; prints how long a head's kernel gradient takes before and after.
//   node web/tools/matmul-check.mjs > result.json
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { patchWasmMatMul, whileWeightsChange } from '../src/matmul.js';

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

const expected = [];
await tf.setBackend('cpu');
CASES.forEach((c, i) => expected.push(product(c, 10 * i + 1)));

await tf.setBackend('wasm');
await tf.ready();
const before = timeGradient(3);
const patched = patchWasmMatMul(tf);
const tensorsBefore = tf.memory().numTensors;
const cases = CASES.map((c, i) => {
  const got = product(c, 10 * i + 1);
  let maxAbsDiff = 0;
  for (let k = 0; k < got.length; k++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(got[k] - expected[i][k]));
  return { a: c[0], b: c[1], transposeA: c[2], transposeB: c[3], size: got.length,
    expectedSize: expected[i].length, maxAbsDiff };
});
// A dense layer's forward product and kernel gradient under a gradient tape: the forward
// product takes the (w^T @ x^T)^T path. Compared with the cpu backend's.
const x = tf.randomNormal([32, 12544], 0, 1, 'float32', 7);
const w = tf.randomNormal([12544, 100], 0, 0.05, 'float32', 8);
function taped() {
  const v = tf.variable(w);
  let y = null;
  const { value, grads } = tf.variableGrads(() => {
    const out = tf.relu(tf.matMul(x, v));
    y = tf.keep(out.clone());
    return tf.sum(tf.square(out));
  }, [v]);
  const result = { y: y.dataSync(), grad: grads[v.name].dataSync(), loss: value.dataSync()[0] };
  tf.dispose([y, value, grads[v.name], v]);
  return result;
}
const tapedWasm = taped();
await tf.setBackend('cpu');
const xCpu = tf.tensor(x.dataSync(), x.shape);
const wCpu = tf.tensor(w.dataSync(), w.shape);
const vCpu = tf.variable(wCpu);
let yCpu = null;
const cpuGrads = tf.variableGrads(() => {
  const out = tf.relu(tf.matMul(xCpu, vCpu));
  yCpu = tf.keep(out.clone());
  return tf.sum(tf.square(out));
}, [vCpu]);
const maxDiff = (p, q) => p.reduce((acc, v, i) => Math.max(acc, Math.abs(v - q[i])), 0);
const maxAbs = (p) => p.reduce((acc, v) => Math.max(acc, Math.abs(v)), 0);
const cpuGrad = cpuGrads.grads[vCpu.name].dataSync();
const forward = { maxAbsDiff: maxDiff(tapedWasm.y, yCpu.dataSync()), maxAbs: maxAbs(yCpu.dataSync()),
  gradMaxAbsDiff: maxDiff(tapedWasm.grad, cpuGrad), gradMaxAbs: maxAbs(cpuGrad) };
tf.dispose([xCpu, wCpu, vCpu, yCpu, cpuGrads.value, cpuGrads.grads[vCpu.name]]);
// A dense layer's fused kernel (no tape), inside whileWeightsChange: split into the
// (w^T @ x^T)^T product, the bias and the activation. Transposes are counted to see it.
const FUSED = ['linear', 'relu', 'relu6', 'sigmoid', 'elu', 'leakyrelu', 'prelu'];
const fusedInputs = (seed) => ({ a: tf.randomNormal([6, 3000], 0, 1, 'float32', seed),
  b: tf.randomNormal([3000, 64], 0, 0.05, 'float32', seed + 1), bias: tf.randomNormal([64], 0, 1, 'float32', seed + 2),
  preluActivationWeights: tf.randomNormal([64], 0, 0.3, 'float32', seed + 3) });
function fusedProduct(activation, seed) {
  return tf.tidy(() => {
    const { a, b, bias, preluActivationWeights } = fusedInputs(seed);
    return tf.fused.matMul({ a, b, bias, activation, leakyreluAlpha: 0.2,
      preluActivationWeights: activation === 'prelu' ? preluActivationWeights : undefined }).dataSync();
  });
}
const fusedCpu = FUSED.map((act, i) => fusedProduct(act, 100 + 10 * i));
await tf.setBackend('wasm');
let transposes = 0;
const transposeKernel = tf.getKernel('Transpose', 'wasm');
tf.unregisterKernel('Transpose', 'wasm');
tf.registerKernel({ ...transposeKernel, kernelFunc: (args) => { transposes += 1; return transposeKernel.kernelFunc(args); } });
const fusedCases = FUSED.map((activation, i) => {
  transposes = 0;
  const got = whileWeightsChange(() => fusedProduct(activation, 100 + 10 * i));
  const split = transposes;
  transposes = 0;
  const plain = fusedProduct(activation, 100 + 10 * i);
  return { activation, split, transposesOutside: transposes, maxAbsDiff: maxDiff(got, fusedCpu[i]),
    plainMaxAbsDiff: maxDiff(plain, fusedCpu[i]), maxAbs: maxAbs(fusedCpu[i]) };
});
tf.unregisterKernel('Transpose', 'wasm');
tf.registerKernel(transposeKernel);
x.dispose();
w.dispose();
const after = timeGradient(3);
console.log(JSON.stringify({ patched, cases, forward, fused: fusedCases, leakedTensors: tf.memory().numTensors - tensorsBefore,
  gradientMsBefore: before, gradientMsAfter: after, speedup: before / after }));

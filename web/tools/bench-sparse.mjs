// The two training products of the default head (x @ w forward, x^T @ dy kernel gradient;
// x: 32 x 12544 features, `zeros` of them zero) on wasm with the page's kernels: sparse.js
// (x as is) against XNNPACK (the same x with its zeros replaced by 1e-30, so the density
// check sends it there), alternated in one process, ms per product (median of reps).
//   cd web && node tools/bench-sparse.mjs [reps] [fraction of zeros]
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../src/wasm/kernels.js';
import { whileWeightsChange } from '../src/wasm/matmul.js';
import { compileKernels } from './wat.mjs';

const reps = Number(process.argv[2] || 20);
const zeros = Number(process.argv[3] || 0.85);
await tf.setBackend('wasm');
await tf.ready();
console.log(installWasmKernels(tf, await compileKernels()).join(', '));
let s = 7;
const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s / 4294967296; };
const sparse = new Float32Array(32 * 12544).map(() => (rnd() < zeros ? 0 : rnd() * 6));
const xs = { sparse: tf.tensor2d(sparse, [32, 12544]), xnnpack: tf.tensor2d(sparse.map((v) => v || 1e-30), [32, 12544]) };
const w = tf.randomNormal([12544, 100]);
const dy = tf.randomNormal([32, 100]);
// (tidy returns nothing: a returned typed array would be walked value by value for tensors)
const time = (f) => { const t = performance.now(); tf.tidy(() => { f().dataSync(); }); return performance.now() - t; };
const ms = { sparse: { fwd: [], grad: [] }, xnnpack: { fwd: [], grad: [] } };
for (let r = 0; r < reps; r++) {
  for (const k of r % 2 ? ['xnnpack', 'sparse'] : ['sparse', 'xnnpack']) {
    ms[k].fwd.push(time(() => whileWeightsChange(() => tf.matMul(xs[k], w))));
    ms[k].grad.push(time(() => tf.matMul(xs[k], dy, true, false)));
  }
}
const med = (v) => v.slice(1).sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];
const forward = (x) => { const y = whileWeightsChange(() => tf.matMul(x, w)); const d = y.dataSync(); y.dispose(); return d; };
const a = forward(xs.sparse);
const b = forward(xs.xnnpack);
const diff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
for (const k of ['xnnpack', 'sparse']) console.log(`${k}: forward ${med(ms[k].fwd).toFixed(2)} ms, kernel gradient ${med(ms[k].grad).toFixed(2)} ms`);
console.log(`zeros ${zeros}: sparse/xnnpack forward ${(med(ms.sparse.fwd) / med(ms.xnnpack.fwd)).toFixed(2)}, gradient ${(med(ms.sparse.grad) / med(ms.xnnpack.grad)).toFixed(2)}; max |diff| forward ${diff.toExponential(2)}`);

// Times web/src/train.js' trainHead in Node on wasm with the page's kernels, at the default
// head's real shapes (features 7x7x256 -> dense 100 relu -> dropout 0.5 -> dense 3; 90 rows,
// batch 32, 20 epochs), and the kernels of one epoch (tf.profile). Exploration aid:
//   cd web && node tools/bench-train.mjs [rounds] [sparse|dense] [fraction of zeros]
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../src/wasm/kernels.js';
import { trainHead } from '../src/train.js';
import { compileKernels } from './wat.mjs';

const manifest = {
  backbone: { output_shape: [7, 7, 256] },
  head: { layers: [{ type: 'flatten' }, { type: 'dense', units: 100, activation: 'relu' },
    { type: 'dropout', rate: 0.5 }, { type: 'dense', units: 3, activation: 'softmax' }] },
};
const hyper = { epochs: 20, batchSize: 32, learningRate: 0.0001, optimizer: 'adam', loss: 'categorical_crossentropy' };
const rows = 90, size = 7 * 7 * 256;
// the served logos' features are 85% zeros (ReLU6); `node tools/bench-train.mjs 3 dense 0.85`
const ZEROS = Number(process.argv[4] || 0.85);
const SPARSE = process.argv[3] !== 'dense';
let s = 7;
const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s / 4294967296; };
const data = new Float32Array(rows * size).map(() => (rnd() < ZEROS ? 0 : rnd() * 6));
const feats = { data, count: rows, size };
const labelIndex = Array.from({ length: rows }, (_, i) => i % 3);
const split = { train: [...Array(rows).keys()], valid: [] };

await tf.setBackend('wasm');
await tf.ready();
console.log(installWasmKernels(tf, await compileKernels(), { sparseMatMul: SPARSE }).join(', '));
const run = async (epochs) => {
  const r = await trainHead({ tf, manifest, feats, labelIndex, split, classes: 3, hyper: { ...hyper, epochs } });
  const w = r.model.layers[1].getWeights()[0].dataSync().slice(0, 4);
  r.model.dispose();
  return { ms: r.ms, w, loss: r.history.history.loss.at(-1) };
};
await run(1);
for (let i = 0; i < (Number(process.argv[2]) || 3); i++) {
  const r = await run(20);
  console.log(`train 20 epochs ${r.ms.toFixed(0)} ms; loss ${r.loss.toFixed(6)}; w[0..4] ${Array.from(r.w).map((v) => v.toFixed(7)).join(' ')}`);
}
const p = await tf.profile(() => run(1));
const by = {};
for (const k of p.kernels) if (!k.name.endsWith('__op')) by[k.name] = (by[k.name] || 0) + (k.kernelTimeMs || 0);
console.log('one epoch kernels:', Object.entries(by).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', '));

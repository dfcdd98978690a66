// Checks web/src/train.js in Node (no DOM): extractFeatures gives the backbone's features
// in item order while the next batch loads, stops cleanly; trainHead learns a separable
// set, reports fit()-style epoch logs, stops when asked, and leaks no tensor.
//   node web/tools/train-check.mjs [cpu|wasm] > result.json
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../src/wasm/kernels.js';
import { preprocess } from '../src/preprocess.js';
import { extractFeatures, trainHead } from '../src/train.js';
import { compileKernels } from './wat.mjs';

const backend = process.argv[2] || 'cpu';
await tf.setBackend(backend);
await tf.ready();
// on wasm, the page's own kernels as the page installs them
const kernels = backend === 'wasm'
  ? installWasmKernels(tf, await compileKernels()) : [];

const LABELS = ['a', 'b', 'c'];
const manifest = {
  labels: LABELS,
  input: { height: 8, width: 8, channels: 3 },
  preprocessing: { mean: [0, 0, 0], scale: 1 / 127.5, offset: -1, channel_order: 'RGB',
    resize: { method: 'bilinear', align_corners: false, half_pixel_centers: false } },
  backbone: { output_shape: [2, 2, 4] },
  head: { layers: [{ type: 'flatten' }, { type: 'dense', units: 16, activation: 'relu' },
    { type: 'dropout', rate: 0.5 }, { type: 'dense', units: 3, activation: 'softmax' }] },
};
// A small stand-in backbone: [8, 8, 3] -> [2, 2, 4].
const backbone = tf.sequential({ layers: [
  tf.layers.averagePooling2d({ inputShape: [8, 8, 3], poolSize: 4 }),
  tf.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false }),
] });
// channels 0-2 pass R, G, B through; channel 3 is their sum
backbone.layers[1].setWeights([tf.tensor4d([1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1], [1, 1, 3, 4])]);

// 30 images, 10 a class: each class one colour, sizes vary so resizing happens.
const items = Array.from({ length: 30 }, (_, i) => ({ id: i, label: LABELS[i % 3] }));
const colour = (label) => [[250, 10, 10], [10, 250, 10], [10, 10, 250]][LABELS.indexOf(label)];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let done = 0;
let prefetched = 0; // loads that started while an earlier batch was still unfinished
const loadPixels = async (item) => {
  if (item.id >= done + 8) prefetched += 1;
  await sleep(1);
  return tf.tidy(() => tf.mul(tf.ones([9 + (item.id % 4), 10, 3], 'int32'),
    tf.tensor1d(colour(item.label), 'int32')));
};

const baseline = tf.memory().numTensors;
const feats = await extractFeatures({ tf, backbone, manifest, items, loadPixels, batchSize: 8,
  onProgress: (n) => { done = n; } });
// the reference: every item alone, straight through preprocess + backbone
let maxAbsDiff = 0;
for (const item of items) {
  const want = tf.tidy(() => backbone.predict(preprocess(tf, loadPixelsSync(item), manifest)).dataSync());
  const got = feats.data.subarray(item.id * feats.size, (item.id + 1) * feats.size);
  for (let k = 0; k < want.length; k++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(want[k] - got[k]));
}
function loadPixelsSync(item) {
  return tf.mul(tf.ones([9 + (item.id % 4), 10, 3], 'int32'), tf.tensor1d(colour(item.label), 'int32'));
}

// Stop after the first batch: null, and the batch loading meanwhile is disposed when it lands.
let batches = 0;
const stopped = await extractFeatures({ tf, backbone, manifest, items, loadPixels, batchSize: 8,
  onProgress: () => { batches += 1; }, shouldStop: () => batches >= 1 });
await sleep(20);
const extractLeaked = tf.memory().numTensors - baseline;

// Training: separable features (the colour decides the class), fit()-style logs.
const labelIndex = items.map((item) => LABELS.indexOf(item.label));
const split = { train: items.filter((it) => it.id % 5 !== 0).map((it) => it.id),
  valid: items.filter((it) => it.id % 5 === 0).map((it) => it.id) };
const hyper = { epochs: 25, batchSize: 8, learningRate: 0.01, optimizer: 'adam', loss: 'categorical_crossentropy' };
const epochsSeen = [];
const charted = [];
let chartsEnded = 0;
const full = await trainHead({ tf, manifest, feats, labelIndex, split, hyper,
  charts: { onEpochEnd: async (epoch, logs) => { charted.push([epoch, Object.keys(logs).sort()]); },
    onTrainEnd: async () => { chartsEnded += 1; } },
  onEpoch: (epoch) => epochsSeen.push(epoch) });
const h = full.history.history;
const probe = tf.tidy(() => full.model.predict(tf.tensor(feats.data, [feats.count, 2, 2, 4])).argMax(-1).dataSync());
const predictedRight = Array.from(probe).filter((p, i) => p === labelIndex[i]).length / feats.count;
full.model.dispose();

// Stop (as the page's Stop button does) once 3 epochs have ended.
let model = null;
const early = await trainHead({ tf, manifest, feats, labelIndex, split, hyper,
  onModel: (m) => { model = m; }, onEpoch: (epoch) => { if (epoch === 3) model.stopTraining = true; } });
early.model.dispose();

console.log(JSON.stringify({
  backend: tf.getBackend(),
  kernels,
  extract: { count: feats.count, size: feats.size, maxAbsDiff, prefetched, stoppedIsNull: stopped === null },
  train: { epochs: full.epochs, stopped: full.stopped, logKeys: Object.keys(h).sort(), lossFirst: h.loss[0],
    lossLast: h.loss[h.loss.length - 1], accLast: h.acc[h.acc.length - 1], valAccLast: h.val_acc[h.val_acc.length - 1],
    historyLength: h.loss.length, epochsSeen, charted: charted.length, chartsEnded, chartedKeys: charted[0] && charted[0][1],
    predictedRight },
  early: { epochs: early.epochs, stopped: early.stopped, historyLength: early.history.history.loss.length },
  leakedTensors: { extract: extractLeaked, total: tf.memory().numTensors - baseline },
}));

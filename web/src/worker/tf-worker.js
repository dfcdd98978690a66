// The page's TensorFlow.js off the main thread (a module Worker; tfworker.js is its client):
// backbone features of images (decoded here with the page's own data.js on an OffscreenCanvas,
// fed by its preprocess.js, so the rows equal the main thread's; a project's examples through
// train.js extractFeatures' pipeline), head training (train.js'
// trainHead, per-epoch logs posted back) and live prediction of webcam frames with the page's head. A long backbone run or training step then blocks
// this thread, never the page's. Jobs run one at a time in arrival order; 'stop' acts at once.
import * as tf from '../tf.js';
import '@tensorflow/tfjs-backend-wasm';
import { activateBackend, kernelThreads } from '../backend.js';
import { InputError, rgbaToPixels } from '../data.js';
import { exampleToPixels } from '../packs.js';
import { checkModels, classify, disposeModel, features, loadModel, useFusedPlans, warmUp } from '../models.js';
import { preprocess } from '../preprocess.js';
import { extractFeatures, trainHead } from '../train.js';
import { FEATURE_BATCH } from '../featurebatch.js';

let manifest = null;
let backbone = null;
let head = null; // {key, model, kind, input}: the page's head in use, for live prediction
let training = null; // the head being trained: 'stop' sets its stopTraining
let stopAsked = false;
let queue = Promise.resolve();

/** threads: the wasm pool's size (backend.js wasmThreads when null); 1 for a lane of tfworker.js. */
async function init({ manifest: m, pageUrl, backend: asked, kernels, fuse = true, threads = null }) {
  const backend = await activateBackend(tf, asked, pageUrl, kernels, threads);
  useFusedPlans(fuse); // the models as the page runs them (models.js, fused.js)
  manifest = m;
  backbone = await loadModel(tf, m.backbone.path, pageUrl, 'backbone');
  checkModels(m, backbone, null);
  warmUp(tf, backbone, null, m);
  return { backend: backend.name, details: backend.details };
}

/**
 * Runs job() with the page's kernels on this thread alone while `lanes` workers share the cores
 * (more than one): their helper thread would take the core another lane is using.
 */
async function laneOnly(lanes, job) {
  const helper = lanes > 1 ? kernelThreads(tf) : null;
  if (helper) kernelThreads(tf, false);
  try {
    return await job();
  } finally {
    if (helper) kernelThreads(tf, helper.enabled);
  }
}

/**
 * Features of items [{src: Blob|URL, name}], batchSize images per backbone run.
 * @returns {{data: Float32Array, size: number, skipped: {index, reason, input}[]}} row i for
 *   items[i]; a skipped item's row stays zero (input: the file is not a usable image)
 */
async function featuresOf({ items, batchSize = 4, lanes = 1 }) {
  return laneOnly(lanes, () => featureRows(items, batchSize));
}

async function featureRows(items, batchSize) {
  const size = manifest.backbone.output_shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(items.length * size);
  const skipped = [];
  for (let start = 0; start < items.length; start += batchSize) {
    const pixels = [];
    const rows = [];
    try {
      // the batch's fetches and decodes all under way at once, not one awaited after another
      const batch = items.slice(start, start + batchSize);
      const loads = await Promise.allSettled(batch.map((item) => loadPixels(item)));
      loads.forEach((load, k) => {
        if (load.status === 'fulfilled') {
          pixels.push(load.value);
          rows.push(start + k);
        } else {
          const e = load.reason;
          skipped.push({ index: start + k, input: e instanceof InputError, reason: e.message });
        }
      });
      if (!rows.length) continue;
      const out = tf.tidy(() => features(tf, backbone, tf.concat(pixels.map((p) => preprocess(tf, p, manifest)), 0)));
      let values;
      try {
        values = await out.data();
      } finally {
        out.dispose();
      }
      rows.forEach((row, k) => data.set(values.subarray(k * size, (k + 1) * size), row * size));
    } finally {
      pixels.forEach((p) => p.dispose());
    }
  }
  return { result: { data, size, skipped }, transfer: [data.buffer] };
}

/** An item's pixels, decoded here as the page decodes them (main.js loadPixels); an error names the item. */
async function loadPixels({ src, name, pack }) {
  try {
    return await exampleToPixels(tf, { src, name, pack }, manifest.input.channels);
  } catch (e) {
    throw e instanceof InputError ? e : new Error(`${name}: ${e.message}`);
  }
}

/**
 * train.js extractFeatures here, over items [{src, name}]: its pipeline (the next batches
 * fetched and decoded while the backbone runs) in one job, not one message per batch.
 * Each batch's progress is posted ({type: 'progress', done, total}); a 'stop' ends it
 * between batches (result null); an item that cannot be loaded fails the job, named.
 * `lanes`: how many workers extract at once (laneOnly).
 */
async function extract({ items, batchSize, lanes = 1 }, post) {
  const feats = await laneOnly(lanes, () => extractFeatures({
    tf, backbone, manifest, items, loadPixels, batchSize,
    onProgress: (done, total) => post({ type: 'progress', done, total }),
    shouldStop: () => stopAsked,
  }));
  if (!feats) return { result: null };
  return { result: feats, transfer: [feats.data.buffer] };
}

/**
 * The backbone alone, as this worker runs it, on `batch` preprocessed blank images: ms for `runs`
 * runs after an untimed one (make bench's like-for-like of Python's figure, which also starts
 * from preprocessed pixels; `lanes` as in extract).
 */
async function backboneMs({ batch, runs, lanes = 1 }) {
  const x = blankBatch(batch);
  try {
    return await laneOnly(lanes, async () => {
      await runBackbone(x);
      const start = performance.now();
      for (let i = 0; i < runs; i++) await runBackbone(x);
      return { result: performance.now() - start };
    });
  } finally {
    x.dispose();
  }
}

/** `n` blank images as the backbone takes them (warm-up and timing). */
const blankBatch = (n) => tf.zeros([n, manifest.input.height, manifest.input.width, manifest.input.channels]);

/** The backbone once on x, its output read back and freed. */
async function runBackbone(x) {
  const out = tf.tidy(() => features(tf, backbone, x));
  try {
    await out.data();
  } finally {
    out.dispose();
  }
}

/**
 * The first extraction and training here as fast as later ones: V8 compiles the backend's and
 * the page's own wasm kernels to optimised code only once they have run (tier-up), and the
 * wasm heap grows to a batch's tensors at their first use. Started with the worker, before
 * any job of the page's: one backbone batch of FEATURE_BATCH blank images and one epoch of
 * two batches training the manifest's head on synthetic features as sparse as a ReLU's
 * (the sparse products' path); `train` false (a lane that only extracts): the backbone alone.
 * Nothing is kept.
 */
async function warm({ train: withTraining = true } = {}) {
  const x = blankBatch(FEATURE_BATCH);
  try {
    await runBackbone(x);
  } finally {
    x.dispose();
  }
  if (!withTraining) return { result: { batch: FEATURE_BATCH, epochs: 0 } };
  const hp = manifest.training.hyperparameters;
  const batchSize = Math.max(1, hp.batch_size | 0);
  const size = manifest.backbone.output_shape.reduce((a, b) => a * b, 1);
  const count = 2 * batchSize;
  const data = new Float32Array(count * size).map((_, i) => (i % 8 === 0 ? 1 : 0));
  const { model, epochs } = await trainHead({
    tf, manifest, feats: { data, count, size }, labelIndex: Array.from({ length: count }, () => 0),
    split: { train: [...Array(count).keys()], valid: [] },
    hyper: { epochs: 1, batchSize, learningRate: hp.learning_rate, optimizer: hp.optimizer, loss: hp.loss },
  });
  model.dispose();
  return { result: { batch: FEATURE_BATCH, epochs } };
}

/**
 * trainHead on the features sent; the trained head comes back as its weights alone (the page
 * builds the same head from the manifest while this one trains), each {data, shape, dtype}.
 */
async function train({ manifest: m, feats, labelIndex, split, hyper, classes, seed }, post) {
  const result = await trainHead({
    tf, manifest: m, feats, labelIndex, split, hyper, classes, seed,
    onModel: (model) => {
      training = model;
      if (stopAsked) model.stopTraining = true;
    },
    onEpoch: (epoch, logs) => post({ type: 'epoch', epoch, logs }),
  });
  training = null;
  let weights;
  try {
    weights = result.model.getWeights().map((w) => ({ data: w.dataSync(), shape: w.shape, dtype: w.dtype }));
  } finally {
    result.model.dispose();
  }
  const { history, epochs, stopped, ms } = result;
  const buffers = weights.map((w) => w.data.buffer).filter((b) => b instanceof ArrayBuffer);
  return { result: { weights, history, epochs, stopped, ms }, transfer: buffers };
}

/** The page's head in use (its artifacts), kept under `key` until another replaces it. */
async function useHead({ key, artifacts, kind, input }) {
  const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  if (head) disposeModel(head.model);
  head = { key, model, kind, input };
  return { result: key };
}

/**
 * The head's probabilities for a frame: its RGBA bytes {data: Uint8Array, width, height}, read
 * as predict.js reads a canvas (the RGB of each pixel), then fed as predict.js feeds it.
 */
async function classifyFrame({ key, pixels }) {
  if (!head || head.key !== key) throw new Error(`the worker does not hold head ${key}`);
  const spec = head.input || manifest;
  const out = tf.tidy(() => classify(tf, backbone, head,
    preprocess(tf, rgbaToPixels(tf, pixels.data, pixels.width, pixels.height, spec.input.channels), spec)));
  let data;
  try {
    data = await out.data();
  } finally {
    out.dispose();
  }
  return { result: data, transfer: [data.buffer] };
}

/** The worker's tensor count (and bytes): the tests check that nothing accumulates. */
async function memory() {
  return { result: tf.memory() };
}

/** The page's kernels' helper thread here (backend.js kernelThreads: on, off or read; the bench pairs them). */
async function threads(enabled) {
  return { result: kernelThreads(tf, enabled) };
}

const JOBS = { init, warm, features: featuresOf, extract, train, head: useHead, classify: classifyFrame, memory,
  kernelThreads: threads, backbone: backboneMs };

self.onmessage = ({ data: { id, type, payload } }) => {
  if (type === 'stop') {
    stopAsked = true;
    if (training) training.stopTraining = true;
    return;
  }
  if (type === 'train' || type === 'extract') stopAsked = false; // a stop sent after this job is posted stops it
  const post = (message, transfer = []) => self.postMessage({ id, ...message }, transfer);
  queue = queue.then(async () => {
    try {
      if (type !== 'init' && !backbone) throw new Error('the worker has not started');
      const { result, transfer = [] } = type === 'init' ? { result: await init(payload) } : await JOBS[type](payload, post);
      post({ type: 'done', result }, transfer);
    } catch (e) {
      post({ type: 'error', message: e && e.message ? e.message : String(e) });
    }
  });
};

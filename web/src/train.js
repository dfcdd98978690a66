// Training in the page: backbone features for the served images (batched, cached as
// plain typed arrays so no tensor outlives a run), then a fresh head from the manifest
// trained with the manifest's hyper-parameters, with tfjs-vis curves and a Stop button.
import * as tfvis from '@tensorflow/tfjs-vis';
import { preprocess } from './preprocess.js';
import { buildHead, features } from './models.js';

/**
 * Backbone features of every item, batchSize images at a time, yielding between batches.
 * @param {object} opts {tf, backbone, manifest, items, loadPixels(item) -> Promise<Tensor3D>,
 *   batchSize, onProgress(done, total), shouldStop() -> boolean}
 * @returns {Promise<{data: Float32Array, count: number, size: number}|null>} null if stopped
 */
export async function extractFeatures({ tf, backbone, manifest, items, loadPixels, batchSize = 16,
  onProgress = () => {}, shouldStop = () => false }) {
  const size = manifest.backbone.output_shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(items.length * size);
  for (let start = 0; start < items.length; start += batchSize) {
    if (shouldStop()) return null;
    const batch = items.slice(start, start + batchSize);
    const pixels = await Promise.all(batch.map((item) => loadPixels(item)));
    const out = tf.tidy(() => {
      const x = tf.concat(pixels.map((p) => preprocess(tf, p, manifest)), 0);
      return features(tf, backbone, x);
    });
    pixels.forEach((p) => p.dispose());
    data.set(await out.data(), start * size);
    out.dispose();
    onProgress(Math.min(start + batchSize, items.length), items.length);
    await tf.nextFrame();
  }
  return { data, count: items.length, size };
}

/**
 * Yields to the page (input events, the Stop button) without waiting for the next frame:
 * tf.nextFrame() after every batch cost ~16 ms each, 1 s of a 20-epoch run spent idle.
 */
function yieldToPage() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** A small deterministic PRNG (mulberry32), so splits and shuffles repeat run to run. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(array, rand) {
  const out = array.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Which served images train and which validate, as the Python build decides: a "valid"
 * split wins; else a stratified hold-out of `fraction` per class (at least one, never
 * all) when every class has 5 or more training images; "test" images are never used.
 * @param {{label: string, split?: string}[]} items
 * @returns {{train: number[], valid: number[], note: string}} indices into items
 */
export function splitItems(items, labels, fraction, seed = 0) {
  const train = [];
  const valid = [];
  items.forEach((item, i) => {
    const split = item.split || 'train';
    if (split === 'train') train.push(i);
    else if (split === 'valid') valid.push(i);
  });
  if (valid.length) return { train, valid, note: 'valid/ images' };
  if (!(fraction > 0)) return { train, valid, note: 'no validation' };
  const byClass = labels.map((label) => train.filter((i) => items[i].label === label));
  if (byClass.some((idx) => idx.length < 5)) return { train, valid, note: 'no validation: a class has fewer than 5 images' };
  const rand = random(seed);
  const kept = [];
  for (const idx of byClass) {
    const order = shuffle(idx, rand);
    const k = Math.min(Math.max(Math.round(idx.length * fraction), 1), idx.length - 1);
    valid.push(...order.slice(0, k));
    kept.push(...order.slice(k));
  }
  return { train: kept.sort((a, b) => a - b), valid: valid.sort((a, b) => a - b),
    note: `stratified ${Math.round(fraction * 100)}% hold-out` };
}

function gather(tf, feats, indices, featureShape) {
  const data = new Float32Array(indices.length * feats.size);
  indices.forEach((src, dst) => data.set(feats.data.subarray(src * feats.size, (src + 1) * feats.size), dst * feats.size));
  return tf.tensor(data, [indices.length, ...featureShape]);
}

function oneHot(tf, indices, labelIndex, classes) {
  return tf.tidy(() => tf.oneHot(tf.tensor1d(indices.map((i) => labelIndex[i]), 'int32'), classes).toFloat());
}

function makeOptimizer(tf, name, learningRate) {
  switch ((name || 'adam').toLowerCase()) {
    case 'adam': return tf.train.adam(learningRate);
    case 'sgd': return tf.train.sgd(learningRate);
    case 'rmsprop': return tf.train.rmsprop(learningRate);
    case 'adagrad': return tf.train.adagrad(learningRate);
    case 'adadelta': return tf.train.adadelta(learningRate);
    case 'adamax': return tf.train.adamax(learningRate);
    default: throw new Error(`unknown optimizer in the manifest: ${name}`);
  }
}

/** Keras' snake_case loss names (categorical_crossentropy) as TF.js spells them. */
export function lossName(name) {
  return (name || 'categorical_crossentropy').replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

/**
 * Trains a fresh head on cached features.
 * @param {object} opts {tf, manifest, feats: {data, count, size}, labelIndex: number[] (per feature row),
 *   split: {train: number[], valid: number[]} (feature rows),
 *   hyper: {epochs, batchSize, learningRate, optimizer, loss}, chartsElement,
 *   onModel(model) (for Stop), onEpoch(epoch, logs)}
 * @returns {Promise<{model: object, history: object, epochs: number, stopped: boolean, ms: number}>}
 */
export async function trainHead({ tf, manifest, feats, labelIndex, split, hyper, chartsElement,
  onModel = () => {}, onEpoch = () => {} }) {
  const classes = manifest.labels.length;
  const shape = manifest.backbone.output_shape;
  const order = shuffle(split.train, random(1));
  const xs = gather(tf, feats, order, shape);
  const ys = oneHot(tf, order, labelIndex, classes);
  const validation = split.valid.length
    ? [gather(tf, feats, split.valid, shape), oneHot(tf, split.valid, labelIndex, classes)] : null;
  const optimizer = makeOptimizer(tf, hyper.optimizer, hyper.learningRate);
  let model = null;
  const started = performance.now();
  let epochsDone = 0;
  try {
    model = buildHead(tf, manifest);
    model.compile({ optimizer, loss: lossName(hyper.loss), metrics: ['accuracy'] });
    onModel(model);
    chartsElement.textContent = '';
    const metrics = validation ? ['loss', 'val_loss', 'acc', 'val_acc'] : ['loss', 'acc'];
    const visCallbacks = tfvis.show.fitCallbacks(chartsElement, metrics,
      { callbacks: ['onEpochEnd'], height: 180, zoomToFit: true });
    const history = await model.fit(xs, ys, {
      epochs: hyper.epochs,
      batchSize: hyper.batchSize,
      validationData: validation || undefined,
      shuffle: true,
      callbacks: [visCallbacks, {
        onEpochEnd: async (epoch, logs) => {
          epochsDone = epoch + 1;
          onEpoch(epochsDone, logs);
          await tf.nextFrame();
        },
        onBatchEnd: yieldToPage,
      }],
    });
    return { model, history, epochs: epochsDone, stopped: epochsDone < hyper.epochs, ms: performance.now() - started };
  } catch (e) {
    if (model) model.dispose();
    throw e;
  } finally {
    xs.dispose();
    ys.dispose();
    if (validation) validation.forEach((t) => t.dispose());
    optimizer.dispose();
  }
}

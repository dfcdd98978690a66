// Training in the page: backbone features for a project's examples (batched, as plain
// typed arrays so no tensor outlives a run), then a fresh head from the manifest's layers
// trained with the manifest's hyper-parameters, reporting each epoch (curves, Stop).
// No DOM here: web/test/train.test.mjs runs it in Node.
import { adam } from './wasm/adam.js';
import { preprocess } from './preprocess.js';
import { withoutPacking } from './wasm/matmul.js';
import { buildHead, features } from './models.js';
import { denseStep } from './densestep.js';
import { yieldToPage } from './tasks.js';
import { FEATURE_BATCH } from './featurebatch.js';

/**
 * loadPixels over items in order, started ahead of their use: whenever items up to `upto`
 * are asked for, every item before upto + ahead is started, at most `inFlight` loads at a
 * time (fetches and image decodes run while the backbone works on earlier batches). The cap
 * makes the first batch arrive first: started all at once, a hundred decodes finish together,
 * and the backbone waits for the slowest of them.
 */
function prefetch(items, loadPixels, ahead, inFlight) {
  const slots = items.map(() => {
    const slot = {};
    slot.pixels = new Promise((resolve, reject) => Object.assign(slot, { resolve, reject }));
    slot.pixels.catch(() => {}); // a failure is reported when its batch is taken
    return slot;
  });
  let started = 0;
  let wanted = 0; // loads before this index are asked for
  let running = 0;
  let handedOver = 0; // loads before this index belong to the caller
  const pump = () => {
    while (running < inFlight && started < Math.min(wanted, items.length)) {
      const slot = slots[started];
      const item = items[started];
      running += 1;
      new Promise((resolve) => resolve(loadPixels(item))).then(slot.resolve, slot.reject).then(() => {
        running -= 1;
        pump();
      });
      started += 1;
    }
  };
  return {
    /** The pixels of items [start, start + count), each a Tensor3D the caller disposes. */
    take(start, count) {
      wanted = Math.max(wanted, start + count + ahead);
      pump();
      return Promise.all(slots.slice(start, start + count).map((slot) => slot.pixels)).then((pixels) => {
        handedOver = start + count;
        return pixels;
      });
    },
    /** Disposes the pixels of every started load not handed over, as each arrives; starts no more. */
    dispose() {
      wanted = 0;
      slots.slice(handedOver, started).forEach((slot) => slot.pixels.then((p) => p.dispose(), () => {}));
    },
  };
}

export { FEATURE_BATCH }; // featurebatch.js: the one batch size of every feature extraction

/**
 * Backbone features of every item, batchSize images at a time, yielding between batches.
 * @param {object} opts {tf, backbone, manifest, items (examples: anything loadPixels takes),
 *   loadPixels(item) -> Promise<Tensor3D>,
 *   batchSize, ahead (items loading beyond the current batch; default 2 batches), inFlight (loads
 *   under way at once; default a batch),
 *   onProgress(done, total), shouldStop() -> boolean}
 * @returns {Promise<{data: Float32Array, count: number, size: number, waitMs: number}|null>} null if
 *   stopped; waitMs: time the backbone waited for pixels (the pipeline's idle time)
 */
export async function extractFeatures({ tf, backbone, manifest, items, loadPixels, batchSize = FEATURE_BATCH,
  ahead = 2 * batchSize, inFlight = batchSize, onProgress = () => {}, shouldStop = () => false }) {
  const size = manifest.backbone.output_shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(items.length * size);
  const loads = prefetch(items, loadPixels, ahead, inFlight);
  let waitMs = 0;
  try {
    for (let start = 0; start < items.length; start += batchSize) {
      const waited = performance.now();
      const pixels = await loads.take(start, batchSize);
      waitMs += performance.now() - waited;
      let out;
      try {
        if (shouldStop()) return null;
        out = tf.tidy(() => {
          const x = tf.concat(pixels.map((p) => preprocess(tf, p, manifest)), 0);
          return features(tf, backbone, x);
        });
      } finally {
        pixels.forEach((p) => p.dispose());
      }
      data.set(await out.data(), start * size);
      out.dispose();
      onProgress(Math.min(start + batchSize, items.length), items.length);
      await yieldToPage();
    }
  } finally {
    // stopped or failed with loads under way: their pixels are disposed when they arrive
    loads.dispose();
  }
  return { data, count: items.length, size, waitMs };
}

/** A small deterministic PRNG (mulberry32), so the batch order repeats run to run. */
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
 * One batch as tensors, copied straight from the cached typed arrays: fit()'s own shuffle
 * gathers each batch with GatherV2, which is slow on wasm (a large share of a step).
 * `scratch` (a Float32Array of at least rows x size) is reused batch after batch rather
 * than allocating a large array every step. Safe because every tensor made from it is
 * disposed before the next batch is copied in.
 */
function batchTensors(tf, feats, rows, labelIndex, classes, featureShape, scratch = null) {
  const x = scratch ? scratch.subarray(0, rows.length * feats.size) : new Float32Array(rows.length * feats.size);
  const y = new Float32Array(rows.length * classes);
  rows.forEach((src, dst) => {
    x.set(feats.data.subarray(src * feats.size, (src + 1) * feats.size), dst * feats.size);
    y[dst * classes + labelIndex[src]] = 1;
  });
  return [tf.tensor(x, [rows.length, ...featureShape]), tf.tensor2d(y, [rows.length, classes])];
}

/**
 * Training steps run back to back for up to this long before the loop yields to the page (its
 * input events, the Stop button, the charts): a yield per step cost more than the step's work
 * on small batches, and this keeps every task far under a long task's 50 ms.
 */
export const YIELD_EVERY_MS = 16;

/** The Python build only trains with Adam; the page does the same (fused update on wasm, adam.js). */
export function makeOptimizer(tf, name, learningRate) {
  if ((name || 'adam').toLowerCase() !== 'adam') {
    throw new Error(`manifest.json: training.hyperparameters.optimizer is ${JSON.stringify(name)}; the page trains with adam only`);
  }
  return adam(tf, learningRate);
}

/** Keras' snake_case loss names (categorical_crossentropy) as TF.js spells them; a loss function as it is. */
export function lossName(name) {
  if (typeof name === 'function') return name;
  return (name || 'categorical_crossentropy').replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

/**
 * The validation logs of an epoch, named as fit() names them (val_loss, val_acc). The
 * weights change again next step, so on wasm they are not packed for the product (matmul.js).
 */
async function evaluate(tf, model, x, y, batchSize) {
  const out = withoutPacking(() => model.evaluate(x, y, { batchSize }));
  const values = await Promise.all((Array.isArray(out) ? out : [out]).map((t) => t.data()));
  tf.dispose(out);
  return Object.fromEntries(model.metricsNames.map((name, i) => [`val_${name}`, values[i][0]]));
}

/**
 * Trains a fresh head on cached features: each epoch shuffles the training rows (seeded:
 * the same order run to run; dropout is not), copies every batch from the typed arrays
 * and takes a step (densestep.js for the dense heads it covers, else model.trainOnBatch);
 * the validation rows are evaluated at the end of the epoch.
 * Sets model.stopTraining (the Stop button) to end after the current batch.
 * @param {object} opts {tf, manifest, feats: {data, count, size}, labelIndex: number[] (per feature row),
 *   split: {train: number[], valid: number[]} (feature rows), classes: the head's output size
 *   (default: the manifest head's output layer), hyper: {epochs, batchSize, learningRate, optimizer, loss}, charts ({onEpochEnd(epoch, logs),
 *   onTrainEnd()?} as ui.trainingCharts gives, or tfjs-vis fitCallbacks; null for none),
 *   onModel(model) (for Stop), onEpoch(epoch, logs), seed, head: a head to continue training
 *   from its own weights (owned by the caller) instead of a fresh one from the manifest}
 * @returns {Promise<{model: object, history: {epoch: number[], history: object}, epochs: number,
 *   stopped: boolean, ms: number}>}
 */
export async function trainHead({ tf, manifest, feats, labelIndex, split, hyper, classes, charts = null,
  onModel = () => {}, onEpoch = () => {}, seed = 1, head = null }) {
  const shape = manifest.backbone.output_shape;
  const batchSize = Math.max(1, hyper.batchSize | 0);
  const optimizer = makeOptimizer(tf, hyper.optimizer, hyper.learningRate);
  const rand = random(seed);
  const scratch = new Float32Array(Math.min(batchSize, split.train.length) * feats.size);
  const history = { epoch: [], history: {} };
  let model = null;
  let validation = null;
  const started = performance.now();
  let yielded = started;
  try {
    model = head || buildHead(tf, manifest, { seed, classes });
    const outputs = model.outputs[0].shape[1];
    if (labelIndex.some((k) => !(k >= 0 && k < outputs))) throw new Error(`a label index is outside the head's ${outputs} classes`);
    if (split.valid.length) validation = batchTensors(tf, feats, split.valid, labelIndex, outputs, shape);
    model.compile({ optimizer, loss: lossName(hyper.loss), metrics: ['accuracy'] });
    const step = denseStep(tf, model); // trainOnBatch's step without the autograd, where it applies
    onModel(model);
    for (let epoch = 0; epoch < hyper.epochs && !model.stopTraining; epoch++) {
      const order = shuffle(split.train, rand);
      const sums = new Array(model.metricsNames.length).fill(0);
      let seen = 0;
      for (let start = 0; start < order.length && !model.stopTraining; start += batchSize) {
        const rows = order.slice(start, start + batchSize);
        const [x, y] = batchTensors(tf, feats, rows, labelIndex, outputs, shape, scratch);
        let values;
        try {
          values = step ? step(x, rows.map((row) => labelIndex[row])) : await model.trainOnBatch(x, y);
        } finally {
          x.dispose();
          y.dispose();
        }
        (Array.isArray(values) ? values : [values]).forEach((v, i) => { sums[i] += v * rows.length; });
        seen += rows.length;
        if (performance.now() - yielded >= YIELD_EVERY_MS) {
          await yieldToPage();
          yielded = performance.now();
        }
      }
      if (seen < order.length) break; // stopped mid-epoch: the epoch does not count
      const logs = Object.fromEntries(model.metricsNames.map((name, i) => [name, sums[i] / seen]));
      if (validation) Object.assign(logs, await evaluate(tf, model, validation[0], validation[1], batchSize));
      history.epoch.push(epoch);
      for (const [k, v] of Object.entries(logs)) (history.history[k] = history.history[k] || []).push(v);
      onEpoch(epoch + 1, logs);
      if (charts) await charts.onEpochEnd(epoch, logs);
    }
    if (charts && charts.onTrainEnd) await charts.onTrainEnd();
    const epochs = history.epoch.length;
    return { model, history, epochs, stopped: epochs < hyper.epochs, ms: performance.now() - started };
  } catch (e) {
    if (model && !head) model.dispose();
    throw e;
  } finally {
    if (validation) validation.forEach((t) => t.dispose());
    optimizer.dispose();
  }
}

// web/src/train.js in Node (no DOM), on the cpu backend and on wasm with the page's own
// kernels as the page installs them: extractFeatures gives the backbone's features in item
// order while the next batch loads and stops cleanly; trainHead learns a separable set,
// reports fit()-style epoch logs, stops when asked, and leaks no tensor.
//   cd web && node --test test/
import assert from 'node:assert/strict';
import { describe, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../src/wasm/kernels.js';
import { counts as adamCounts } from '../src/wasm/adam.js';
import { buildHead } from '../src/models.js';
import { preprocess } from '../src/preprocess.js';
import { extractFeatures, makeOptimizer, trainHead } from '../src/train.js';
import { compileKernels } from '../tools/wat.mjs';

const LABELS = ['a', 'b', 'c'];
// No labels: training takes its classes from the caller (the project), not the manifest.
const manifest = {
  input: { height: 8, width: 8, channels: 3 },
  preprocessing: { mean: [0, 0, 0], scale: 1 / 127.5, offset: -1, channel_order: 'RGB',
    resize: { method: 'bilinear', align_corners: false, half_pixel_centers: false } },
  backbone: { output_shape: [2, 2, 4] },
  head: { layers: [{ type: 'flatten' }, { type: 'dense', units: 16, activation: 'relu' },
    { type: 'dropout', rate: 0.5 }, { type: 'dense', units: 3, activation: 'softmax' }] },
};
const hyper = { epochs: 25, batchSize: 8, learningRate: 0.01, optimizer: 'adam', loss: 'categorical_crossentropy' };

// 30 images, 10 a class: each class one colour, sizes vary so resizing happens.
const items = Array.from({ length: 30 }, (_, i) => ({ id: i, label: LABELS[i % 3] }));
const colour = (label) => [[250, 10, 10], [10, 250, 10], [10, 10, 250]][LABELS.indexOf(label)];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const pixelsSync = (item) => tf.tidy(() => tf.mul(tf.ones([9 + (item.id % 4), 10, 3], 'int32'),
  tf.tensor1d(colour(item.label), 'int32')));
const labelIndex = items.map((item) => LABELS.indexOf(item.label));
const split = { train: items.filter((it) => it.id % 5 !== 0).map((it) => it.id),
  valid: items.filter((it) => it.id % 5 === 0).map((it) => it.id) };

/** A small stand-in backbone: [8, 8, 3] -> [2, 2, 4]; channels 0-2 pass R, G, B, channel 3 is their sum. */
function makeBackbone() {
  const backbone = tf.sequential({ layers: [
    tf.layers.averagePooling2d({ inputShape: [8, 8, 3], poolSize: 4 }),
    tf.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false }),
  ] });
  tf.tidy(() => backbone.layers[1].setWeights([tf.tensor4d([1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1], [1, 1, 3, 4])]));
  return backbone;
}

for (const backend of ['cpu', 'wasm']) {
  describe(`train.js on ${backend}`, () => {
    let backbone;
    let baseline;
    let feats;

    before(async () => {
      await tf.setBackend(backend);
      await tf.ready();
      // on wasm, trained with the page's own kernels, as the page installs them
      const kernels = backend === 'wasm' ? installWasmKernels(tf, await compileKernels()) : [];
      assert.equal(tf.getBackend(), backend);
      assert.deepEqual(kernels, backend === 'cpu' ? []
        : ['XNNPACK for transposed products', 'sparse feature products', 'SIMD transposes', 'fused Adam', 'shared clones',
          'SIMD resize', 'FMA convolutions', 'one-kernel backbones']);
      backbone = makeBackbone();
      baseline = tf.memory().numTensors;
    });

    test('extractFeatures: item order, each equal to the image run alone, next batch loading meanwhile', async () => {
      let done = 0;
      let prefetched = 0; // loads that started while an earlier batch was still unfinished
      let twoAhead = 0; // loads of the third batch started before the first one finished
      const loadPixels = async (item) => {
        if (item.id >= done + 8) prefetched += 1;
        if (done === 0 && item.id >= 16) twoAhead += 1;
        await sleep(1);
        return pixelsSync(item);
      };
      feats = await extractFeatures({ tf, backbone, manifest, items, loadPixels, batchSize: 8, inFlight: Infinity,
        onProgress: (n) => { done = n; } });
      assert.equal(feats.count, 30);
      assert.equal(feats.size, 16);
      let maxAbsDiff = 0;
      for (const item of items) {
        const want = tf.tidy(() => backbone.predict(preprocess(tf, pixelsSync(item), manifest)).dataSync());
        const got = feats.data.subarray(item.id * feats.size, (item.id + 1) * feats.size);
        for (let k = 0; k < want.length; k++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(want[k] - got[k]));
      }
      assert.ok(maxAbsDiff < 1e-4, `max |diff| ${maxAbsDiff}`);
      assert.equal(prefetched, 22); // every batch after the first started loading early
      assert.equal(twoAhead, 8); // two batches ahead by default (the loads under way uncapped here)
      assert.ok(feats.waitMs >= 0);
    });

    test('extractFeatures: at most inFlight loads at a time (a batch by default), started in item order', async () => {
      for (const inFlight of [undefined, 3]) {
        let running = 0;
        let most = 0;
        const started = [];
        const loadPixels = async (item) => {
          started.push(item.id);
          running += 1;
          most = Math.max(most, running);
          await sleep(1);
          running -= 1;
          return pixelsSync(item);
        };
        const got = await extractFeatures({ tf, backbone, manifest, items, loadPixels, batchSize: 8,
          ...(inFlight ? { inFlight } : {}) });
        assert.equal(got.count, 30);
        assert.equal(most, inFlight || 8);
        assert.deepEqual(started, items.map((item) => item.id));
      }
      assert.equal(tf.memory().numTensors - baseline, 0);
    });

    test('extractFeatures: a failed load is the error, and the loads under way leak nothing', async () => {
      const loadPixels = async (item) => {
        await sleep(1);
        if (item.id === 10) throw new Error('image 10 could not be read');
        return pixelsSync(item);
      };
      await assert.rejects(extractFeatures({ tf, backbone, manifest, items, loadPixels, batchSize: 8 }),
        /image 10 could not be read/);
      await sleep(50); // loads started ahead are disposed when they land
      assert.equal(tf.memory().numTensors - baseline, 0);
    });

    test('extractFeatures: stopped after the first batch gives null and leaks nothing', async () => {
      let batches = 0;
      const stopped = await extractFeatures({ tf, backbone, manifest, items, loadPixels: async (item) => pixelsSync(item),
        batchSize: 8, onProgress: () => { batches += 1; }, shouldStop: () => batches >= 1 });
      assert.equal(stopped, null);
      await sleep(20); // the batch loading meanwhile is disposed when it lands
      assert.equal(tf.memory().numTensors - baseline, 0);
    });

    test('trainHead: learns separable features, fit()-style logs every epoch, charts', async () => {
      const epochsSeen = [];
      const charted = [];
      let chartsEnded = 0;
      const updates = { ...adamCounts };
      const full = await trainHead({ tf, manifest, feats, labelIndex, split, hyper, classes: LABELS.length,
        charts: { onEpochEnd: async (epoch, logs) => { charted.push(Object.keys(logs).sort()); },
          onTrainEnd: async () => { chartsEnded += 1; } },
        onEpoch: (epoch) => epochsSeen.push(epoch) });
      const h = full.history.history;
      assert.equal(full.epochs, 25);
      assert.equal(full.stopped, false);
      if (backend === 'wasm') {
        // nothing else holds the head's variables mid-training: Adam updates them in place
        // (24 training rows, batch 8: 3 steps an epoch, 4 variables)
        assert.equal(adamCounts.inPlace - updates.inPlace, 25 * 3 * 4, JSON.stringify(adamCounts));
        assert.equal(adamCounts.copied - updates.copied, 0, JSON.stringify(adamCounts));
      }
      assert.equal(h.loss.length, 25);
      assert.deepEqual(epochsSeen, Array.from({ length: 25 }, (_, i) => i + 1));
      assert.equal(charted.length, 25);
      assert.equal(chartsEnded, 1);
      assert.deepEqual(Object.keys(h).sort(), ['acc', 'loss', 'val_acc', 'val_loss']);
      assert.deepEqual(charted[0], ['acc', 'loss', 'val_acc', 'val_loss']);
      assert.ok(h.loss[h.loss.length - 1] < h.loss[0] / 3, `loss ${h.loss[0]} -> ${h.loss[h.loss.length - 1]}`);
      // the colours separate the classes
      assert.equal(h.val_acc[h.val_acc.length - 1], 1);
      const probe = tf.tidy(() => full.model.predict(tf.tensor(feats.data, [feats.count, 2, 2, 4])).argMax(-1).dataSync());
      assert.equal(Array.from(probe).filter((p, i) => p === labelIndex[i]).length, feats.count);
      full.model.dispose();
    });

    test('trainHead: Stop after 3 epochs ends there', async () => {
      let model = null;
      const early = await trainHead({ tf, manifest, feats, labelIndex, split, hyper,
        onModel: (m) => { model = m; }, onEpoch: (epoch) => { if (epoch === 3) model.stopTraining = true; } });
      early.model.dispose();
      assert.deepEqual({ epochs: early.epochs, stopped: early.stopped, historyLength: early.history.history.loss.length },
        { epochs: 3, stopped: true, historyLength: 3 });
    });

    test('no tensor leaked by extraction and training', () => {
      assert.equal(tf.memory().numTensors - baseline, 0);
    });
  });
}

describe('the head and its optimizer', () => {
  test("buildHead: the manifest's hidden layers, then as many softmax outputs as classes asked", () => {
    const four = buildHead(tf, manifest, { classes: 4 });
    const own = buildHead(tf, manifest);
    try {
      assert.deepEqual(four.outputs[0].shape, [null, 4]);
      assert.deepEqual(own.outputs[0].shape, [null, 3]);
      assert.deepEqual(four.layers.map((l) => l.getClassName()), ['Flatten', 'Dense', 'Dropout', 'Dense']);
      assert.equal(four.layers[3].getConfig().activation, 'softmax');
    } finally {
      four.dispose();
      own.dispose();
    }
  });

  test('a head for 100 classes is built and learns them (the project allows 2 to at least 100)', async () => {
    await tf.setBackend('cpu');
    const n = 100;
    // the default recipe's head: dense(100, relu), dropout 0.5, softmax
    const wide = { ...manifest, backbone: { output_shape: [10, 10, 1] },
      head: { layers: [{ type: 'flatten' }, { type: 'dense', units: 100, activation: 'relu' },
        { type: 'dropout', rate: 0.5 }, { type: 'dense', units: null, activation: 'softmax' }] } };
    // class k: a feature vector lit at k (plus a little noise), 3 examples a class
    const rows = Array.from({ length: 3 * n }, (_, i) => i % n);
    const data = new Float32Array(rows.length * n);
    rows.forEach((k, i) => {
      for (let j = 0; j < n; j++) data[i * n + j] = (j === k ? 1 : 0) + 0.05 * Math.sin(i * 7 + j);
    });
    const every = rows.map((_, i) => i);
    const before = tf.memory().numTensors;
    const result = await trainHead({ tf, manifest: wide, feats: { data, count: rows.length, size: n }, labelIndex: rows,
      split: { train: every, valid: [] }, hyper: { ...hyper, epochs: 30, batchSize: 32, learningRate: 0.02 }, classes: n });
    try {
      assert.deepEqual(result.model.outputs[0].shape, [null, n]);
      // scored as the page predicts (no dropout): every example named right but a few
      const guess = tf.tidy(() => result.model.predict(tf.tensor(data, [rows.length, 10, 10, 1])).argMax(-1).dataSync());
      const right = Array.from(guess).filter((g, i) => g === rows[i]).length;
      assert.ok(right >= 0.95 * rows.length, `${right}/${rows.length} right over 100 classes`);
    } finally {
      result.model.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
  });

  test('buildHead refuses a head whose last layer is not a softmax dense', () => {
    const bad = { ...manifest, head: { layers: manifest.head.layers.slice(0, 3) } };
    assert.throws(() => buildHead(tf, bad), /manifest\.json: head\.layers ends with .*softmax dense/);
  });

  test('the page trains with Adam only, and says so for anything else', () => {
    assert.throws(() => makeOptimizer(tf, 'sgd', 0.01), /manifest\.json: .*optimizer is "sgd".*adam only/);
    const adam = makeOptimizer(tf, 'Adam', 0.01);
    adam.dispose();
  });
});

// web/src/densestep.js in Node, on the cpu backend and on wasm with the page's kernels: a step
// gives trainOnBatch's loss, accuracy and weights (without dropout, where both are
// deterministic), clipped rows included; dropout's mask reaches the gradients; the heads it
// does not cover get no step; nothing leaks.
//   cd web && node --test test/densestep.test.mjs
import assert from 'node:assert/strict';
import { describe, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../src/wasm/kernels.js';
import { counts as sparseCounts } from '../src/wasm/sparse.js';
import { buildHead } from '../src/models.js';
import { denseStep, SMALL_WEIGHTS } from '../src/densestep.js';
import { makeOptimizer } from '../src/train.js';
import { compileKernels } from '../tools/wat.mjs';

const CLASSES = 3;
const manifestOf = (shape, layers) => ({ backbone: { output_shape: shape },
  head: { layers: [...layers, { type: 'dense', units: CLASSES, activation: 'softmax' }] } });

/**
 * A compiled head of the manifest's layers (seeded: two calls give the same weights). Plain SGD
 * by default, so the weights after a step differ as little as the gradients do: Adam divides
 * each gradient by its own size, and a near-zero gradient's rounding becomes a whole step.
 */
function compiled(manifest, optimizer = () => tf.train.sgd(0.1)) {
  const model = buildHead(tf, manifest, { seed: 3, classes: CLASSES });
  model.compile({ optimizer: optimizer(), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

/** n rows of features (85% zeros, as a ReLU's) and their labels, from a fixed PRNG. */
function batch(shape, n, seed) {
  let s = seed;
  const next = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
  const size = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n * size }, () => (next() < 0.15 ? 6 * next() : 0));
  const labels = Array.from({ length: n }, () => Math.floor(next() * CLASSES));
  const y = new Float32Array(n * CLASSES);
  labels.forEach((t, r) => { y[r * CLASSES + t] = 1; });
  return { x: tf.tensor(data, [n, ...shape]), y: tf.tensor2d(y, [n, CLASSES]), labels };
}

function maxDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Steps the same batches through denseStep and trainOnBatch; their logs and weights side by side. */
async function sideBySide(manifest, shape, { steps = 5, n = 16, prepare = () => {}, optimizer } = {}) {
  const ours = compiled(manifest, optimizer);
  const theirs = compiled(manifest, optimizer);
  [ours, theirs].forEach(prepare);
  const step = denseStep(tf, ours);
  assert.ok(step, 'the head is covered');
  const logs = [];
  for (let k = 0; k < steps; k++) {
    const { x, y, labels } = batch(shape, n - (k % 2) * 3, 11 + k); // a short batch too
    const a = step(x, labels);
    const b = await theirs.trainOnBatch(x, y);
    logs.push([a, b]);
    tf.dispose([x, y]);
  }
  const weights = ours.getWeights().map((w, i) => maxDiff(w.dataSync(), theirs.getWeights()[i].dataSync()));
  const moved = maxDiff(ours.getWeights()[0].dataSync(), compiled(manifest).getWeights()[0].dataSync());
  for (const m of [ours, theirs]) {
    m.optimizer.dispose();
    m.dispose();
  }
  return { logs, weights, moved };
}

for (const backend of ['cpu', 'wasm']) {
  describe(`densestep.js on ${backend}`, () => {
    before(async () => {
      await tf.setBackend(backend);
      await tf.ready();
      if (backend === 'wasm') installWasmKernels(tf, await compileKernels());
    });

    test('a step is trainOnBatch\'s: loss, accuracy and every weight (no dropout)', async () => {
      const shape = [2, 2, 16];
      const layers = [{ type: 'flatten' }, { type: 'dense', units: 12, activation: 'relu' },
        { type: 'dense', units: 7, activation: 'linear' }];
      const { logs, weights, moved } = await sideBySide(manifestOf(shape, layers), shape);
      for (const [[loss, acc], [wantLoss, wantAcc]] of logs) {
        assert.ok(Math.abs(loss - wantLoss) < 1e-5 * Math.max(1, wantLoss), `loss ${loss} vs ${wantLoss}`);
        assert.ok(Math.abs(acc - wantAcc) < 1e-6, `accuracy ${acc} vs ${wantAcc}`);
      }
      assert.ok(moved > 1e-3, 'the weights trained');
      assert.ok(Math.max(...weights) < 1e-5, `weights differ by ${Math.max(...weights)}`);
    });

    test('with the page\'s Adam (fused on wasm): trainOnBatch\'s losses, the weights trained', async () => {
      const shape = [2, 2, 16];
      const layers = [{ type: 'flatten' }, { type: 'dense', units: 12, activation: 'relu' }];
      const { logs, moved } = await sideBySide(manifestOf(shape, layers), shape,
        { optimizer: () => makeOptimizer(tf, 'adam', 0.01) });
      for (const [[loss], [wantLoss]] of logs) assert.ok(Math.abs(loss - wantLoss) < 1e-3 * Math.max(1, wantLoss));
      assert.ok(moved > 1e-3, 'the weights trained');
    });

    test('the default head\'s width: the first layer on the page\'s products, the same weights', async () => {
      const shape = [7, 7, 256];
      const layers = [{ type: 'flatten' }, { type: 'dense', units: 100, activation: 'relu' }];
      const before = sparseCounts.sparse;
      const { logs, weights } = await sideBySide(manifestOf(shape, layers), shape, { steps: 3, n: 32 });
      if (backend === 'wasm') assert.ok(sparseCounts.sparse > before, 'the sparse products ran');
      for (const [[loss], [wantLoss]] of logs) assert.ok(Math.abs(loss - wantLoss) < 1e-4 * Math.max(1, wantLoss));
      assert.ok(Math.max(...weights) < 1e-5, `weights differ by ${Math.max(...weights)}`);
    });

    test('rows whose probability is clipped add their clipped loss and no gradient, as Keras\'', async () => {
      const shape = [8];
      const layers = [{ type: 'dense', units: 6, activation: 'relu' }];
      // a last layer so sure of itself that most rows' true classes are far under 1e-7, or over 1 - 1e-7
      const prepare = (m) => tf.tidy(() => m.layers[1].setWeights([tf.mul(m.layers[1].getWeights()[0], 400), m.layers[1].getWeights()[1]]));
      const { logs, weights } = await sideBySide(manifestOf(shape, layers), shape, { steps: 3, prepare });
      assert.ok(logs.some(([[loss]]) => loss > 3), 'some rows were clipped');
      for (const [[loss, acc], [wantLoss, wantAcc]] of logs) {
        assert.ok(Math.abs(loss - wantLoss) < 1e-4 * Math.max(1, wantLoss), `loss ${loss} vs ${wantLoss}`);
        assert.ok(Math.abs(acc - wantAcc) < 1e-6, `accuracy ${acc} vs ${wantAcc}`);
      }
      assert.ok(Math.max(...weights) < 1e-4, `weights differ by ${Math.max(...weights)}`);
    });

    test('dropout: a unit dropped gets no gradient (all but never kept: the first layer stays)', async () => {
      const shape = [2, 2, 4];
      const manifest = manifestOf(shape, [{ type: 'flatten' }, { type: 'dense', units: 8, activation: 'relu' },
        { type: 'dropout', rate: 1 - 1e-9 }]);
      const model = compiled(manifest, () => makeOptimizer(tf, 'adam', 0.01));
      const [w1, b1, w2] = model.getWeights().map((w) => w.dataSync().slice());
      const step = denseStep(tf, model);
      const baseline = tf.memory().numTensors;
      for (let k = 0; k < 3; k++) {
        const { x, y, labels } = batch(shape, 8, 5 + k);
        step(x, labels);
        tf.dispose([x, y]);
        if (k === 0) assert.equal(tf.memory().numTensors - baseline, 8, 'Adam\'s two slots per weight, once');
      }
      assert.equal(tf.memory().numTensors - baseline, 8, 'no tensor left by a step');
      const after = model.getWeights().map((w) => w.dataSync());
      assert.equal(maxDiff(after[0], w1), 0);
      assert.equal(maxDiff(after[1], b1), 0);
      assert.equal(maxDiff(after[2], w2), 0); // its input was all dropped: zeros
      assert.ok(maxDiff(after[3], new Float32Array(CLASSES)) > 0, 'the output bias trains');
      model.optimizer.dispose();
      model.dispose();
    });

    test('heads it does not cover get no step', () => {
      const none = (manifest, loss = 'categoricalCrossentropy') => {
        const model = buildHead(tf, manifest, { classes: CLASSES });
        model.compile({ optimizer: makeOptimizer(tf, 'adam', 0.01), loss, metrics: ['accuracy'] });
        const step = denseStep(tf, model);
        model.optimizer.dispose();
        model.dispose();
        return step === null;
      };
      assert.ok(!none(manifestOf([4], [{ type: 'dense', units: 5, activation: 'relu' }])), 'the plain head is covered');
      assert.ok(none(manifestOf([2, 2, 4], [{ type: 'global_average_pooling' }])));
      assert.ok(none(manifestOf([4], [{ type: 'dense', units: 5, activation: 'tanh' }])));
      assert.ok(none(manifestOf([4], [{ type: 'dense', units: 5, activation: 'relu' }]), 'meanSquaredError'));
      const wide = Math.floor(SMALL_WEIGHTS / 4) + 1;
      assert.ok(none(manifestOf([4], [{ type: 'dense', units: 4, activation: 'relu' },
        { type: 'dense', units: wide, activation: 'relu' }])), 'a large layer after the first');
    });
  });
}

// web/src/evaluation.js in Node on the cpu backend: the figures from probabilities (against
// hand-counted ones), and the probabilities of a feature head (stored features reused, missing
// ones computed and kept) and of a merged model (from pixels), equal to running each image
// alone, with no tensor leaked.
//   cd web && node --test test/evaluation.test.mjs
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { evaluateHead, headProbabilities, heldOut, scoreHeldOut } from '../src/evaluation.js';
import { buildHead, mergeModels } from '../src/models.js';
import { preprocess } from '../src/preprocess.js';
import { Project } from '../src/project.js';

describe('scoreHeldOut', () => {
  const classes = ['a', 'b', 'c'];
  const ex = (id, label) => ({ id, label, name: `${id}.jpg` });

  test('accuracy, per class (a class with nothing held out: count 0, accuracy null), matrix, wrong by confidence', () => {
    const examples = [ex('a1', 'a'), ex('a2', 'a'), ex('a3', 'a'), ex('b1', 'b'), ex('b2', 'b')];
    const probabilities = new Float32Array([
      0.8, 0.1, 0.1, // a1 -> a
      0.3, 0.6, 0.1, // a2 -> b (0.6)
      0.2, 0.1, 0.7, // a3 -> c (0.7)
      0.1, 0.9, 0.0, // b1 -> b
      0.5, 0.4, 0.1, // b2 -> a (0.5)
    ]);
    const r = scoreHeldOut({ classes, headLabels: classes, examples, probabilities });
    assert.deepEqual(r.labels, classes);
    assert.equal(r.count, 5);
    assert.equal(r.accuracy, 2 / 5);
    assert.deepEqual(r.per_class, [
      { name: 'a', correct: 1, count: 3, accuracy: 1 / 3 },
      { name: 'b', correct: 1, count: 2, accuracy: 1 / 2 },
      { name: 'c', correct: 0, count: 0, accuracy: null },
    ]);
    assert.deepEqual(r.confusion_matrix, [[1, 1, 1], [1, 1, 0], [0, 0, 0]]);
    assert.deepEqual(r.wrong.map((w) => [w.id, w.true, w.predicted, w.name]),
      [['a3', 'a', 'c', 'a3.jpg'], ['a2', 'a', 'b', 'a2.jpg'], ['b2', 'b', 'a', 'b2.jpg']]);
    assert.ok(Math.abs(r.wrong[0].confidence - 0.7) < 1e-6);
  });

  test("a head's class the project no longer has is a column of its own, not dropped", () => {
    const r = scoreHeldOut({ classes: ['a', 'b'], headLabels: ['old', 'a', 'b'],
      examples: [ex('a1', 'a'), ex('b1', 'b')], probabilities: [0.1, 0.8, 0.1, 0.6, 0.2, 0.2] });
    assert.deepEqual(r.labels, ['a', 'b', 'old']);
    assert.deepEqual(r.confusion_matrix, [[1, 0, 0], [0, 0, 1], [0, 0, 0]]);
    assert.equal(r.per_class[2].accuracy, null);
    assert.deepEqual(r.wrong.map((w) => w.predicted), ['old']);
  });

  test('nothing held out: count 0 and accuracy null, not 0', () => {
    const r = scoreHeldOut({ classes, headLabels: classes, examples: [], probabilities: [] });
    assert.equal(r.count, 0);
    assert.equal(r.accuracy, null);
    assert.ok(r.per_class.every((c) => c.count === 0 && c.accuracy === null));
    assert.deepEqual(r.confusion_matrix, [[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
  });

  test('probabilities of the wrong size are refused', () => {
    assert.throws(() => scoreHeldOut({ classes, headLabels: classes, examples: [ex('a1', 'a')], probabilities: [1, 0] }),
      /2 probabilities for 1 examples of 3 classes/);
  });
});

// A tiny site: 8x8 images, a backbone [8, 8, 3] -> [2, 2, 4] (R, G, B and their sum, pooled).
const manifest = {
  input: { height: 8, width: 8, channels: 3 },
  preprocessing: { mean: [0, 0, 0], scale: 1 / 127.5, offset: -1, channel_order: 'RGB',
    resize: { method: 'bilinear', align_corners: false, half_pixel_centers: false } },
  backbone: { output_shape: [2, 2, 4] },
  head: { layers: [{ type: 'flatten' }, { type: 'dense', units: 3, activation: 'softmax' }] },
};
const CLASSES = ['red', 'green', 'blue'];
const COLOURS = { red: [250, 10, 10], green: [10, 250, 10], blue: [10, 10, 250] };
const ROLES = ['train', 'valid', 'train', 'test', 'train'];
const examples = Array.from({ length: 15 }, (_, i) => ({
  id: `e${i}`, label: CLASSES[i % 3], role: ROLES[Math.floor(i / 3)], name: `e${i}.png`, src: `e${i}.png`,
}));
const pixelsSync = (e) => tf.tidy(() => tf.mul(tf.ones([9 + (Number(e.id.slice(1)) % 4), 10, 3], 'int32'),
  tf.tensor1d(COLOURS[e.label], 'int32')));

describe('headProbabilities and evaluateHead on cpu', () => {
  let backbone;
  let head;
  before(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
    backbone = tf.sequential({ layers: [
      tf.layers.averagePooling2d({ inputShape: [8, 8, 3], poolSize: 4 }),
      tf.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false }),
    ] });
    tf.tidy(() => backbone.layers[1].setWeights([tf.tensor4d([1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1], [1, 1, 3, 4])]));
    head = buildHead(tf, manifest, { seed: 3 });
  });

  /** The head's probabilities for one image run alone through backbone and head. */
  const alone = (model, e) => tf.tidy(() => Array.from(model.predict(preprocess(tf, pixelsSync(e), manifest)).dataSync()));

  test('a feature head: stored features reused, missing ones computed once and kept; rows equal each image alone', async () => {
    const project = new Project({ classes: CLASSES, examples });
    const held = heldOut(project);
    assert.deepEqual(held.map((e) => e.role), ['valid', 'valid', 'valid', 'test', 'test', 'test']);
    // the valid examples already have features (as training leaves them); test ones do not
    const valid = held.filter((e) => e.role === 'valid');
    project.storeFeatures(valid, { data: tf.tidy(() => backbone.predict(tf.concat(valid.map((e) => preprocess(tf, pixelsSync(e), manifest)), 0)).dataSync()),
      count: valid.length, size: 16 });
    const loaded = [];
    const loadPixels = async (e, spec) => {
      assert.equal(spec, manifest);
      loaded.push(e.id);
      return pixelsSync(e);
    };
    const baseline = tf.memory().numTensors;
    const probs = await headProbabilities({ tf, manifest, backbone, project, examples: held, loadPixels, batchSize: 4,
      head: { model: head, kind: 'head', labels: CLASSES } });
    assert.equal(tf.memory().numTensors, baseline);
    assert.deepEqual(loaded, held.filter((e) => e.role === 'test').map((e) => e.id));
    assert.ok(held.every((e) => project.features.has(e.id)));
    const merged = mergeModels(tf, backbone, head);
    held.forEach((e, i) => {
      const want = alone(merged, e);
      want.forEach((p, j) => assert.ok(Math.abs(p - probs[i * 3 + j]) < 1e-5, `${e.id}[${j}]: ${probs[i * 3 + j]} vs ${p}`));
    });
    // a second run computes nothing again
    loaded.length = 0;
    await headProbabilities({ tf, manifest, backbone, project, examples: held, loadPixels, head: { model: head, kind: 'head', labels: CLASSES } });
    assert.deepEqual(loaded, []);
  });

  test("a merged model runs from pixels, fed as its own input says; evaluateHead scores the held-out examples only", async () => {
    const project = new Project({ classes: CLASSES, examples });
    const merged = mergeModels(tf, backbone, head);
    const input = { input: manifest.input, preprocessing: manifest.preprocessing, text: 'own input' };
    const specs = new Set();
    const loadPixels = async (e, spec) => {
      specs.add(spec);
      return pixelsSync(e);
    };
    const baseline = tf.memory().numTensors;
    const r = await evaluateHead({ tf, manifest, backbone, project, loadPixels, headName: 'merged',
      head: { model: merged, kind: 'merged', labels: CLASSES, input } });
    assert.equal(tf.memory().numTensors, baseline);
    assert.deepEqual([...specs], [input]);
    assert.equal(project.features.size, 0); // pixels, not features
    assert.equal(r.count, 6);
    assert.equal(r.head, 'merged');
    assert.deepEqual(r.per_class.map((c) => c.count), [2, 2, 2]);
    // the figures are those of each image alone
    const predicted = heldOut(project).map((e) => { const p = alone(merged, e); return p.indexOf(Math.max(...p)); });
    const correct = heldOut(project).filter((e, i) => CLASSES[predicted[i]] === e.label).length;
    assert.equal(r.accuracy, correct / 6);
    assert.equal(r.confusion_matrix.flat().reduce((a, b) => a + b, 0), 6);
    assert.equal(r.wrong.length, 6 - correct);
  });

  test('each batch of a feature head runs in a task of its own (the page paints and takes input between)', async () => {
    const project = new Project({ classes: CLASSES, examples });
    const held = heldOut(project);
    project.storeFeatures(held, { data: new Float32Array(held.length * 16).fill(0.5), count: held.length, size: 16 });
    let tasks = 0; // macrotasks that ran, counted by a chain of them beside the evaluation
    let running = true;
    const counting = (async () => {
      while (running) {
        await new Promise((resolve) => setImmediate(resolve));
        tasks += 1;
      }
    })();
    const seen = [];
    await headProbabilities({ tf, manifest, backbone, project, examples: held, batchSize: 2,
      loadPixels: async () => assert.fail('the features are stored'), head: { model: head, kind: 'head', labels: CLASSES },
      onProgress: () => seen.push(tasks) });
    running = false;
    await counting;
    assert.equal(seen.length, 3);
    assert.ok(seen[1] > seen[0] && seen[2] > seen[1], `tasks run by each batch's end: ${seen}`);
  });

  test('nothing held out: no model run, count 0', async () => {
    const project = new Project({ classes: CLASSES, examples: examples.filter((e) => e.role === 'train') });
    const r = await evaluateHead({ tf, manifest, backbone, project, headName: 'x',
      loadPixels: async () => assert.fail('nothing to load'), head: { model: head, kind: 'head', labels: CLASSES } });
    assert.equal(r.count, 0);
    assert.equal(r.accuracy, null);
  });
});

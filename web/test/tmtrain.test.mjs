// web/src/tmtrain.js in Node: a Teachable-Machine-shaped model (a backbone
// model then a head model, nested as TM saves one) has its head continued on a project's
// examples: only the model's classes are used (the others named), fewer than 2 classes is
// refused, a head certain of the wrong labels is turned round, the original model is left
// as it was, Stop works, and no tensor leaks; on cpu and on wasm with the page's kernels.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../src/wasm/kernels.js';
import { compileKernels } from '../tools/wat.mjs';
import { disposeModel } from '../src/models.js';
import { Project } from '../src/project.js';
import { continueTmHead, splitTmModel, tmTrainingSet } from '../src/tmtrain.js';

const LABELS = ['red', 'green'];
const INPUT = {
  input: { height: 8, width: 8, channels: 3 },
  preprocessing: { resize: { method: 'bilinear' }, fit: 'stretch', channel_order: 'RGB', mean: [0, 0, 0],
    scale: 1 / 127, offset: -1 },
  text: 'test',
};
const hyper = { epochs: 15, batchSize: 8, learningRate: 0.05, optimizer: 'adam', loss: 'categorical_crossentropy' };
const colour = { red: [250, 10, 10], green: [10, 250, 10], blue: [10, 10, 250] };

/** TM's layout: Sequential [Sequential [backbone], Sequential [Dense relu, Dense softmax]]. */
function tmModel() {
  const backbone = tf.sequential({ layers: [
    tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 3, kernelSize: 1, useBias: false,
      weights: [tf.eye(3).reshape([1, 1, 3, 3])] }),
    tf.layers.globalAveragePooling2d({}),
  ] });
  const head = tf.sequential({ layers: [
    tf.layers.dense({ inputShape: [3], units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    tf.layers.dense({ units: 2, activation: 'softmax', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  ] });
  const model = tf.sequential();
  model.add(backbone);
  model.add(head);
  return model;
}

/** A project of these classes, perClass examples each, one in four for validation. */
function project(classes, perClass = 8) {
  const examples = [];
  for (const label of classes) {
    for (let i = 0; i < perClass; i++) {
      examples.push({ id: `${label}-${i}`, label, src: label, role: i % 4 === 3 ? 'valid' : 'train', name: `${label}-${i}` });
    }
  }
  return new Project({ classes, examples });
}

const loadPixels = async (example) => tf.tidy(() => tf.mul(tf.ones([8 + (example.name.length % 3), 8, 3], 'int32'),
  tf.tensor1d(colour[example.label], 'int32')));

function probs(model, label) {
  return tf.tidy(() => Array.from(model.predict(tf.mul(tf.ones([1, 8, 8, 3]), tf.tensor1d(colour[label]).div(127).sub(1))).dataSync()));
}

for (const backend of ['cpu', 'wasm']) describe(`tmtrain on ${backend}`, () => {
  before(async () => {
    await tf.setBackend(backend);
    await tf.ready();
    if (backend === 'wasm') installWasmKernels(tf, await compileKernels()); // as the page trains
  });

  test('splitTmModel finds the two nested models, and refuses a flat model', () => {
    const model = tmModel();
    const { backbone, head } = splitTmModel(model);
    assert.deepEqual(backbone.outputs[0].shape, [null, 3]);
    assert.deepEqual(head.outputs[0].shape, [null, 2]);
    const flat = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [8, 8, 3] }), tf.layers.dense({ units: 2 })] });
    assert.throws(() => splitTmModel(flat), /not a backbone model followed by a head model/);
    disposeModel(model);
    flat.dispose();
  });

  test('tmTrainingSet keeps the model\'s classes in its label order and names the others', () => {
    const set = tmTrainingSet(project(['green', 'blue', 'red'], 4), LABELS);
    assert.deepEqual(set.leftOut, ['blue']);
    assert.equal(set.items.length, 8);
    assert.ok(set.items.every((e, i) => LABELS[set.labelIndex[i]] === e.label));
    assert.equal(set.split.train.length + set.split.valid.length, 8);
    assert.ok(set.split.valid.every((row) => set.items[row].role === 'valid'));
    assert.throws(() => tmTrainingSet(project(['red', 'blue'], 4), LABELS),
      /needs training examples of at least 2 of those classes; the project has only red \(its blue examples are not among the model's classes\)/);
    assert.throws(() => tmTrainingSet(project(['blue'], 4), LABELS), /the project has none/);
  });

  test('continueTmHead trains a copy of the head towards the project\'s labels, the original untouched', async () => {
    const model = tmModel();
    const before = tf.memory().numTensors;
    const originalRed = probs(model, 'red');
    const stop = { requested: false, model: null };
    const result = await continueTmHead({ tf, tmHead: { model, labels: LABELS, input: INPUT }, project: project(['red', 'green', 'blue']),
      hyper, loadPixels, stop });
    assert.equal(result.epochs, hyper.epochs);
    assert.deepEqual(result.labels, LABELS);
    assert.deepEqual(result.leftOut, ['blue']);
    assert.notEqual(result.model, model);
    assert.ok(probs(result.model, 'red')[0] > 0.9, `red: ${probs(result.model, 'red')}`);
    assert.ok(probs(result.model, 'green')[1] > 0.9, `green: ${probs(result.model, 'green')}`);
    assert.deepEqual(probs(model, 'red'), originalRed);
    assert.ok(stop.model, 'the Stop button was given the model being trained');
    disposeModel(result.model);
    assert.equal(tf.memory().numTensors, before);
    disposeModel(model);
  });

  test('a head certain of the wrong labels (probabilities exactly 0 and 1) is turned round', async () => {
    // hidden relu(x + 1) never dies on [-1, 1] features; logits of about +-94 saturate the softmax
    // in float32, where a cross-entropy on probabilities would pass no gradient at all
    const backbone = tf.sequential({ layers: [tf.layers.globalAveragePooling2d({ inputShape: [8, 8, 3] })] });
    const head = tf.sequential({ layers: [
      tf.layers.dense({ inputShape: [3], units: 3, activation: 'relu', weights: [tf.eye(3), tf.ones([3])] }),
      tf.layers.dense({ units: 2, activation: 'softmax', useBias: false, weights: [tf.tensor2d([[50, -50], [-50, 50], [0, 0]])] }),
    ] });
    const model = tf.sequential();
    model.add(backbone);
    model.add(head);
    const swapped = [...LABELS].reverse(); // the model calls red "green" and green "red"
    assert.deepEqual(probs(model, 'red'), [1, 0]);
    const turned = await continueTmHead({ tf, project: project(LABELS), hyper, loadPixels, stop: { requested: false, model: null },
      tmHead: { model, labels: swapped, input: INPUT } });
    assert.ok(probs(turned.model, 'red')[1] > 0.9, `red: ${probs(turned.model, 'red')}`);
    assert.ok(probs(turned.model, 'green')[0] > 0.9, `green: ${probs(turned.model, 'green')}`);
    [model, turned.model].forEach(disposeModel);
  });

  test('Stop before training gives null, during training ends it early; nothing leaks', async () => {
    const model = tmModel();
    const before = tf.memory().numTensors;
    const early = await continueTmHead({ tf, tmHead: { model, labels: LABELS, input: INPUT }, project: project(LABELS),
      hyper, loadPixels, stop: { requested: true, model: null } });
    assert.equal(early, null);
    assert.equal(tf.memory().numTensors, before);
    const stop = { requested: false, model: null };
    const result = await continueTmHead({ tf, tmHead: { model, labels: LABELS, input: INPUT }, project: project(LABELS),
      hyper, loadPixels, stop, onProgress: (done, total, text) => { if (text.startsWith('epoch 2/')) stop.model.stopTraining = true; } });
    assert.equal(result.epochs, 2);
    assert.equal(result.stopped, true);
    disposeModel(result.model);
    assert.equal(tf.memory().numTensors, before);
    disposeModel(model);
  });
});

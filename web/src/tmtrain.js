// Continuing a loaded Teachable Machine model's head on the page's project (TM #412, ml5
// #754): the model is a backbone model followed by a head model (TM's own layout, and
// ours from `export --format tm`); a copy of it is made, the project's examples of the
// model's classes go through the copy's backbone as the model is fed (224x224, x / 127 - 1),
// and the copy's head trains on them from its own weights. The copy, image in and
// probabilities out, is the result. No DOM here: web/test/tmtrain.test.mjs runs it in Node.
import { disposeModel } from './models.js';
import { FEATURE_BATCH, extractFeatures, trainHead } from './train.js';

/** The model's backbone and head (its two nested models), or an Error saying why not. */
export function splitTmModel(model) {
  const stages = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  if (stages.length !== 2 || !stages.every((l) => Array.isArray(l.layers))) {
    throw new Error('this model is not a backbone model followed by a head model (as Teachable Machine '
      + 'saves one), so the page cannot tell which layers to train');
  }
  return { backbone: stages[0], head: stages[1] };
}

/**
 * The project's train and valid examples whose class is one of the model's labels, each
 * with its index among those labels; the classes left out (not among the labels) are named.
 * @returns {{items, labelIndex: number[], split: {train: number[], valid: number[]}, leftOut: string[]}}
 */
export function tmTrainingSet(project, labels) {
  const set = project.trainingSet();
  const train = [];
  const valid = [];
  const items = [];
  const leftOut = new Set();
  set.items.forEach((example, i) => {
    if (!labels.includes(example.label)) {
      leftOut.add(example.label);
      return;
    }
    (set.split.valid.includes(i) ? valid : train).push(items.length);
    items.push(example);
  });
  const labelIndex = items.map((e) => labels.indexOf(e.label));
  const trained = new Set(train.map((row) => labelIndex[row]));
  if (trained.size < 2) {
    const have = [...trained].map((k) => labels[k]);
    throw new Error(`continuing the head of a model of ${labels.join(', ')} needs training examples of at least 2 `
      + `of those classes; the project has ${have.length ? `only ${have.join(', ')}` : 'none'}`
      + (leftOut.size ? ` (its ${[...leftOut].join(', ')} examples are not among the model's classes)` : ''));
  }
  return { items, labelIndex, split: { train, valid }, leftOut: [...leftOut] };
}

/**
 * Makes the head output logits (its last layer's softmax taken off) until the returned
 * function puts the softmax back. A trained head's probabilities saturate to 0 and 1 in
 * float32, where TF.js' categoricalCrossentropy clips them and passes no gradient: a head
 * that is confidently wrong would never move. Cross-entropy on the logits always does.
 */
function logitsWhileTraining(tf, head) {
  const last = head.layers[head.layers.length - 1];
  const softmax = last.activation;
  if (!softmax || softmax.getClassName().toLowerCase() !== 'softmax') {
    throw new Error(`the model's head ends with ${last.name}, not a softmax layer; the page trains softmax heads only`);
  }
  last.activation = tf.layers.activation({ activation: 'linear' }).activation;
  return () => {
    last.activation = softmax;
  };
}

/** An independent copy of a layers model: its own weights, through its own save artifacts. */
async function copyOf(tf, model) {
  let artifacts = null;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}

/**
 * Trains a copy of a loaded Teachable Machine model's head on the project's examples.
 * @param {object} opts {tf, tmHead: the Head in use ({model, labels, input}), project, hyper
 *   ({epochs, batchSize, learningRate, optimizer, loss}), loadPixels(example), stop ({requested,
 *   model}, shared with the Stop button), charts (trainHead's), onStatus(text), onProgress(done, total, text)}
 * @returns {Promise<object|null>} trainHead's result with `model` the whole copy (image in),
 *   `labels` and `leftOut`; null when stopped before training started
 */
export async function continueTmHead({ tf, tmHead, project, hyper, loadPixels, stop, charts = null,
  onStatus = () => {}, onProgress = () => {} }) {
  splitTmModel(tmHead.model); // refuse before any work
  const set = tmTrainingSet(project, tmHead.labels);
  const copy = await copyOf(tf, tmHead.model);
  try {
    const { backbone, head } = splitTmModel(copy);
    const spec = { ...tmHead.input, backbone: { output_shape: backbone.outputs[0].shape.slice(1) } };
    onStatus(`Extracting the Teachable Machine model's features of ${set.items.length} images…`);
    const feats = await extractFeatures({
      tf, backbone, manifest: spec, items: set.items, loadPixels, batchSize: FEATURE_BATCH,
      onProgress: (done, total) => onProgress(done, total, `features ${done}/${total}`),
      shouldStop: () => stop.requested,
    });
    if (!feats) {
      disposeModel(copy);
      return null;
    }
    onStatus(`Continuing the head's training for ${hyper.epochs} epochs…`);
    const restoreSoftmax = logitsWhileTraining(tf, head);
    const onLogits = { ...hyper, loss: (labels, logits) => tf.losses.softmaxCrossEntropy(labels, logits) };
    const result = await trainHead({
      tf, manifest: spec, feats, labelIndex: set.labelIndex, split: set.split, hyper: onLogits, head, charts,
      onModel: (model) => {
        stop.model = model;
        if (stop.requested) model.stopTraining = true;
      },
      onEpoch: (epoch, logs) => {
        const acc = logs.acc != null ? `, accuracy ${logs.acc.toFixed(3)}` : '';
        onProgress(epoch, hyper.epochs, `epoch ${epoch}/${hyper.epochs}: loss ${logs.loss.toFixed(4)}${acc}`);
      },
    }).finally(restoreSoftmax);
    return { ...result, model: copy, labels: [...tmHead.labels], leftOut: set.leftOut };
  } catch (e) {
    disposeModel(copy);
    throw e;
  }
}

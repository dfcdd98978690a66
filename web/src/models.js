// Models: load the backbone and head named by the manifest, predict, build a fresh
// head from manifest.head.layers, merge backbone + head into one model, save, load.
import { compilePlan } from './fused.js';

function sameShape(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function shapeText(shape) {
  return `[${shape.map((d) => (d == null ? 'null' : d)).join(', ')}]`;
}

/**
 * Disposes a model and every weight it holds. model.dispose() alone leaves the weights of a
 * nested model (Teachable Machine's head, ours in a `tm` export): TF.js counts the nested
 * model's own graph and its use in the outer one, and the outer dispose undoes only the latter.
 */
export function disposeModel(model) {
  const weights = model.weights.map((w) => w.read());
  model.dispose();
  weights.forEach((t) => t.dispose()); // a tensor already disposed is left as it is
}

/**
 * A layers model's files (model.json + weights) fetched, not built: that needs no backend, so
 * the page starts them while its backend compiles. A failure is reported by loadModel.
 * @returns {Promise<object>} the model's artifacts, for loadModel's `files`
 */
export function fetchModel(tf, path, pageUrl) {
  const request = tf.io.http(new URL(path, pageUrl).href).load();
  request.catch(() => {}); // awaited (and reported) by loadModel
  return request;
}

/** Loads a layers model (from `files`, fetchModel's, if given); the error names the file and what it is for. */
export async function loadModel(tf, path, pageUrl, what, files = null) {
  const url = new URL(path, pageUrl).href;
  try {
    return await tf.loadLayersModel(files ? { load: () => files } : url);
  } catch (e) {
    throw new Error(`could not load the ${what} model ${path}: ${e.message}`);
  }
}

/** Checks that the backbone and the head fit the manifest and each other. */
export function checkModels(manifest, backbone, head) {
  const { height, width, channels } = manifest.input;
  const featureShape = manifest.backbone.output_shape;
  const inShape = backbone.inputs[0].shape.slice(1);
  if (!sameShape(inShape, [height, width, channels])) {
    throw new Error(`${manifest.backbone.path} takes ${shapeText(inShape)}, the manifest says `
      + `${shapeText([height, width, channels])}`);
  }
  const outShape = backbone.outputs[0].shape.slice(1);
  if (!sameShape(outShape, featureShape)) {
    throw new Error(`${manifest.backbone.path} gives ${shapeText(outShape)}, the manifest says `
      + `${shapeText(featureShape)}`);
  }
  if (head) checkHead(manifest, head, manifest.head.path);
}

/** What a loaded model is: 'head' (takes features) or 'merged' (takes images); throws if neither. */
export function modelKind(manifest, model) {
  const inShape = model.inputs[0].shape.slice(1);
  const { height, width, channels } = manifest.input;
  if (sameShape(inShape, [height, width, channels])) return 'merged';
  if (sameShape(inShape, manifest.backbone.output_shape)) return 'head';
  throw new Error(`the model takes ${shapeText(inShape)}: neither images `
    + `${shapeText([height, width, channels])} nor backbone features `
    + `${shapeText(manifest.backbone.output_shape)}`);
}

/** Checks a head's (or merged model's) output: one probability per manifest label. */
export function checkHead(manifest, model, name) {
  const out = model.outputs[0].shape;
  if (out.length !== 2 || out[1] !== manifest.labels.length) {
    throw new Error(`${name} outputs ${shapeText(out)}, expected ${manifest.labels.length} `
      + `classes (${manifest.labels.join(', ')})`);
  }
}

/**
 * A model's output for a whole batch in inference mode. model.predict() would first copy
 * the batch with a Slice (its batching loop), time the backbone does not need to spend.
 */
export function run(model, x) {
  return model.apply(x, { training: false });
}

let fuse = true;
const plans = new WeakMap(); // model -> compilePlan()'s result

/** Whether models (the backbone and the head alike) run as their fused plans (fused.js) where they can: ?fuse=0 turns it off. */
export function useFusedPlans(on) {
  fuse = Boolean(on);
}

/** A model's output for x: its fused plan (fused.js) when it has one, else model.apply. */
export function runPlanned(tf, model, x) {
  if (!fuse) return run(model, x);
  let plan = plans.get(model);
  if (!plan) {
    plan = compilePlan(tf, model);
    plans.set(model, plan);
  }
  return plan.run ? plan.run(x) : run(model, x);
}

/** Warms the kernels up once so the first real prediction is not the slow one (head: may be null). */
export function warmUp(tf, backbone, head, manifest) {
  const { height, width, channels } = manifest.input;
  tf.tidy(() => {
    const feats = runPlanned(tf, backbone, tf.zeros([1, height, width, channels]));
    const out = head ? runPlanned(tf, head, feats) : feats;
    out.dataSync();
  });
}

/** Backbone features for a preprocessed batch (tf.Tensor4D); caller owns the result. */
export function features(tf, backbone, x) {
  return tf.tidy(() => runPlanned(tf, backbone, x));
}

/**
 * Class probabilities [n, classes] for a preprocessed batch; caller owns the result.
 * @param {{model: object, kind: 'head'|'merged'}} classifier
 */
export function classify(tf, backbone, classifier, x) {
  return tf.tidy(() => (classifier.kind === 'merged'
    ? runPlanned(tf, classifier.model, x)
    : runPlanned(tf, classifier.model, runPlanned(tf, backbone, x))));
}

/**
 * A fresh, untrained head: manifest.head.layers' hidden layers on the backbone's feature
 * shape, then a softmax dense of `classes` outputs (default: the manifest's output layer,
 * i.e. the Python head's classes). Dense kernels start as Keras starts them
 * (glorot_uniform, from `seed`; TF.js' default truncated glorot_normal is much slower to draw).
 * `blank`: zero kernels, for a head whose weights are set right after (the worker's trained
 * head): drawing 1.25M random numbers here takes a core the worker's training is using.
 */
export function buildHead(tf, manifest, { seed = 1, classes, blank = false } = {}) {
  const specs = manifest.head.layers;
  if (!Array.isArray(specs) || specs.length === 0) throw new Error('manifest.json has no head.layers');
  const output = specs[specs.length - 1];
  if (output.type !== 'dense' || output.activation !== 'softmax') {
    throw new Error(`manifest.json: head.layers ends with ${JSON.stringify(output)}, expected a softmax dense layer`);
  }
  const units = classes == null ? output.units : classes;
  if (!(Number.isInteger(units) && units >= 2)) throw new Error(`a head needs at least 2 classes, got ${units}`);
  const model = tf.sequential({ name: 'browser_head' });
  const inputShape = manifest.backbone.output_shape;
  // Features that are already a vector (e.g. InceptionV3's pooled 2048) skip flatten and
  // pooling, as the Python head does: TF.js' Flatten refuses rank-2 input.
  const vector = inputShape.length === 1;
  const kept = [...specs.slice(0, -1), { ...output, units }]
    .filter((spec) => !(vector && ['flatten', 'global_average_pooling'].includes(spec.type)));
  kept.forEach((spec, i) => {
    const first = i === 0 ? { inputShape } : {};
    switch (spec.type) {
      case 'flatten':
        model.add(tf.layers.flatten(first));
        break;
      case 'global_average_pooling':
        model.add(tf.layers.globalAveragePooling2d(first));
        break;
      case 'dropout':
        model.add(tf.layers.dropout({ ...first, rate: spec.rate }));
        break;
      case 'dense':
        model.add(tf.layers.dense({ ...first, units: spec.units, activation: spec.activation || 'linear',
          kernelInitializer: blank ? 'zeros' : tf.initializers.glorotUniform({ seed: seed + i }) }));
        break;
      default:
        throw new Error(`manifest.json: unknown head layer type ${JSON.stringify(spec.type)}`);
    }
  });
  return model;
}

/**
 * One tf.model from the backbone's input to the head's output. The layers (and so
 * the weights) are shared with the backbone and head, not copied.
 */
export function mergeModels(tf, backbone, head) {
  let y = backbone.outputs[0];
  const layers = head.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const linear = head.layers.length > 0 && head.outputs.length === 1;
  if (linear && head.getClassName() === 'Sequential') {
    for (const layer of layers) y = layer.apply(y);
  } else {
    y = head.apply(y);
  }
  return tf.model({ inputs: backbone.inputs, outputs: y, name: 'tfjs_transfer_merged' });
}

/** Loads a model the user picked (model.json + .bin files) and says what it is. */
export async function loadFromFiles(tf, manifest, fileList) {
  const files = Array.from(fileList);
  const json = files.find((f) => f.name.toLowerCase().endsWith('.json'));
  if (!json) throw new Error('pick the model .json file together with its weight .bin file(s)');
  const weights = files.filter((f) => f !== json);
  let model;
  try {
    model = await tf.loadLayersModel(tf.io.browserFiles([json, ...weights]));
  } catch (e) {
    throw new Error(`could not load ${json.name}: ${e.message}`);
  }
  try {
    const kind = modelKind(manifest, model);
    checkHead(manifest, model, json.name);
    return { model, kind, name: json.name };
  } catch (e) {
    model.dispose();
    throw new Error(`${json.name}: ${e.message}`);
  }
}

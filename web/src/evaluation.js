// Evaluation of the head in use on the project's held-out examples (every example whose role
// is not 'train': never trained on): accuracy, accuracy per class, the confusion matrix and
// the examples it gets wrong. No DOM (ui-evaluation.js draws it): web/test/evaluation.test.mjs
// runs it in Node.
import { FEATURE_BATCH, extractFeatures } from './train.js';
import { classify, run } from './models.js';
import { preprocess } from './preprocess.js';
import { yieldToPage } from './tasks.js';
import { withoutPacking } from './wasm/matmul.js';

/** The examples the head never trained on, in project order. */
export function heldOut(project) {
  return project.examples.filter((e) => e.role !== 'train');
}

/**
 * The figures of an evaluation. Rows of the confusion matrix are the true class, columns
 * the predicted one, both in `labels` order: the project's classes, then any class the head
 * predicts that the project no longer has (so no prediction is dropped).
 * @param {{classes: string[], headLabels: string[], examples: {id, label, name}[],
 *   probabilities: ArrayLike<number>}} opts probabilities: row i (headLabels.length wide) for examples[i]
 * @returns {{labels: string[], count: number, accuracy: number|null,
 *   per_class: {name: string, correct: number, count: number, accuracy: number|null}[],
 *   confusion_matrix: number[][],
 *   wrong: {id: string, name: string, true: string, predicted: string, confidence: number}[]}}
 *   accuracy is null where there is nothing to score (not 0); wrong is sorted by the
 *   confidence of the wrong prediction, most confident first (ties keep project order)
 */
export function scoreHeldOut({ classes, headLabels, examples, probabilities }) {
  const k = headLabels.length;
  if (probabilities.length !== examples.length * k) {
    throw new Error(`${probabilities.length} probabilities for ${examples.length} examples of ${k} classes`);
  }
  const labels = [...classes, ...headLabels.filter((l) => !classes.includes(l))];
  const index = new Map(labels.map((l, i) => [l, i]));
  const matrix = labels.map(() => labels.map(() => 0));
  const wrong = [];
  examples.forEach((example, row) => {
    const truth = index.get(example.label);
    if (truth == null) throw new Error(`example ${example.id}: class ${JSON.stringify(example.label)} is not in the project`);
    let best = 0;
    for (let j = 1; j < k; j++) if (probabilities[row * k + j] > probabilities[row * k + best]) best = j;
    const predicted = index.get(headLabels[best]);
    matrix[truth][predicted] += 1;
    if (predicted !== truth) {
      wrong.push({ id: example.id, name: example.name, true: example.label, predicted: headLabels[best],
        confidence: Number(probabilities[row * k + best]), row });
    }
  });
  const perClass = labels.map((name, i) => {
    const count = matrix[i].reduce((a, b) => a + b, 0);
    const correct = matrix[i][i];
    return { name, correct, count, accuracy: count ? correct / count : null };
  });
  const correct = perClass.reduce((a, c) => a + c.correct, 0);
  wrong.sort((a, b) => (b.confidence - a.confidence) || (a.row - b.row));
  return {
    labels,
    count: examples.length,
    accuracy: examples.length ? correct / examples.length : null,
    per_class: perClass,
    confusion_matrix: matrix,
    wrong: wrong.map(({ row, ...w }) => w),
  };
}

/**
 * The head's probabilities for these examples, row i for examples[i] (head.labels.length
 * wide). A head taking features runs on the project's stored features (those missing are
 * computed first and kept, as training does); a merged model (a loaded model or a Teachable
 * Machine export) runs on the pixels, fed as its `input` says. Batches run inside tf.tidy,
 * each in a task of its own, their products without packing the head's weights for XNNPACK
 * (wasm/matmul.js): after a Train, the held-out set was one long main-thread task, most of
 * it packing the new head's weights for a few batches (README, Performance).
 * @param {object} opts {tf, manifest, backbone, head: {model, kind, labels, input?}, project,
 *   examples, loadPixels(example, spec) -> Promise<Tensor3D> (spec: the manifest or the head's
 *   input), batchSize, onProgress(done, total), worker (a TfWorker computing the missing
 *   features; null: here)}
 * @returns {Promise<Float32Array>}
 */
export async function headProbabilities({ tf, manifest, backbone, head, project, examples, loadPixels,
  batchSize = 32, onProgress = () => {}, worker = null }) {
  const k = head.labels.length;
  const out = new Float32Array(examples.length * k);
  if (head.kind === 'merged') {
    const spec = head.input || manifest;
    const step = Math.min(batchSize, 16); // decoded images are large: fewer at a time
    for (let start = 0; start < examples.length; start += step) {
      if (start > 0) await yieldToPage();
      const batch = examples.slice(start, start + step);
      const pixels = await Promise.all(batch.map((e) => loadPixels(e, spec)));
      let probs;
      try {
        probs = withoutPacking(() => tf.tidy(() => classify(tf, backbone, head,
          tf.concat(pixels.map((p) => preprocess(tf, p, spec)), 0))));
      } finally {
        pixels.forEach((p) => p.dispose());
      }
      out.set(await readAndDispose(probs, k), start * k);
      onProgress(start + batch.length, examples.length);
    }
    return out;
  }
  const missing = project.withoutFeatures(examples);
  if (missing.length) {
    const opts = { tf, backbone, manifest, items: missing, batchSize: FEATURE_BATCH,
      loadPixels: (e) => loadPixels(e, manifest),
      onProgress: (done, total) => onProgress(done, total + examples.length) };
    const feats = await (worker ? worker.extract(opts) : extractFeatures(opts));
    project.storeFeatures(missing, feats);
  }
  const shape = manifest.backbone.output_shape;
  for (let start = 0; start < examples.length; start += batchSize) {
    if (start > 0) await yieldToPage();
    const rows = project.featureRows(examples.slice(start, start + batchSize));
    const probs = withoutPacking(() => tf.tidy(() => run(head.model, tf.tensor(rows.data, [rows.count, ...shape]))));
    out.set(await readAndDispose(probs, k), start * k);
    onProgress(missing.length + start + rows.count, missing.length + examples.length);
  }
  return out;
}

async function readAndDispose(tensor, k) {
  try {
    if (tensor.shape[1] !== k) throw new Error(`the head gives ${tensor.shape[1]} outputs for ${k} labels`);
    return await tensor.data();
  } finally {
    tensor.dispose();
  }
}

/**
 * Evaluates the head on the project's held-out examples: scoreHeldOut's figures plus `head`
 * (what the caller calls it) and, with nothing held out, count 0 and no probabilities computed.
 * @param {object} opts headProbabilities' options without `examples`, plus headName
 */
export async function evaluateHead(opts) {
  const examples = heldOut(opts.project);
  const probabilities = examples.length ? await headProbabilities({ ...opts, examples }) : new Float32Array(0);
  return { ...scoreHeldOut({ classes: opts.project.classes, headLabels: opts.head.labels, examples, probabilities }),
    head: opts.headName || '' };
}

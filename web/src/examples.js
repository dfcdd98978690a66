// Adding examples to the project: each file is decoded (a few at a time, never all at
// once) and its backbone features computed in small batches, in the TF.js worker
// (tfworker.js) where there is one, else here with a yield to the page between batches. An example enters the project
// with its features, its Blob as src. A file that is not an image is skipped and named.
import { InputError, decodeToCanvas } from './data.js';
import { features } from './models.js';
import { pixelsOf } from './predict.js';
import { preprocess } from './preprocess.js';
import { yieldToPage } from './tasks.js';

/**
 * Adds items to the project's class `label`, features included.
 * @param {object} opts {tf, manifest, backbone, project, label, items: [{blob, name}],
 *   batchSize (images per backbone call), onProgress(done, total), shouldStop(), onAdded(examples)
 *   (each batch's new examples, as they enter the project), worker (a
 *   TfWorker: decode and backbone run there, off the page's thread; null: here)}
 * @returns {Promise<{added: object[], skipped: {name: string, reason: string}[]}>}
 */
export async function addWithFeatures({ tf, manifest, backbone, project, label, items, batchSize = 4,
  onProgress = () => {}, shouldStop = () => false, worker = null, onAdded = () => {} }) {
  const added = [];
  const skipped = [];
  for (let start = 0; start < items.length; start += batchSize) {
    if (shouldStop() || !project.classes.includes(label)) {
      const why = shouldStop() ? 'stopped' : `class "${label}" was deleted`;
      for (const item of items.slice(start)) skipped.push({ name: item.name, reason: why });
      break;
    }
    const part = items.slice(start, start + batchSize);
    const { kept, data, failed } = worker
      ? await featuresInWorker(worker, part, batchSize)
      : await featuresHere(tf, manifest, backbone, part);
    skipped.push(...failed);
    if (kept.length) {
      const size = data.length / kept.length;
      if (project.featureSize != null && project.featureSize !== size) {
        throw new Error(`the backbone gives features of size ${size}, the project keeps ${project.featureSize}`);
      }
      if (project.classes.includes(label)) {
        const examples = kept.map((item) => project.addNew(label, { src: item.blob, name: item.name }));
        project.storeFeatures(examples, { data, count: examples.length, size });
        added.push(...examples);
        onAdded(examples);
      }
    }
    onProgress(Math.min(start + batchSize, items.length), items.length);
    await yieldToPage();
  }
  return { added, skipped };
}

/** Decodes and runs the backbone on the page's thread: the decode and the run in separate tasks. */
async function featuresHere(tf, manifest, backbone, part) {
  const kept = [];
  const canvases = [];
  const failed = [];
  for (const item of part) {
    try {
      canvases.push(await decodeToCanvas(item.blob, item.name));
      kept.push(item);
    } catch (e) {
      failed.push({ name: item.name, reason: e instanceof InputError ? e.message : `${item.name}: ${e.message}` });
    }
  }
  if (!kept.length) return { kept, data: null, failed };
  await yieldToPage();
  const out = tf.tidy(() => features(tf, backbone, tf.concat(
    canvases.map((canvas) => preprocess(tf, pixelsOf(tf, canvas, manifest), manifest)), 0)));
  try {
    return { kept, data: await out.data(), failed };
  } finally {
    out.dispose();
  }
}

/** The same in the TF.js worker: decode and backbone off the page's thread. */
async function featuresInWorker(worker, part, batchSize) {
  const rows = await worker.rows(part.map((item) => ({ src: item.blob, name: item.name })), batchSize);
  const skippedAt = new Set(rows.skipped.map((s) => s.index));
  const failed = rows.skipped.map((s) => ({ name: part[s.index].name, reason: s.reason }));
  const kept = part.filter((item, i) => !skippedAt.has(i));
  const data = new Float32Array(kept.length * rows.size);
  let k = 0;
  part.forEach((item, i) => {
    if (!skippedAt.has(i)) data.set(rows.data.subarray(i * rows.size, (i + 1) * rows.size), (k++) * rows.size);
  });
  return { kept, data, failed };
}

/** The page's message about skipped files: each named (the first few, then how many more). */
export function skippedText(skipped, shown = 5) {
  if (!skipped.length) return '';
  const named = skipped.slice(0, shown).map((s) => s.reason).join(' ');
  const more = skipped.length > shown ? ` …and ${skipped.length - shown} more skipped.` : '';
  return `Skipped ${skipped.length} file${skipped.length === 1 ? '' : 's'}: ${named}${more}`;
}

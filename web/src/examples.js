// Adding examples to the project: each file is decoded (a few at a time, never all at
// once) and its backbone features computed in small batches, with a yield to the page
// between batches so that no main-thread task grows long. An example enters the project
// with its features, its Blob as src. A file that is not an image is skipped and named.
import { InputError, decodeToCanvas } from './data.js';
import { features } from './models.js';
import { pixelsOf } from './predict.js';
import { preprocess } from './preprocess.js';

/** Lets input events and rendering run between batches (a macrotask, not a frame's wait). */
export function yieldToPage() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * Adds items to the project's class `label`, features included.
 * @param {object} opts {tf, manifest, backbone, project, label, items: [{blob, name}],
 *   batchSize (images per backbone call), onProgress(done, total), shouldStop()}
 * @returns {Promise<{added: object[], skipped: {name: string, reason: string}[]}>}
 */
export async function addWithFeatures({ tf, manifest, backbone, project, label, items, batchSize = 4,
  onProgress = () => {}, shouldStop = () => false }) {
  const added = [];
  const skipped = [];
  for (let start = 0; start < items.length; start += batchSize) {
    if (shouldStop() || !project.classes.includes(label)) {
      const why = shouldStop() ? 'stopped' : `class "${label}" was deleted`;
      for (const item of items.slice(start)) skipped.push({ name: item.name, reason: why });
      break;
    }
    const batch = [];
    for (const item of items.slice(start, start + batchSize)) {
      try {
        batch.push({ item, canvas: await decodeToCanvas(item.blob, item.name) });
      } catch (e) {
        skipped.push({ name: item.name, reason: e instanceof InputError ? e.message : `${item.name}: ${e.message}` });
      }
    }
    if (batch.length) {
      await yieldToPage(); // the decode's drawing and the backbone run in separate tasks
      const out = tf.tidy(() => features(tf, backbone, tf.concat(
        batch.map(({ canvas }) => preprocess(tf, pixelsOf(tf, canvas, manifest), manifest)), 0)));
      let data;
      try {
        data = await out.data();
      } finally {
        out.dispose();
      }
      const size = data.length / batch.length;
      if (project.featureSize != null && project.featureSize !== size) {
        throw new Error(`the backbone gives features of size ${size}, the project keeps ${project.featureSize}`);
      }
      if (project.classes.includes(label)) {
        const examples = batch.map(({ item }) => project.addNew(label, { src: item.blob, name: item.name }));
        project.storeFeatures(examples, { data, count: examples.length, size });
        added.push(...examples);
      }
    }
    onProgress(Math.min(start + batchSize, items.length), items.length);
    await yieldToPage();
  }
  return { added, skipped };
}

/** The page's message about skipped files: each named (the first few, then how many more). */
export function skippedText(skipped, shown = 5) {
  if (!skipped.length) return '';
  const named = skipped.slice(0, shown).map((s) => s.reason).join(' ');
  const more = skipped.length > shown ? ` …and ${skipped.length - shown} more skipped.` : '';
  return `Skipped ${skipped.length} file${skipped.length === 1 ? '' : 's'}: ${named}${more}`;
}

// One image through the head in use: (file ->) canvas -> pixels -> preprocess -> backbone -> head.
import { canvasToPixels, decodeToCanvas } from './data.js';
import { classify } from './models.js';
import { preprocess } from './preprocess.js';

/** A decoded image canvas as RGB pixels, as the manifest's input wants them. */
export function pixelsOf(tf, canvas, manifest) {
  return canvasToPixels(tf, canvas, manifest.input.channels);
}

/**
 * The head's probabilities for a decoded image canvas, in the order of head.labels. A head
 * with its own `input` (a Teachable Machine model) is fed as it says, not as the manifest does.
 */
export async function probabilities(tf, manifest, backbone, head, canvas) {
  const spec = head.input || manifest;
  const out = tf.tidy(() => classify(tf, backbone, head, preprocess(tf, pixelsOf(tf, canvas, spec), spec)));
  try {
    return Array.from(await out.data());
  } finally {
    out.dispose();
  }
}

/**
 * A new image file (a dropped, pasted or chosen File, or any image Blob): decoded onto a
 * canvas as every image is (data.js) and predicted. The page's one path for a new file, which
 * `make bench` times as "predict a new image from a file".
 * @returns {Promise<{canvas: HTMLCanvasElement, probabilities: number[]}>} the canvas, for the preview
 * @throws {InputError} not an image, too large, or undecodable
 */
export async function predictFile(tf, manifest, backbone, head, file, name) {
  const canvas = await decodeToCanvas(file, name);
  return { canvas, probabilities: await probabilities(tf, manifest, backbone, head, canvas) };
}

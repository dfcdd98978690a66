// One image through the head in use: (file ->) pixels -> preprocess -> backbone -> head.
import { canvasToPixels, decodeToPixels } from './data.js';
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
  return probabilitiesOfPixels(tf, spec, backbone, head, pixelsOf(tf, canvas, spec));
}

/**
 * A new image file (a dropped, pasted or chosen File, or any image Blob): decoded to pixels
 * as every image is (data.js: the canvas's pixels, without drawing one where the decoder's
 * own frame holds them) and predicted. The page's one path for a new file, which `make bench`
 * times as "predict a new image from a file". The caller previews the file itself.
 * @returns {Promise<number[]>} the probabilities, in the order of head.labels
 * @throws {InputError} not an image, too large, or undecodable
 */
export async function predictFile(tf, manifest, backbone, head, file, name) {
  const spec = head.input || manifest;
  return probabilitiesOfPixels(tf, spec, backbone, head, await decodeToPixels(tf, file, name, spec.input.channels));
}

/** The head's probabilities for RGB pixels (a tf.Tensor3D, disposed here) fed as `spec` says. */
async function probabilitiesOfPixels(tf, spec, backbone, head, pixels) {
  let out;
  try {
    out = tf.tidy(() => classify(tf, backbone, head, preprocess(tf, pixels, spec)));
  } finally {
    pixels.dispose();
  }
  try {
    return Array.from(await out.data());
  } finally {
    out.dispose();
  }
}

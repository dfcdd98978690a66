// One image through the head in use: canvas -> pixels -> preprocess -> backbone -> head.
import { canvasToPixels } from './data.js';
import { classify } from './models.js';
import { preprocess } from './preprocess.js';

/** A decoded image canvas as RGB pixels, as the manifest's input wants them. */
export function pixelsOf(tf, canvas, manifest) {
  return canvasToPixels(tf, canvas, manifest.input.channels);
}

/** The head's probabilities for a decoded image canvas, in the order of head.labels. */
export async function probabilities(tf, manifest, backbone, head, canvas) {
  const out = tf.tidy(() => classify(tf, backbone, head, preprocess(tf, pixelsOf(tf, canvas, manifest), manifest)));
  try {
    return Array.from(await out.data());
  } finally {
    out.dispose();
  }
}

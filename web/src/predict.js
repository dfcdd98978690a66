// One image through the head in use: canvas -> pixels -> preprocess -> backbone -> head.
import { canvasToPixels } from './data.js';
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

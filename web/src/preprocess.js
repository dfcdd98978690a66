// Image preprocessing shared by the page and the Node parity script.
// It imports nothing: callers pass the tf namespace, so the same file runs with
// @tensorflow/tfjs in the browser and in Node. Every number comes from the manifest.

/**
 * Turns decoded RGB pixels into the backbone's input batch of one.
 * float32 -> resizeBilinear(h, w, align_corners, half_pixel_centers) (or, with
 * fit "crop_or_pad", a centre crop / zero pad without resampling) -> optional BGR
 * -> (x - mean) * scale + offset -> [1, h, w, c].
 * @param {object} tf the tf namespace
 * @param {object} pixels tf.Tensor3D [H, W, C], int32 or float32 values 0..255
 * @param {object} manifest the site's manifest.json
 * @returns {object} tf.Tensor4D [1, height, width, channels] float32
 */
export function preprocess(tf, pixels, manifest) {
  const { height, width, channels } = manifest.input;
  const p = manifest.preprocessing;
  const resize = p.resize || {};
  if (pixels.rank !== 3) throw new Error(`preprocess expects a 3-D tensor, got rank ${pixels.rank}`);
  if (channels != null && pixels.shape[2] !== channels) {
    throw new Error(`preprocess expects ${channels} channels, got ${pixels.shape[2]}`);
  }
  const fused = resizeNormalise(tf, pixels, manifest);
  if (fused) return fused;
  return tf.tidy(() => {
    let x = tf.cast(pixels, 'float32');
    const method = resize.method || 'bilinear';
    const alignCorners = Boolean(resize.align_corners);
    const halfPixelCenters = Boolean(resize.half_pixel_centers);
    const fit = p.fit || 'stretch';
    if (fit === 'crop_or_pad') {
      x = cropOrPad(tf, x, height, width);
    } else if (fit !== 'stretch') {
      throw new Error(`unsupported fit in manifest: ${fit}`);
    } else if (method === 'bilinear') { // the only method the Python build writes
      x = tf.image.resizeBilinear(x, [height, width], alignCorners, halfPixelCenters);
    } else {
      throw new Error(`manifest.json: unsupported preprocessing.resize.method ${JSON.stringify(method)} (bilinear only)`);
    }
    if (p.channel_order === 'BGR') x = tf.reverse(x, -1);
    else if (p.channel_order != null && p.channel_order !== 'RGB') {
      throw new Error(`unsupported channel_order in manifest: ${p.channel_order}`);
    }
    // A zero mean (MobileNet, Inception) is not subtracted: on wasm, x - [0, 0, 0] broadcast
    // over the channels is a costly no-op. Equal means subtract one scalar.
    const mean = p.mean == null ? [0, 0, 0] : p.mean;
    if (mean.some((m) => m !== 0)) {
      x = tf.sub(x, mean.every((m) => m === mean[0]) ? tf.scalar(mean[0], 'float32') : tf.tensor1d(mean, 'float32'));
    }
    x = tf.add(tf.mul(x, tf.scalar(p.scale == null ? 1 : p.scale, 'float32')),
      tf.scalar(p.offset == null ? 0 : p.offset, 'float32'));
    return tf.expandDims(x, 0);
  });
}

// The page's fused resize + normalise kernel (web/src/wasm/resize.js), registered on wasm only:
// the same values, to the bit, as the ops below, without the cast and the two passes over
// the resized image. Used for what it covers: bilinear stretch, RGB, one mean for all channels.
export const RESIZE_NORMALISE = 'TfjsTransferResizeNormalise';

function resizeNormalise(tf, pixels, manifest) {
  const p = manifest.preprocessing;
  const resize = p.resize || {};
  const mean = p.mean == null ? [0, 0, 0] : p.mean;
  if ((p.fit || 'stretch') !== 'stretch' || (resize.method || 'bilinear') !== 'bilinear'
    || (p.channel_order != null && p.channel_order !== 'RGB') || mean.some((m) => m !== mean[0])
    || !tf.getKernel(RESIZE_NORMALISE, tf.getBackend())) return null;
  return tf.tidy(() => tf.engine().runKernel(RESIZE_NORMALISE, { images: tf.expandDims(pixels, 0) }, {
    size: [manifest.input.height, manifest.input.width], alignCorners: Boolean(resize.align_corners),
    halfPixelCenters: Boolean(resize.half_pixel_centers), mean: mean[0],
    scale: p.scale == null ? 1 : p.scale, offset: p.offset == null ? 0 : p.offset }));
}

/** tf.image.resize_with_crop_or_pad: centre crop and/or zero pad to [h, w], no resampling. */
function cropOrPad(tf, x, h, w) {
  const [H, W] = x.shape;
  const top = Math.max(Math.floor((H - h) / 2), 0);
  const left = Math.max(Math.floor((W - w) / 2), 0);
  const cropped = tf.slice(x, [top, left, 0], [Math.min(h, H), Math.min(w, W), x.shape[2]]);
  const padTop = Math.max(Math.floor((h - H) / 2), 0);
  const padLeft = Math.max(Math.floor((w - W) / 2), 0);
  const [ch, cw] = cropped.shape;
  return tf.pad(cropped, [[padTop, h - ch - padTop], [padLeft, w - cw - padLeft], [0, 0]]);
}

/**
 * The k most probable labels, best first (ties keep label order).
 * @param {ArrayLike<number>} probabilities one per label, in label order
 * @param {string[]} labels
 * @param {number} k
 * @returns {{label: string, probability: number}[]}
 */
export function topK(probabilities, labels, k) {
  const n = Math.min(probabilities.length, labels.length);
  const rows = [];
  for (let i = 0; i < n; i++) rows.push({ label: labels[i], probability: Number(probabilities[i]), i });
  rows.sort((a, b) => (b.probability - a.probability) || (a.i - b.i));
  const count = Math.max(0, Math.min(Number.isFinite(k) ? Math.floor(k) : n, n));
  return rows.slice(0, count).map(({ label, probability }) => ({ label, probability }));
}

// A dense head's training step without TF.js' autograd (train.js takes it where it applies).
//
// model.trainOnBatch on the default head (flatten 12544 -> dense 100 relu -> dropout ->
// dense softmax) runs about 120 kernels a step. The first layer's two products over the wide
// features and the Adam update are most of the arithmetic; the hundred other kernels (bias,
// dropout, softmax, loss, metric and their gradients), each a few hundred numbers, cost as
// much again in per-kernel overhead. Here the first layer's products stay TF.js kernels (the
// page's sparse products on wasm: matmul.js) and so does the optimizer's update; the rest is
// computed in plain arrays: the forward pass, Keras' categorical cross-entropy (probabilities
// clipped to [1e-7, 1 - 1e-7], no gradient where clipped), the accuracy and the gradients.

import { withoutPacking } from './wasm/matmul.js';

/** Weights a layer after the first may hold to be computed here (the default head's: 300). */
export const SMALL_WEIGHTS = 1 << 16;

const EPSILON = 1e-7; // tfjs-layers' epsilon(), as Keras' categorical cross-entropy clips with
const HIDDEN = new Set(['relu', 'linear']);

/** A Dense layer's config as this step needs it, or null when the step does not cover it. */
function denseSpec(layer) {
  const c = layer.getConfig();
  if (!c.useBias || c.kernelRegularizer || c.biasRegularizer || c.activityRegularizer
    || c.kernelConstraint || c.biasConstraint || !layer.trainable) return null;
  return { layer, activation: c.activation, rate: 0 };
}

/**
 * The step for a compiled `model` it covers, else null: layers [Flatten] Dense (relu or
 * linear) [Dropout] ... Dense (softmax), with biases and no regularizers or constraints,
 * compiled with categorical cross-entropy and accuracy; the layers after the first at most
 * SMALL_WEIGHTS weights each.
 * @returns {((x: object, labels: ArrayLike<number>) => number[])|null} x: a batch of features
 *   (a tensor, [n, ...feature shape]), labels: each row's class index; returns [loss, accuracy]
 *   of the batch, as trainOnBatch's, after the optimizer applied the gradients
 */
export function denseStep(tf, model) {
  const layers = model.layers;
  const loss = Array.isArray(model.loss) ? model.loss[0] : model.loss;
  if (loss !== 'categoricalCrossentropy' || String(model.metricsNames) !== 'loss,acc' || !model.optimizer) return null;
  const dense = [];
  for (const [i, layer] of layers.entries()) {
    const kind = layer.getClassName();
    if (kind === 'Flatten' && i === 0) continue;
    if (kind === 'Dropout' && dense.length && !dense[dense.length - 1].rate && !layer.noiseShape) {
      dense[dense.length - 1].rate = layer.rate;
    } else if (kind === 'Dense') {
      const spec = denseSpec(layer);
      if (!spec) return null;
      dense.push(spec);
    } else {
      return null;
    }
  }
  const output = dense[dense.length - 1];
  if (!output || output.activation !== 'softmax' || output.rate) return null;
  if (dense.slice(0, -1).some((d) => !HIDDEN.has(d.activation))) return null;
  if (dense.slice(1).some((d) => d.layer.kernel.shape[0] * d.layer.kernel.shape[1] > SMALL_WEIGHTS)) return null;
  return (x, labels) => step(tf, model.optimizer, dense, x, labels);
}

/** out[n, m] = a[n, k] @ b[k, m] (row-major arrays) */
function product(a, b, n, k, m) {
  const out = new Float32Array(n * m);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++) {
      const v = a[r * k + i];
      if (v === 0) continue;
      for (let j = 0; j < m; j++) out[r * m + j] += v * b[i * m + j];
    }
  }
  return out;
}

function step(tf, optimizer, dense, x, labels) {
  const n = x.shape[0];
  const flat = tf.reshape(x, [n, -1]);
  const grads = {};
  try {
    // forward: the first layer's product as a kernel, the rest here
    const saved = [];
    let input = null; // the previous layer's output rows (null: the features, `flat`)
    let width = flat.shape[1];
    let probs = null;
    dense.forEach((d, l) => {
      const units = d.layer.units;
      const kernel = l === 0 ? null : d.layer.kernel.read().dataSync();
      let z;
      if (l === 0) {
        const t = withoutPacking(() => tf.matMul(flat, d.layer.kernel.read()));
        z = Float32Array.from(t.dataSync());
        t.dispose();
      } else {
        z = product(input, kernel, n, width, units);
      }
      const bias = d.layer.bias.read().dataSync();
      for (let i = 0; i < z.length; i++) z[i] += bias[i % units];
      let gate = null; // the gradient's factor at each output: the activation's slope, times dropout's mask
      if (l === dense.length - 1) {
        probs = softmax(z, n, units); // its gradient is the loss' (below)
      } else {
        gate = new Float32Array(z.length).fill(1);
        const keep = 1 - d.rate;
        for (let i = 0; i < z.length; i++) {
          if (d.activation === 'relu' && !(z[i] > 0)) {
            z[i] = 0;
            gate[i] = 0;
          }
          if (d.rate > 0) {
            const mask = Math.floor(Math.random() + keep) / keep; // tf.dropout's multiplier
            z[i] *= mask;
            gate[i] *= mask;
          }
        }
      }
      saved.push({ input, width, kernel, gate });
      input = z;
      width = units;
    });
    // loss, accuracy and the gradient at the softmax's input (mean over the batch)
    const classes = dense[dense.length - 1].layer.units;
    let lossSum = 0;
    let correct = 0;
    let delta = new Float32Array(n * classes);
    for (let r = 0; r < n; r++) {
      const row = probs.subarray(r * classes, (r + 1) * classes);
      const t = labels[r];
      const p = Math.min(Math.max(row[t], EPSILON), 1 - EPSILON);
      lossSum -= Math.log(p);
      let best = 0;
      for (let j = 1; j < classes; j++) if (row[j] > row[best]) best = j;
      if (best === t) correct += 1;
      if (row[t] >= EPSILON && row[t] <= 1 - EPSILON) { // clipped: no gradient, as clipByValue's
        for (let j = 0; j < classes; j++) delta[r * classes + j] = (row[j] - (j === t ? 1 : 0)) / n;
      }
    }
    // backward, last layer first
    for (let l = dense.length - 1; l >= 0; l--) {
      const d = dense[l];
      const units = d.layer.units;
      const { input: below, width: inWidth, kernel, gate } = saved[l];
      if (gate) for (let i = 0; i < delta.length; i++) delta[i] *= gate[i];
      const biasGrad = new Float32Array(units);
      for (let i = 0; i < delta.length; i++) biasGrad[i % units] += delta[i];
      grads[d.layer.bias.read().name] = tf.tensor1d(biasGrad);
      if (l === 0) {
        grads[d.layer.kernel.read().name] = tf.tidy(() => tf.matMul(flat, tf.tensor2d(delta, [n, units]), true, false));
      } else {
        const kernelGrad = new Float32Array(inWidth * units);
        const next = new Float32Array(n * inWidth);
        for (let r = 0; r < n; r++) {
          for (let i = 0; i < inWidth; i++) {
            const a = below[r * inWidth + i];
            let s = 0;
            for (let j = 0; j < units; j++) {
              const g = delta[r * units + j];
              kernelGrad[i * units + j] += a * g;
              s += g * kernel[i * units + j];
            }
            next[r * inWidth + i] = s;
          }
        }
        grads[d.layer.kernel.read().name] = tf.tensor2d(kernelGrad, [inWidth, units]);
        delta = next;
      }
    }
    optimizer.applyGradients(grads);
    return [lossSum / n, correct / n];
  } finally {
    flat.dispose();
    tf.dispose(Object.values(grads));
  }
}

/** Row-wise softmax of z [n, m], in place. */
function softmax(z, n, m) {
  for (let r = 0; r < n; r++) {
    const row = z.subarray(r * m, (r + 1) * m);
    let max = -Infinity;
    for (let j = 0; j < m; j++) max = Math.max(max, row[j]);
    let sum = 0;
    for (let j = 0; j < m; j++) {
      row[j] = Math.exp(row[j] - max);
      sum += row[j];
    }
    for (let j = 0; j < m; j++) row[j] /= sum;
  }
  return z;
}

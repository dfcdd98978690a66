// Adam in one pass per variable on the wasm backend, for training in the page.
//
// tf.train.adam updates a variable with 14 elementwise TF.js ops, each a full pass over
// memory: for the default head's 12544x100 kernel that made the update a large share of a
// training step on wasm (tf.profile), more than the forward product. The kernel
// registered here ('TransferAdam', source in adam.wat) does the same float32 arithmetic
// in one SIMD loop over tfjs-backend-wasm's own memory and returns new buffers for the
// variable and both moments, a pure kernel like any other. When nothing but the variable
// and its moments hold their data (the backend's reference counts are 1: no clone, no
// saved tensor), attribute inPlace asks it to write them where they are instead, as
// TensorFlow's own ResourceApplyAdam does: no three fresh 5 MB buffers a step, whose first
// writes cost a read each, then three frees (web/tools/bench-step.mjs times both).
// Other backends, and wasm without the kernel, run tf.train.adam's own update.

import { BACKEND } from './replace.js';
import { kernelExports, memoryOf, offsetOf, supported, writtenInPlace } from './memory.js';
import { MIN_SPLIT, poolOf } from './pool.js';

// A kernel of our own, added beside TF.js' (nothing to replace): tf.train.adam has no kernel.
const KERNEL = 'TransferAdam';

/** Updates run so far, in place or into new buffers (tests check which path training takes). */
export const counts = { inPlace: 0, copied: 0 };

/**
 * Registers the fused Adam kernel on the wasm backend.
 * @param {object} tf the TF.js namespace
 * @param {{shared: Uint8Array, local: Uint8Array}} binaries adam.wat compiled for shared
 *   (threaded backend) and unshared memory
 * @returns {boolean} whether the kernel is in place (false when wasm is not registered)
 */
export function registerFusedAdam(tf, binaries) {
  if (tf.getKernel(KERNEL, BACKEND)) return true;
  if (!tf.getKernel('Add', BACKEND) || !supported(binaries)) return false;
  tf.registerKernel({
    kernelName: KERNEL,
    backendName: BACKEND,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { w, g, m, v } = inputs;
      const kernel = kernelExports(binaries, backend);
      const size = w.shape.reduce((a, b) => a * b, 1);
      const { beta1, beta2, oneMinusAccBeta1, oneMinusAccBeta2, epsilon, learningRate, inPlace = false } = attrs;
      const out = inPlace ? [w, m, v] : [w, m, v].map((t) => backend.makeOutput(t.shape, 'float32'));
      const at = (t) => offsetOf(backend, t);
      // (in place, each element's w, m and v are read before they are written: adam.wat)
      adamUpdate(kernel, poolOf(memoryOf(backend.wasm)), [w, g, m, v, ...out].map(at), size,
        [beta1, 1 - beta1, beta2, 1 - beta2, oneMinusAccBeta1, oneMinusAccBeta2, epsilon, -learningRate]);
      if (!inPlace) {
        counts.copied += 1;
        return out;
      }
      counts.inPlace += 1;
      [w, m, v].forEach((t) => writtenInPlace(backend, t));
      return [];
    },
  });
  return true;
}

const CHUNKS = 8; // taken by pool.js' two threads as they come free

/**
 * adam.wat over `size` elements at byte offsets [w, g, m, v, wOut, mOut, vOut] with its eight
 * scalars, split by element ranges (multiples of 4) over pool.js' two threads when there is one.
 */
export function adamUpdate(kernel, pool, offsets, size, scalars, chunks = CHUNKS) {
  const each = Math.floor(size / chunks / 4) * 4;
  if (!pool || size < MIN_SPLIT || each === 0) {
    kernel.adam(...offsets, size, ...scalars);
    return;
  }
  const rest = each * (chunks - 1);
  pool.run(2, kernel.adam, [...offsets, each, ...scalars], [...offsets.map(() => 4 * each), 0, ...scalars.map(() => 0)],
    [...offsets.map((o) => o + 4 * rest), size - rest, ...scalars], chunks);
}

const classes = new WeakMap(); // tf namespace -> its FusedAdam class

/** tf.AdamOptimizer whose update runs as one TransferAdam kernel per variable where registered. */
function fusedAdamClass(tf) {
  if (classes.has(tf)) return classes.get(tf);
  class FusedAdam extends tf.AdamOptimizer {
    applyGradients(variableGradients) {
      const names = Array.isArray(variableGradients)
        ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
      const float32 = names.every((name) => tf.engine().registeredVariables[name].dtype === 'float32');
      if (!float32 || !tf.getKernel(KERNEL, tf.getBackend())) return super.applyGradients(variableGradients);
      // 1 - beta^t exactly as tf.train.adam computes it: float32 scalars on the backend
      const [oneMinusAccBeta1, oneMinusAccBeta2] = tf.tidy(() => [this.accBeta1, this.accBeta2]
        .map((acc) => tf.sub(1, acc))).map((t) => {
        const value = t.dataSync()[0];
        t.dispose();
        return value;
      });
      const attrs = { beta1: this.beta1, beta2: this.beta2, oneMinusAccBeta1, oneMinusAccBeta2,
        epsilon: this.epsilon, learningRate: this.learningRate };
      tf.tidy(() => {
        names.forEach((name, i) => {
          const value = tf.engine().registeredVariables[name];
          if (this.accumulatedFirstMoment[i] == null) {
            this.accumulatedFirstMoment[i] = { originalName: `${name}/m`,
              variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
            this.accumulatedSecondMoment[i] = { originalName: `${name}/v`,
              variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
          }
          const gradient = Array.isArray(variableGradients) ? variableGradients[i].tensor : variableGradients[name];
          if (gradient == null) return;
          const m = this.accumulatedFirstMoment[i].variable;
          const v = this.accumulatedSecondMoment[i].variable;
          const backend = tf.backend();
          const inPlace = [value, m, v].every((t) => backend.refCount(t.dataId) === 1);
          if (inPlace) {
            tf.engine().runKernel(KERNEL, { w: value, g: gradient, m, v }, { ...attrs, inPlace });
            return;
          }
          const [w2, m2, v2] = tf.engine().runKernel(KERNEL, { w: value, g: gradient, m, v }, attrs);
          m.assign(m2);
          v.assign(v2);
          value.assign(w2);
        });
        this.accBeta1.assign(tf.mul(this.accBeta1, this.beta1));
        this.accBeta2.assign(tf.mul(this.accBeta2, this.beta2));
      });
      this.incrementIterations();
    }
  }
  classes.set(tf, FusedAdam);
  return FusedAdam;
}

/** Like tf.train.adam(learningRate, beta1, beta2, epsilon), with the fused update on wasm. */
export function adam(tf, learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = null) {
  const FusedAdam = fusedAdamClass(tf);
  return new FusedAdam(learningRate, beta1, beta2, epsilon);
}

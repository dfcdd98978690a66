// How the page puts its own kernels in place of tfjs-backend-wasm's: one way for all of them,
// so each module says only what its kernel does differently.

export const BACKEND = 'wasm';

// Kernel names already replaced. TF.js' kernel registry is global to the page, so once is
// enough; replacing again would wrap our own kernel around itself.
const replaced = new Set();

/**
 * Replaces the wasm backend's kernel `name` with the kernelFunc wrap(original) gives, keeping
 * the rest of the original's config. Safe to call more than once and before or
 * after the wasm backend started.
 * @param {object} tf the TF.js namespace
 * @param {string} name a kernel name, e.g. 'BatchMatMul'
 * @param {(original: object) => Function} wrap gives our kernelFunc from TF.js' kernel config;
 *   it calls original.kernelFunc for the cases it leaves to TF.js
 * @returns {boolean} whether ours is in place (false when wasm has no such kernel registered)
 */
export function replaceKernel(tf, name, wrap) {
  if (replaced.has(name)) return true;
  const original = tf.getKernel(name, BACKEND);
  if (!original) return false;
  tf.unregisterKernel(name, BACKEND);
  tf.registerKernel({ ...original, kernelFunc: wrap(original) });
  replaced.add(name);
  return true;
}

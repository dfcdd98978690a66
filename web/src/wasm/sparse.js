// Dense-layer products over mostly-zero features, for training in the page (sparse.wat).
//
// A MobileNet's features come out of a ReLU6: most of them are exactly zero (about 85% of
// the 7x7x256 features of the served logos). Training the default head (flatten 12544 ->
// dense 100) spends most of a step in two products with that batch as the left operand:
// the forward x @ w and the kernel gradient x^T @ dy. XNNPACK multiplies every zero; the
// kernel here skips them, so its work follows the nonzeros. Each output is the same sum
// with its zero terms left out, in increasing k (XNNPACK's order differs: results agree
// to float32 rounding, tested against the cpu backend). matmul.js asks this module first
// for those two training products; a batch with too few zeros goes to XNNPACK as before.

import { kernelExports, offsetOf, supported } from './memory.js';

// Above this fraction of nonzeros XNNPACK's blocked product is the faster one: one thread
// breaks even near 0.4 (web/tools/bench-sparse.mjs 12 0.6), the page's pool of two earlier.
export const MAX_DENSITY = 0.3;

/** Products run here so far (tests and the bench check which path training takes). */
export const counts = { sparse: 0, dense: 0 };

/**
 * The sparse product for the wasm backend, or null when its binaries cannot run here.
 * @param {{shared: Uint8Array, local: Uint8Array}} binaries sparse.wat compiled
 * @returns {((backend: object, a: object, b: object, transposeA: boolean) => object|null)|null}
 *   a kernel body: a [m, k] float32 @ b [k, n] (or a^T @ b [m, n]), or null to leave the
 *   product to XNNPACK (a has too many nonzeros)
 */
export function sparseProduct(binaries, maxDensity = MAX_DENSITY) {
  if (!binaries || !supported(binaries)) return null;
  return (backend, a, b, transposeA) => {
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
    const kernel = kernelExports(binaries, backend);
    const [m, k] = a.shape.slice(-2);
    const n = b.shape[b.shape.length - 1];
    const aAt = offsetOf(backend, a);
    if (kernel.nonzeros(aAt, m * k) > maxDensity * m * k) {
      counts.dense += 1;
      return null;
    }
    counts.sparse += 1;
    const lead = a.shape.slice(0, -2);
    const out = backend.makeOutput(transposeA ? [...lead, k, n] : [...lead, m, n], 'float32');
    (transposeA ? kernel.matmulTransposeA : kernel.matmul)(aAt, offsetOf(backend, b), offsetOf(backend, out), m, k, n);
    return out;
  };
}

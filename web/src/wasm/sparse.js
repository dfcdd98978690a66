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

import { kernelExports, memoryOf, offsetOf, supported } from './memory.js';
import { MIN_SPLIT, poolOf } from './pool.js';

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
    const pool = poolOf(memoryOf(backend.wasm));
    (transposeA ? productTransposeA : product)(kernel, pool, aAt, offsetOf(backend, b), offsetOf(backend, out), m, k, n);
    return out;
  };
}

/**
 * out[m, n] = a[m, k] @ b[k, n] (byte offsets), split over pool.js' two threads when there is
 * one: by rows of the batch, each thread reading all of b, or by column halves (a multiple of 4
 * columns each, so every value takes the same SIMD or tail path as on one thread). Rows it is:
 * column halves share a cache line of every output row, written by both threads at each
 * nonzero (tools/bench-pool.mjs).
 */
export function product(kernel, pool, a, b, out, m, k, n, by = 'rows') {
  const n0 = (n >> 3) << 2;
  const m0 = m >> 1;
  if (!pool || k * n < MIN_SPLIT || (by === 'columns' ? n0 === 0 : m0 === 0)) {
    kernel.matmul(a, b, out, m, k, n);
  } else if (by === 'columns') {
    pool.run(0, [a, b + 4 * n0, out + 4 * n0, m, k, n - n0, n], () => kernel.matmulStrided(a, b, out, m, k, n0, n),
      kernel.matmulStrided);
  } else {
    pool.run(0, [a + 4 * m0 * k, b, out + 4 * m0 * n, m - m0, k, n, n], () => kernel.matmulStrided(a, b, out, m0, k, n, n),
      kernel.matmulStrided);
  }
}

/** out[k, n] = a[m, k]^T @ b[m, n] (byte offsets), split by output rows over pool.js' threads. */
export function productTransposeA(kernel, pool, a, b, out, m, k, n) {
  const k0 = k >> 1;
  if (!pool || k * n < MIN_SPLIT) {
    kernel.matmulTransposeA(a, b, out, m, k, n);
    return;
  }
  pool.run(1, [a + 4 * k0, b, out + 4 * k0 * n, m, k - k0, n, k], () => kernel.matmulTransposeAStrided(a, b, out, m, k0, n, k),
    kernel.matmulTransposeAStrided);
}

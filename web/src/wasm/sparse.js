// Dense-layer products over mostly-zero features, for training in the page (sparse.wat).
//
// A MobileNet's features come out of a ReLU6: most of them are exactly zero (about 85% of
// the 7x7x256 features of the served logos). Training the default head (flatten 12544 ->
// dense 100) spends most of a step in two products with that batch as the left operand:
// the forward x @ w and the kernel gradient x^T @ dy. XNNPACK multiplies every zero; the
// kernel here skips them, so its work follows the nonzeros. Each output is the same sum
// with its zero terms left out, in increasing k (XNNPACK's order differs: results agree
// to float32 rounding, tested against the cpu backend). matmul.js asks this module first
// for those two training products and for one image's prediction (one row of features:
// only the weight rows its nonzeros pick are read); a batch with too few zeros goes to
// XNNPACK as before.

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

// Chunks a product is cut into, taken by pool.js' two threads as they come free. The forward
// takes two: each of its chunks reads all of b (see product()).
const FORWARD_CHUNKS = 2;
const GRADIENT_CHUNKS = 8;

/**
 * out[m, n] = a[m, k] @ b[k, n] (byte offsets), split over pool.js' two threads when there is
 * one: by rows of the batch, each chunk reading all of b, or by columns (a multiple of 4
 * columns a chunk, so every value takes the same SIMD or tail path as on one thread). Rows it
 * is: column chunks share a cache line of every output row, written by both threads at each
 * nonzero (tools/bench-pool.mjs).
 */
export function product(kernel, pool, a, b, out, m, k, n, by = 'rows', chunks = FORWARD_CHUNKS) {
  const rows = Math.floor(m / chunks);
  const cols = Math.floor(n / chunks / 4) * 4;
  if (!pool || k * n < MIN_SPLIT || (by === 'columns' ? cols === 0 : rows === 0)) {
    kernel.matmul(a, b, out, m, k, n);
  } else if (by === 'columns') {
    const rest = cols * (chunks - 1);
    pool.run(0, kernel.matmulStrided, [a, b, out, m, k, cols, n], [0, 4 * cols, 4 * cols, 0, 0, 0, 0],
      [a, b + 4 * rest, out + 4 * rest, m, k, n - rest, n], chunks);
  } else {
    const rest = rows * (chunks - 1);
    pool.run(0, kernel.matmulStrided, [a, b, out, rows, k, n, n], [4 * rows * k, 0, 4 * rows * n, 0, 0, 0, 0],
      [a + 4 * rest * k, b, out + 4 * rest * n, m - rest, k, n, n], chunks);
  }
}

/** out[k, n] = a[m, k]^T @ b[m, n] (byte offsets), split by output rows over pool.js' threads. */
export function productTransposeA(kernel, pool, a, b, out, m, k, n, chunks = GRADIENT_CHUNKS) {
  const rows = Math.floor(k / chunks);
  if (!pool || k * n < MIN_SPLIT || rows === 0) {
    kernel.matmulTransposeA(a, b, out, m, k, n);
    return;
  }
  const rest = rows * (chunks - 1);
  pool.run(1, kernel.matmulTransposeAStrided, [a, b, out, m, rows, n, k], [4 * rows, 0, 4 * rows * n, 0, 0, 0, 0],
    [a + 4 * rest, b, out + 4 * rest * n, m, k - rest, n, k], chunks);
}

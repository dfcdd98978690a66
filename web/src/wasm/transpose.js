// Matrix transposes in 4x4 SIMD blocks on the wasm backend (source in transpose.wat).
//
// Training the default head transposes its 12544x100 kernel every step (matmul.js runs the
// forward product as (w^T x^T)^T so XNNPACK packs the small operand) and the 32x12544 batch
// twice; tfjs-backend-wasm 4.22 transposes one value at a time.
// This replaces the wasm Transpose kernel for float32 tensors whose permutation swaps the
// last two axes (a matrix, or a batch of them); every other permutation and dtype keeps
// TF.js' kernel. Values are moved, not computed, so results are identical.

import { replaceKernel } from './replace.js';
import { kernelExports, offsetOf, supported } from './memory.js';

/** Whether perm keeps the leading axes and swaps the last two. */
function swapsLastTwo(perm) {
  const r = perm.length;
  return r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2 && perm.slice(0, r - 2).every((p, i) => p === i);
}

/**
 * Replaces the wasm Transpose kernel (see above).
 * @param {{shared: Uint8Array, local: Uint8Array}} binaries transpose.wat compiled
 * @returns {boolean} whether the kernel is in place (false when wasm is not registered)
 */
export function patchWasmTranspose(tf, binaries) {
  if (!supported(binaries)) return false;
  return replaceKernel(tf, 'Transpose', (original) => ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    if (x.dtype !== 'float32' || !swapsLastTwo(attrs.perm)) return original.kernelFunc({ inputs, backend, attrs });
    const r = x.shape.length;
    const [rows, cols] = x.shape.slice(-2);
    const shape = [...x.shape.slice(0, -2), cols, rows];
    const out = backend.makeOutput(shape, 'float32');
    const size = rows * cols;
    const batch = size === 0 ? 0 : x.shape.slice(0, r - 2).reduce((a, b) => a * b, 1);
    const { transpose } = kernelExports(binaries, backend);
    const src = offsetOf(backend, x);
    const dst = offsetOf(backend, out);
    for (let b = 0; b < batch; b++) transpose(src + 4 * b * size, dst + 4 * b * size, rows, cols);
    return out;
  });
}

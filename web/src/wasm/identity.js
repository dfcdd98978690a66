// Clones that share their data on the wasm backend, as they do on cpu and webgl.
//
// TF.js clones every tensor a kernel saves for back-propagation, and layers clone their
// inputs and outputs. The cpu and webgl backends' Identity only counts one more reference
// to the data; tfjs-backend-wasm 4.22 copies it through JavaScript, so every training step
// copied the head's kernel (the dense layer's product saves it) for nothing. Kernels never
// write into their inputs and a variable's assign() swaps its buffer, so shared data cannot
// change under a clone (the wasm Reshape kernel shares its input's data the same way).

import { replaceKernel } from './replace.js';

/**
 * Replaces the wasm Identity kernel with one that shares data (strings still copy).
 * @returns {boolean} whether the kernel is in place (false when wasm is not registered)
 */
export function shareWasmIdentity(tf) {
  return replaceKernel(tf, 'Identity', (original) => ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    if (x.dtype === 'string') return original.kernelFunc({ inputs, backend, attrs });
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
}

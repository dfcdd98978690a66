// The page's own kernels for the wasm backend, installed once it runs: each replaces (or,
// for Adam, adds beside) a TF.js 4.22 kernel that made training slow (see each module).
// The Node tests (web/test/) and web/tools/train-check.mjs install them the same way, with
// the .wat sources compiled by web/tools/wat.mjs instead of the bundler.
import { registerFusedAdam } from './adam.js';
import { shareWasmIdentity } from './identity.js';
import { patchWasmMatMul } from './matmul.js';
import { patchWasmResizeBilinear, registerResizeNormalise } from './resize.js';
import { patchWasmTranspose } from './transpose.js';

/**
 * @param {object} tf the TF.js namespace, wasm backend registered
 * @param {{adam: object, transpose: object, resize?: object}} binaries adam.wat, transpose.wat
 *   and resize.wat compiled
 *   ({shared, local} bytes each)
 * @param {{fastMatMul?: boolean, fusedAdam?: boolean, sharedIdentity?: boolean, fastTranspose?: boolean,
 *   fastResize?: boolean}} which
 * @returns {string[]} what is in place, as the page shows it
 */
export function installWasmKernels(tf, binaries,
  { fastMatMul = true, fusedAdam = true, sharedIdentity = true, fastTranspose = true, fastResize = true } = {}) {
  const own = [];
  if (fastMatMul && patchWasmMatMul(tf)) own.push('XNNPACK for transposed products');
  if (fastTranspose && patchWasmTranspose(tf, binaries.transpose)) own.push('SIMD transposes');
  if (fusedAdam && registerFusedAdam(tf, binaries.adam)) own.push('fused Adam');
  if (sharedIdentity && shareWasmIdentity(tf)) own.push('shared clones');
  if (fastResize && binaries.resize && patchWasmResizeBilinear(tf, binaries.resize)
    && registerResizeNormalise(tf, binaries.resize)) own.push('SIMD resize');
  return own;
}

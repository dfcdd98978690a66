// The page's own kernels for the wasm backend, installed once it runs: each replaces a
// TF.js 4.22 kernel that made training slow (see each module). Node checks install them
// the same way, with adam.wat compiled by tools/wat.mjs instead of the bundler.
import { registerFusedAdam } from './adam.js';
import { shareWasmIdentity } from './identity.js';
import { patchWasmMatMul } from './matmul.js';

/**
 * @param {object} tf the TF.js namespace, wasm backend registered
 * @param {{shared: Uint8Array, local: Uint8Array}} adamBinaries adam.wat compiled
 * @param {{fastMatMul?: boolean, fusedAdam?: boolean, sharedIdentity?: boolean}} which
 * @returns {string[]} what is in place, as the page shows it
 */
export function installWasmKernels(tf, adamBinaries, { fastMatMul = true, fusedAdam = true, sharedIdentity = true } = {}) {
  const own = [];
  if (fastMatMul && patchWasmMatMul(tf)) own.push('XNNPACK for transposed products');
  if (fusedAdam && registerFusedAdam(tf, adamBinaries)) own.push('fused Adam');
  if (sharedIdentity && shareWasmIdentity(tf)) own.push('shared clones');
  return own;
}

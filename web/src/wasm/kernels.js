// The page's own kernels for the wasm backend, installed once it runs: each replaces (or,
// for Adam, adds beside) a TF.js 4.22 kernel that made training slow (see each module).
// The Node tests (web/test/) and web/tools/train-check.mjs install them the same way, with
// the .wat sources compiled by web/tools/wat.mjs instead of the bundler.
import { registerFusedAdam } from './adam.js';
import { shareWasmIdentity } from './identity.js';
import { registerConvChain } from './chain.js';
import { patchWasmConvolutions } from './conv.js';
import { patchWasmMatMul } from './matmul.js';
import { patchWasmResizeBilinear, registerResizeNormalise } from './resize.js';
import { patchWasmTranspose } from './transpose.js';
import { supported } from './memory.js';

/**
 * @param {object} tf the TF.js namespace, wasm backend registered
 * @param {{adam: object, transpose: object, resize?: object, sparse?: object, conv?: object}} binaries
 *   adam.wat, transpose.wat, resize.wat, sparse.wat and conv.wat compiled ({shared, local} bytes each)
 * @param {{fastMatMul?: boolean, fusedAdam?: boolean, sharedIdentity?: boolean, fastTranspose?: boolean,
 *   fastResize?: boolean, sparseMatMul?: boolean, fastConv?: boolean, convChain?: boolean}} which
 * @returns {string[]} what is in place, as the page shows it
 */
export function installWasmKernels(tf, binaries, { fastMatMul = true, fusedAdam = true, sharedIdentity = true,
  fastTranspose = true, fastResize = true, sparseMatMul = true, fastConv = true, convChain = true } = {}) {
  const own = [];
  const sparse = sparseMatMul && binaries.sparse && supported(binaries.sparse) ? binaries.sparse : null;
  if (fastMatMul && patchWasmMatMul(tf, sparse)) {
    own.push('XNNPACK for transposed products');
    if (sparse) own.push('sparse feature products');
  }
  if (fastTranspose && patchWasmTranspose(tf, binaries.transpose)) own.push('SIMD transposes');
  if (fusedAdam && registerFusedAdam(tf, binaries.adam)) own.push('fused Adam');
  if (sharedIdentity && shareWasmIdentity(tf)) own.push('shared clones');
  if (fastResize && binaries.resize && patchWasmResizeBilinear(tf, binaries.resize)
    && registerResizeNormalise(tf, binaries.resize)) own.push('SIMD resize');
  if (fastConv && patchWasmConvolutions(tf, binaries.conv)) own.push('FMA convolutions');
  if (convChain && registerConvChain(tf)) own.push('one-kernel backbones');
  return own;
}

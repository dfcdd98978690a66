// web/src/wasm/kernels.js: installWasmKernels() puts in place the kernels asked for (the
// page's ?tfjs= switches, see backend.js pageKernels) and names them as the page shows them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../src/wasm/kernels.js';
import { CONV_CHAIN } from '../src/fused.js';
import { compileKernels } from '../tools/wat.mjs';

await tf.setBackend('wasm');
await tf.ready();
const binaries = await compileKernels();

test('only the kernels asked for are installed', () => {
  const wasm = (name) => tf.getKernel(name, 'wasm').kernelFunc;
  const before = { BatchMatMul: wasm('BatchMatMul'), Identity: wasm('Identity'), ResizeBilinear: wasm('ResizeBilinear'),
    FusedConv2D: wasm('FusedConv2D'), FusedDepthwiseConv2D: wasm('FusedDepthwiseConv2D') };
  assert.deepEqual(installWasmKernels(tf, binaries, { fastMatMul: false, sharedIdentity: false, fastResize: false,
    fastConv: false, convChain: false }), ['SIMD transposes', 'fused Adam']);
  assert.equal(wasm('BatchMatMul'), before.BatchMatMul);
  assert.equal(wasm('Identity'), before.Identity);
  assert.equal(wasm('ResizeBilinear'), before.ResizeBilinear);
  assert.equal(wasm('FusedConv2D'), before.FusedConv2D);
  assert.equal(wasm('FusedDepthwiseConv2D'), before.FusedDepthwiseConv2D);
  assert.equal(tf.getKernel(CONV_CHAIN, 'wasm'), undefined);
});

test('all of them by default, each once', () => {
  assert.deepEqual(installWasmKernels(tf, binaries),
    ['XNNPACK for transposed products', 'sparse feature products', 'SIMD transposes', 'fused Adam', 'shared clones',
      'SIMD resize', 'FMA convolutions', 'one-kernel backbones']);
  assert.ok(tf.getKernel(CONV_CHAIN, 'wasm'));
  const transpose = tf.getKernel('Transpose', 'wasm').kernelFunc;
  installWasmKernels(tf, binaries);
  assert.equal(tf.getKernel('Transpose', 'wasm').kernelFunc, transpose);
});

// web/src/wasm/conv.js on the wasm backend: with conv.wat in place, a MobileNet's pointwise, 3x3
// depthwise and first 3x3 convolutions (bias, linear / relu / relu6) give the cpu backend's values to
// float32 rounding, at every border, stride and padding a backbone has, with rows past the last
// four; shapes the kernels do not take still go to TF.js' kernels and agree too. (Split over
// pool.js' helper thread: test/pool.test.mjs.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { counts, patchWasmConvolutions } from '../src/wasm/conv.js';
import { supported } from '../src/wasm/memory.js';
import { compileKernels } from '../tools/wat.mjs';

const binaries = await compileKernels();

/** Relative difference, against the larger of 1 and the expected magnitude. */
function closeTo(actual, expected, what) {
  assert.equal(actual.length, expected.length, what);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  }
  assert.ok(worst < 1e-5, `${what}: max relative difference ${worst}`);
}

// [name, x shape, filter shape, conv attrs, taken by conv.wat?]
const POINTWISE = [
  ['112x112x8 -> 16, relu6', [2, 12, 12, 8], [1, 1, 8, 16], { activation: 'relu6' }, true],
  ['m % 6 = 3 rows left, linear', [1, 3, 5, 24], [1, 1, 24, 32], { activation: 'linear' }, true],
  ['one row, relu, valid', [1, 1, 1, 7], [1, 1, 7, 8], { activation: 'relu', pad: 'valid' }, true],
  ['12 filters: TF.js', [1, 4, 4, 8], [1, 1, 8, 12], { activation: 'relu6' }, false],
  ['stride 2: TF.js', [1, 6, 6, 8], [1, 1, 8, 16], { activation: 'relu6', strides: 2 }, false],
];
// the first layer: 3x3 filters over the image's 3 channels
const CONV3X3 = [
  ['224 -> 112 as a MobileNet: stride 2, same, even', [2, 12, 14, 3], [3, 3, 3, 8], { activation: 'relu6', strides: 2 }, true],
  ['stride 2, same, odd; 16 filters', [1, 11, 9, 3], [3, 3, 3, 16], { activation: 'linear', strides: 2 }, true],
  ['stride 1, valid, 5 channels', [1, 7, 10, 5], [3, 3, 5, 8], { activation: 'relu', pad: 'valid' }, true],
  ['explicit padding, 1x2 input: all border', [2, 1, 2, 3], [3, 3, 3, 8], { activation: 'relu6', pad: [[0, 0], [1, 1], [2, 0], [0, 0]] }, true],
  ['12 filters: TF.js', [1, 6, 6, 3], [3, 3, 3, 12], { activation: 'relu6', strides: 2 }, false],
  ['5x5: TF.js', [1, 6, 6, 3], [5, 5, 3, 8], { activation: 'relu6' }, false],
];
const DEPTHWISE = [
  ['stride 1, same, relu6', [2, 9, 7, 8], [3, 3, 8, 1], { activation: 'relu6' }, true],
  ['stride 2, same, even', [1, 8, 8, 12], [3, 3, 12, 1], { activation: 'relu6', strides: 2 }, true],
  ['stride 2, same, odd', [1, 7, 9, 4], [3, 3, 4, 1], { activation: 'linear', strides: 2 }, true],
  ['stride 2, valid', [1, 9, 9, 4], [3, 3, 4, 1], { activation: 'relu', strides: 2, pad: 'valid' }, true],
  ['explicit padding', [1, 5, 6, 4], [3, 3, 4, 1], { activation: 'relu6', pad: [[0, 0], [1, 0], [0, 2], [0, 0]] }, true],
  ['1x1 and 2x2 inputs: all border', [3, 2, 1, 8], [3, 3, 8, 1], { activation: 'relu6' }, true],
  ['6 channels: TF.js', [1, 5, 5, 6], [3, 3, 6, 1], { activation: 'relu6' }, false],
  ['multiplier 2: TF.js', [1, 5, 5, 4], [3, 3, 4, 2], { activation: 'relu6' }, false],
];

function convOf(depthwise, xShape, fShape, attrs, seed) {
  const x = tf.randomUniform(xShape, -1, 6, 'float32', seed);
  const filter = tf.randomNormal(fShape, 0, 0.5, 'float32', seed + 1);
  const bias = tf.randomNormal([depthwise ? fShape[2] * fShape[3] : fShape[3]], 0, 1, 'float32', seed + 2);
  const args = { x, filter, bias, strides: 1, pad: 'same', ...attrs };
  const y = depthwise ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args);
  const values = y.dataSync();
  tf.dispose([x, filter, bias, y]);
  return values;
}

const cases = [...POINTWISE.map((c) => ['pointwise', ...c]), ...CONV3X3.map((c) => ['conv3x3', ...c]),
  ...DEPTHWISE.map((c) => ['depthwise', ...c])];
await tf.setBackend('cpu');
const expected = cases.map(([kind, , xs, fs, attrs], i) => convOf(kind === 'depthwise', xs, fs, attrs, 10 * i + 1));

await tf.setBackend('wasm');
await tf.ready();
test('conv.wat runs here (relaxed SIMD) and is in place', () => {
  assert.ok(supported(binaries.conv));
  assert.ok(patchWasmConvolutions(tf, binaries.conv));
});

cases.forEach(([kind, name, xs, fs, attrs, taken], i) => {
  test(`${kind} ${name}: the cpu backend's values`, () => {
    const before = counts[kind];
    closeTo(convOf(kind === 'depthwise', xs, fs, attrs, 10 * i + 1), expected[i], name);
    assert.equal(counts[kind] - before, taken ? 1 : 0, taken ? 'conv.wat took it' : 'TF.js kept it');
  });
});

test('without a bias or with prelu: TF.js kernels', () => {
  const before = { ...counts };
  tf.tidy(() => {
    const x = tf.ones([1, 4, 4, 8]);
    tf.fused.conv2d({ x, filter: tf.ones([1, 1, 8, 8]), strides: 1, pad: 'same', activation: 'relu' }).dataSync();
    tf.fused.depthwiseConv2d({ x, filter: tf.ones([3, 3, 8, 1]), strides: 1, pad: 'same', bias: tf.ones([8]),
      activation: 'prelu', preluActivationWeights: tf.ones([8]) }).dataSync();
  });
  assert.deepEqual(counts, before);
});

// web/src/wasm/resize.js on the wasm backend: every size, scale direction and
// align_corners / half_pixel_centers combination the manifest can give, float32 and int32
// images, batches and 1/3/4 channels, is bit-exact with TF.js' own wasm ResizeBilinear;
// nothing leaks. TF.js' cpu backend is not the reference: it computes the weights in float64
// and differs from wasm in the low bits (the count is printed, not asserted).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { axisWeights, patchWasmResizeBilinear } from '../src/wasm/resize.js';
import { compileKernels } from '../tools/wat.mjs';

const SIZES = [
  // [batch, inH, inW, channels, outH, outW]
  [1, 120, 120, 3, 224, 224], // a logo, up
  [1, 333, 250, 3, 224, 224], // a photo, down
  [1, 7, 5, 3, 224, 224],
  [1, 1, 1, 3, 224, 224],
  [1, 224, 224, 3, 224, 224],
  [1, 300, 200, 3, 17, 31],
  [1, 13, 9, 3, 3, 2],
  [1, 2, 2, 3, 1, 1],
  [1, 9, 11, 3, 1, 7],
  [3, 31, 17, 3, 45, 12],     // a batch
  [2, 10, 12, 1, 23, 9],      // one channel
  [2, 10, 12, 4, 5, 19],      // four
  [1, 6, 6, 5, 11, 11],       // five
];
const MODES = [[false, false], [true, false], [false, true]]; // [alignCorners, halfPixelCenters]

const cases = [];
for (const s of SIZES) for (const m of MODES) for (const dtype of ['int32', 'float32']) cases.push([s, m, dtype]);

await tf.setBackend('wasm');
await tf.ready();
const images = cases.map(([[b, h, w, c], , dtype], i) => tf.tidy(() => {
  const x = tf.randomUniform([b, h, w, c], dtype === 'int32' ? 0 : -300, 256, dtype, i + 1);
  return { values: x.dataSync().slice(), shape: x.shape, dtype };
}));

function resized(i) {
  const [[, , , , H, W], [align, half]] = cases[i];
  return tf.tidy(() => {
    const x = tf.tensor(images[i].values, images[i].shape, images[i].dtype);
    return tf.image.resizeBilinear(x, [H, W], align, half).dataSync().slice();
  });
}

const expected = cases.map((_, i) => resized(i));
await tf.setBackend('cpu');
const cpuDiffers = cases.map((_, i) => resized(i).filter((v, k) => v !== expected[i][k]).length);
await tf.setBackend('wasm');
const patched = patchWasmResizeBilinear(tf, (await compileKernels()).resize);
const baseline = tf.memory().numTensors;

test('the replaced kernel is in place', () => {
  assert.equal(patched, true);
});

test('every value is TF.js wasm\'s, to the bit', () => {
  assert.equal(cases.length, SIZES.length * MODES.length * 2);
  cases.forEach((c, i) => {
    const got = resized(i);
    assert.equal(got.length, expected[i].length);
    const differ = got.reduce((n, v, k) => n + (Object.is(v, expected[i][k]) ? 0 : 1), 0);
    assert.equal(differ, 0, `${JSON.stringify(c)}: ${differ} values differ`);
  });
  const total = cpuDiffers.reduce((a, b) => a + b, 0);
  console.log(`# cpu backend vs wasm: ${total} values differ over ${cases.length} cases`);
});

test('the column weights are XNNPACK\'s (float32 scale, half-pixel clamp)', () => {
  const { lo, hi, alpha } = axisWeights(2, 4, false, true);
  assert.deepEqual([...lo], [0, 0, 0, 1]);
  assert.deepEqual([...hi], [1, 1, 1, 1]);
  assert.deepEqual([...alpha], [0, 0.25, 0.75, 0]);
});

test('no tensor leaks, the scratch buffer included', () => {
  assert.equal(tf.memory().numTensors, baseline);
});

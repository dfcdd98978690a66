// web/src/wasm/resize.js on the wasm backend: every size, scale direction and
// align_corners / half_pixel_centers combination the manifest can give, float32 and int32
// images, batches and 1/3/4 channels, is bit-exact with TF.js' own wasm ResizeBilinear;
// nothing leaks. TF.js' cpu backend is not the reference: it computes the weights in float64
// and differs from wasm in the low bits (the count is printed, not asserted). preprocess.js
// with the fused resize + normalise kernel gives what its TF.js ops give, for every manifest.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { RESIZE_NORMALISE, preprocess } from '../src/preprocess.js';
import { axisWeights, patchWasmResizeBilinear, registerResizeNormalise } from '../src/wasm/resize.js';
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

// manifests: the resize modes, zero / equal / per-channel means, RGB / BGR, scales and offsets
const MANIFESTS = [];
for (const [align, half] of MODES) {
  for (const [mean, order, scale, offset] of [
    [[0, 0, 0], 'RGB', 1 / 127.5, -1],     // MobileNet
    [null, null, null, null],              // defaults
    [[127.5, 127.5, 127.5], 'RGB', 1 / 127.5, 0],
    [[103.939, 116.779, 123.68], 'BGR', 1, 0], // caffe-style: not fused
    [[0.485, 0.456, 0.406], 'RGB', 1 / 255, 0.1], // per-channel: not fused
    [[2, 2, 2], 'BGR', 0.5, 3],            // BGR: not fused
  ]) {
    MANIFESTS.push({ input: { height: 224, width: 224, channels: 3 }, preprocessing: {
      mean, channel_order: order, scale, offset, fit: 'stretch',
      resize: { method: 'bilinear', align_corners: align, half_pixel_centers: half } } });
  }
}
const PIXELS = [[120, 120], [333, 250], [1, 1], [224, 224], [9, 300]];
const pixelsOf = (k) => tf.randomUniform([...PIXELS[k % PIXELS.length], 3], 0, 256, 'int32', 100 + k);
const preprocessed = (k) => tf.tidy(() => preprocess(tf, pixelsOf(k), MANIFESTS[k]).dataSync().slice());
const expectedPre = MANIFESTS.map((_, k) => preprocessed(k));
await tf.setBackend('cpu');
const cpuDiffers = cases.map((_, i) => resized(i).filter((v, k) => v !== expected[i][k]).length);
await tf.setBackend('wasm');
const binaries = (await compileKernels()).resize;
const patched = patchWasmResizeBilinear(tf, binaries);
const registered = registerResizeNormalise(tf, binaries);
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

test('preprocess.js with the fused kernel gives its ops\' values, to the bit', async () => {
  assert.equal(registered, true);
  let fused = 0;
  for (const [k, manifest] of MANIFESTS.entries()) {
    const { kernelNames } = await tf.profile(() => { tf.tidy(() => preprocess(tf, pixelsOf(k), manifest)).dispose(); });
    const p = manifest.preprocessing;
    const covered = p.channel_order !== 'BGR' && (p.mean == null || p.mean.every((m) => m === p.mean[0]));
    assert.equal(kernelNames.includes(RESIZE_NORMALISE), covered, `manifest ${k}: fused ${!covered}`);
    fused += covered ? 1 : 0;
    const got = preprocessed(k);
    const differ = got.reduce((n, v, i) => n + (Object.is(v, expectedPre[k][i]) ? 0 : 1), 0);
    assert.equal(differ, 0, `manifest ${k} ${JSON.stringify(p)}: ${differ} values differ`);
  }
  assert.equal(fused, 9);
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

// data.js rgbaToPixels: the page's canvas pixels as float32 are exactly tf.browser.fromPixels'
// values (cast), for every channel count, so preprocessing (and parity with Python) is unchanged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { rgbaToPixels } from '../src/data.js';

test('rgbaToPixels equals fromPixels cast to float32 for 1 to 4 channels', () => {
  const width = 7;
  const height = 5;
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 97 + 13) % 256; // every byte value range, alpha too
  for (const channels of [1, 2, 3, 4]) {
    const got = rgbaToPixels(tf, data, width, height, channels);
    const want = tf.tidy(() => tf.cast(tf.browser.fromPixels({ data, width, height }, channels), 'float32'));
    assert.equal(got.dtype, 'float32');
    assert.deepEqual(got.shape, [height, width, channels]);
    assert.deepEqual(Array.from(got.dataSync()), Array.from(want.dataSync()));
    tf.dispose([got, want]);
  }
  assert.throws(() => rgbaToPixels(tf, data, width, height, 5), /1 to 4 channels/);
});

test('rgbaToPixels reads a video frame copy: RGBX or BGRX rows at an offset, with padded strides', () => {
  const width = 5;
  const height = 3;
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 89 + 7) % 256;
  const offset = 12;
  const stride = 4 * width + 8; // each row padded by 8 bytes, as a frame's plane may be
  for (const bgr of [false, true]) {
    const rows = new Uint8Array(offset + stride * height).fill(255);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const [r, g, b, a] = data.subarray(4 * (y * width + x), 4 * (y * width + x) + 4);
        rows.set(bgr ? [b, g, r, a] : [r, g, b, a], offset + y * stride + 4 * x);
      }
    }
    for (const channels of [1, 2, 3]) {
      const got = rgbaToPixels(tf, rows, width, height, channels, { offset, stride, bgr });
      const want = rgbaToPixels(tf, data, width, height, channels);
      assert.deepEqual(got.shape, [height, width, channels]);
      assert.deepEqual(Array.from(got.dataSync()), Array.from(want.dataSync()), `bgr ${bgr}, ${channels} channels`);
      tf.dispose([got, want]);
    }
  }
});

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

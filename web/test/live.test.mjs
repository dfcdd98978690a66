// Live prediction's pacing without a camera: a fake video whose frames the test presents, and
// predictions the test finishes. One prediction in flight; one that ends after a newer frame
// came starts the next at once; one that ends before waits for the next frame.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveLoop } from '../src/live.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));

function fakeVideo() {
  const waiting = [];
  return {
    requestVideoFrameCallback: (f) => waiting.push(f),
    present() { waiting.splice(0).forEach((f) => f(0, {})); },
  };
}

function loop(video) {
  const pending = [];
  const results = [];
  const live = new LiveLoop({
    video,
    predictFrame: () => new Promise((resolve) => pending.push(resolve)),
    onResult: (r) => results.push(r),
    onError: (e) => { throw e; },
  });
  return { live, pending, results };
}

test('a prediction slower than a frame starts the next on the newest frame at once', async () => {
  const video = fakeVideo();
  const { live, pending, results } = loop(video);
  live.start();
  video.present(); // frame 1: prediction 1 starts
  assert.equal(pending.length, 1);
  video.present(); // frames 2 and 3 arrive while it runs: none starts (one in flight)
  video.present();
  assert.equal(pending.length, 1);
  pending.shift()('p1');
  await settle();
  assert.deepEqual(results, ['p1']);
  assert.equal(pending.length, 1, 'the next prediction started without waiting for another frame');
  pending.shift()('p2'); // no frame came during prediction 2: the loop waits
  await settle();
  assert.equal(pending.length, 0);
  video.present();
  assert.equal(pending.length, 1);
  assert.equal(live.videoFrames, 4);
  assert.equal(live.frames, 2);
  live.stop();
  pending.shift()('p3');
  await settle();
  video.present();
  assert.deepEqual(results, ['p1', 'p2'], 'nothing is reported or started once stopped');
  assert.equal(pending.length, 0);
});

test('a frame with nothing to predict (null) is skipped and the loop waits for the next', async () => {
  const video = fakeVideo();
  const live = new LiveLoop({ video, predictFrame: async () => null, onResult: () => assert.fail('no result'), onError: (e) => { throw e; } });
  live.start();
  video.present();
  await settle();
  video.present();
  await settle();
  assert.equal(live.frames, 0);
  assert.equal(live.videoFrames, 2);
  live.stop();
});

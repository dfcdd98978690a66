// The webcam's pacing without a camera: hold-to-record's Recorder (a slow add skips ticks,
// never piles frames up; an error stops it) and live prediction's frames per second.
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { framesPerSecond } from '../src/live.js';
import { Recorder } from '../src/recorder.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('a recorder adds one frame per tick while the adds keep up', async () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const added = [];
    const counts = [];
    const recorder = new Recorder({ intervalMs: 100, addFrame: async (n) => { added.push(n); }, onCount: (c) => counts.push(c) });
    recorder.start();
    await settle();
    for (let i = 0; i < 5; i++) {
      mock.timers.tick(100);
      await settle();
    }
    recorder.stop();
    mock.timers.tick(500);
    await settle();
    assert.deepEqual(added, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(counts, [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(recorder.skipped, 0);
    assert.equal(recorder.recording, false);
  } finally {
    mock.timers.reset();
  }
});

test('a slow add skips the ticks that come meanwhile instead of queueing them', async () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    let inFlight = 0;
    let most = 0;
    const pending = [];
    const recorder = new Recorder({
      intervalMs: 100,
      addFrame: () => new Promise((resolve) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        pending.push(() => { inFlight -= 1; resolve(); });
      }),
    });
    recorder.start();
    for (let i = 0; i < 10; i++) mock.timers.tick(100); // ten ticks while the first add is still running
    await settle();
    assert.equal(most, 1);
    assert.equal(recorder.skipped, 10);
    pending.shift()();
    await settle();
    assert.equal(recorder.count, 1);
    mock.timers.tick(100);
    await settle();
    assert.equal(pending.length, 1); // the next tick took the next frame
    recorder.stop();
    let settled = false;
    recorder.settled().then(() => { settled = true; });
    await settle();
    assert.equal(settled, false); // settled() waits for the frame being added
    pending.shift()();
    await settle();
    assert.equal(settled, true);
    assert.equal(recorder.count, 2); // a frame being added when the button is let go still counts
  } finally {
    mock.timers.reset();
  }
});

test('an add that fails stops the recorder and reports the error once', async () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const errors = [];
    const recorder = new Recorder({ intervalMs: 100, addFrame: async () => { throw new Error('no frame'); }, onError: (e) => errors.push(e.message) });
    recorder.start();
    await settle();
    mock.timers.tick(300);
    await settle();
    assert.equal(recorder.recording, false);
    assert.deepEqual(errors, ['no frame']);
    assert.equal(recorder.count, 0);
  } finally {
    mock.timers.reset();
  }
});

test('frames per second counts the predictions completed in the window', () => {
  assert.equal(framesPerSecond([], 1000), 0);
  assert.equal(framesPerSecond([500], 1000), 0);
  assert.equal(framesPerSecond([0, 100, 200, 300, 400, 500], 500), 10);
  // older than the window: not counted
  assert.equal(framesPerSecond([0, 1000, 3000, 3050, 3100], 3100, 2000), 20);
});

test("getUserMedia's errors become the page's camera messages", async () => {
  const { cameraError, CameraError } = await import('../src/webcam.js');
  const kind = (name) => cameraError(Object.assign(new Error('x'), { name })).kind;
  assert.equal(kind('NotAllowedError'), 'denied');
  assert.equal(kind('SecurityError'), 'denied');
  assert.equal(kind('NotFoundError'), 'missing');
  assert.equal(kind('OverconstrainedError'), 'missing');
  assert.equal(kind('NotReadableError'), 'busy');
  assert.equal(kind('AbortError'), 'busy');
  const other = cameraError(new TypeError('bad constraints'));
  assert.equal(other.kind, 'other');
  assert.match(other.message, /bad constraints/);
  assert.match(cameraError(Object.assign(new Error(''), { name: 'NotReadableError' })).message, /another application or tab/);
  const own = new CameraError('ended', 'gone');
  assert.equal(cameraError(own), own);
});

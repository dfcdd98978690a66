// The TF.js worker's client (web/src/tfworker.js) against a stand-in Worker: jobs answered in
// order, extract() as one job with its progress and Stop, lanes sharing extract() and rows(),
// training's epochs and Stop message, a dead worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { TfWorker, splitItems, workerLanes, workerMissing, workerRequested } from '../src/tfworker.js';
import { buildHead } from '../src/models.js';
import { FEATURE_BATCH } from '../src/featurebatch.js';

/** A Worker stand-in: `answer(message, reply)` decides what the worker would post back. */
class FakeWorker {
  constructor(answer) {
    this.answer = answer;
    this.sent = [];
  }

  postMessage(sent, transfer = []) {
    const message = structuredClone(sent, { transfer }); // as a real postMessage: transferred buffers detach
    this.sent.push({ message, transfer });
    setTimeout(() => this.answer(message, (data) => this.onmessage({ data: { id: message.id, ...data } })), 0);
  }

  terminate() {}
}

const SIZE = 3;
const rowsOf = (items) => {
  const data = new Float32Array(items.length * SIZE);
  items.forEach((item, i) => data.fill(Number(item.name), i * SIZE, (i + 1) * SIZE));
  return data;
};

test('workerRequested and workerMissing', () => {
  assert.equal(workerRequested(''), true);
  assert.equal(workerRequested('?worker=0'), false);
  assert.equal(workerMissing({}), 'no Worker');
  assert.equal(workerMissing({ Worker() {}, createImageBitmap() {} }), 'no OffscreenCanvas');
  assert.equal(workerMissing({ Worker() {}, OffscreenCanvas() {}, createImageBitmap() {} }), null);
});

/**
 * The worker's 'extract' job as tf-worker.js runs it: `batchSize` items per batch, a progress
 * message after each, a 'stop' seen between batches (null), an item named 'bad' failing the job.
 */
function extractingWorker() {
  let stopped = false;
  const fake = new FakeWorker(async (message, reply) => {
    if (message.type === 'stop') {
      stopped = true;
      return;
    }
    if (message.type !== 'extract') return reply({ type: 'error', message: `unexpected ${message.type}` });
    stopped = false;
    const { items, batchSize } = message.payload;
    for (let done = 0; done < items.length;) {
      if (stopped) return reply({ type: 'done', result: null });
      const bad = items.slice(done, done + batchSize).find((i) => i.name === 'bad');
      if (bad) return reply({ type: 'error', message: 'bad is not an image' });
      done = Math.min(done + batchSize, items.length);
      reply({ type: 'progress', done, total: items.length });
      await new Promise((r) => setTimeout(r, 5)); // the next batch: messages sent meanwhile arrive
    }
    reply({ type: 'done', result: { data: rowsOf(items), count: items.length, size: SIZE, waitMs: 0 } });
  });
  return fake;
}

test('extract: one job, the default batch, progress and the images counted, a bad item fails the run', async () => {
  const fake = extractingWorker();
  let decoded = 0;
  const client = new TfWorker(fake, (n) => { decoded += n; });
  const items = ['1', '2', '3', '4', '5'].map((name) => ({ src: `u${name}`, name, extra: 'not sent' }));
  const progress = [];
  const out = await client.extract({ items, batchSize: 2, onProgress: (d, t) => progress.push([d, t]) });
  assert.equal(out.count, 5);
  assert.equal(out.size, SIZE);
  assert.deepEqual(Array.from(out.data.subarray(SIZE * 4)), [5, 5, 5]);
  assert.deepEqual(progress, [[2, 5], [4, 5], [5, 5]]);
  assert.equal(decoded, 5);
  assert.equal(fake.sent.length, 1); // one message for the whole run, not one per batch
  assert.equal(fake.sent[0].message.payload.batchSize, 2);
  assert.deepEqual(fake.sent[0].message.payload.items[0], { src: 'u1', name: '1' });
  await client.extract({ items });
  assert.equal(fake.sent[1].message.payload.batchSize, FEATURE_BATCH); // train.js's, unless told
  await assert.rejects(client.extract({ items: [{ src: 'x', name: 'bad' }] }), /bad is not an image/);
});

test('extract: Stop between batches (after a batch, or while one runs), nothing sent if stopped before', async () => {
  const items = ['1', '2', '3', '4', '5', '6'].map((name) => ({ src: `u${name}`, name }));
  const fake = extractingWorker();
  const client = new TfWorker(fake);
  const progress = [];
  const out = await client.extract({ items, batchSize: 2, shouldStop: () => progress.length > 0,
    onProgress: (d) => progress.push(d) });
  assert.equal(out, null);
  assert.deepEqual(progress, [2]); // the stop sent at the first batch's progress ends the job before the second
  assert.deepEqual(fake.sent.map((s) => s.message.type), ['extract', 'stop']);
  assert.equal(await client.extract({ items, shouldStop: () => true }), null);
  assert.equal(fake.sent.length, 2);
  // a Stop while a batch runs, with no progress message to answer: the poll sends it
  let requested = false;
  const slow = new FakeWorker((message, reply) => {
    if (message.type === 'extract') {
      requested = true; // the Stop button, pressed while the first batch runs
      slow.finish = () => reply({ type: 'done', result: null });
    } else if (message.type === 'stop') {
      slow.finish();
    }
  });
  assert.equal(await new TfWorker(slow).extract({ items, shouldStop: () => requested }), null);
  assert.deepEqual(slow.sent.map((s) => s.message.type), ['extract', 'stop']);
});

const HEAD_MANIFEST = { backbone: { output_shape: [1, 1, SIZE] },
  head: { layers: [{ type: 'flatten' }, { type: 'dense', units: 4, activation: 'relu' }, { type: 'dense', units: 2, activation: 'softmax' }] } };

test('trainHead: features transferred once, epochs to onEpoch and the charts, Stop sent after the job, the head built here takes the weights', async () => {
  await tf.setBackend('cpu');
  // the worker's trained head: the same layers (another thread's buildHead), other weights
  const trained = buildHead(tf, HEAD_MANIFEST, { seed: 7, classes: 2 });
  const sentWeights = trained.getWeights().map((w) => ({ data: w.dataSync(), shape: w.shape, dtype: w.dtype }));
  trained.dispose();
  let stopAfterTrain = null;
  const fake = new FakeWorker(({ type, payload }, reply) => {
    if (type === 'stop') return;
    for (let e = 1; e <= payload.hyper.epochs; e++) reply({ type: 'epoch', epoch: e, logs: { loss: 1 / e } });
    stopAfterTrain = fake.sent.findIndex((s) => s.message.type === 'stop') > fake.sent.findIndex((s) => s.message.type === 'train');
    reply({ type: 'done', result: { weights: sentWeights, history: { epoch: [0, 1] }, epochs: 2, stopped: false, ms: 5 } });
  });
  const client = new TfWorker(fake);
  const feats = { data: new Float32Array(6), count: 2, size: SIZE };
  const epochs = [];
  const charted = [];
  const tensors = tf.memory().numTensors;
  const out = await client.trainHead({
    tf, manifest: HEAD_MANIFEST, feats, labelIndex: [0, 1], split: { train: [0, 1], valid: [] },
    hyper: { epochs: 2, batchSize: 1, learningRate: 0.1, optimizer: 'adam', loss: 'x', extra: 1 }, classes: 2,
    charts: { onEpochEnd: async (e, logs) => charted.push([e, logs.loss]), onTrainEnd: async () => charted.push('end') },
    onModel: (m) => { m.stopTraining = true; },
    onEpoch: (e, logs) => epochs.push([e, logs.loss]),
  });
  const train = fake.sent.find((s) => s.message.type === 'train');
  assert.equal(train.transfer[0], feats.data.buffer);
  assert.equal(feats.data.length, 0); // transferred: detached, not copied
  assert.equal(stopAfterTrain, true);
  assert.deepEqual(epochs, [[1, 1], [2, 0.5]]);
  assert.deepEqual(charted, [[0, 1], [1, 0.5], 'end']);
  assert.equal(out.epochs, 2);
  const got = out.model.getWeights().map((w) => Array.from(w.dataSync()));
  assert.deepEqual(got, sentWeights.map((w) => Array.from(w.data)));
  assert.deepEqual(out.model.outputs[0].shape, [null, 2]);
  out.model.dispose();
  assert.equal(tf.memory().numTensors, tensors); // the weights' tensors disposed once set
});

test('trainHead: a failed training disposes the head built for it', async () => {
  await tf.setBackend('cpu');
  const fake = new FakeWorker(({ type }, reply) => {
    if (type === 'train') reply({ type: 'error', message: 'out of memory' });
  });
  const tensors = tf.memory().numTensors;
  await assert.rejects(new TfWorker(fake).trainHead({
    tf, manifest: HEAD_MANIFEST, feats: { data: new Float32Array(6), count: 2, size: SIZE }, labelIndex: [0, 1],
    split: { train: [0, 1], valid: [] }, hyper: { epochs: 1, batchSize: 1 }, classes: 2,
  }), /out of memory/);
  assert.equal(tf.memory().numTensors, tensors);
});

test('a dead worker fails what is waiting and every later call', async () => {
  const fake = new FakeWorker(() => {});
  const client = new TfWorker(fake);
  const waiting = client.call('features', { items: [] });
  fake.onerror({ message: 'boom', preventDefault() {} });
  await assert.rejects(waiting, /boom/);
  await assert.rejects(client.rows([]), /boom/);
});

test('workerLanes and splitItems: one worker up to two pool threads, one lane a thread beyond, or ?lanes=N; parts none empty, a shard in byte order', () => {
  assert.equal(workerLanes('', 2), 1);
  assert.equal(workerLanes('', 1), 1);
  assert.equal(workerLanes('?lanes=2', 2), 2);
  assert.equal(workerLanes('?lanes=1', 4), 1);
  assert.equal(workerLanes('?lanes=x', 4), 4);
  assert.equal(workerLanes('', 0), 1);
  const items = [1, 2, 3, 4, 5];
  assert.deepEqual(splitItems(items, 2), [{ indices: [0, 1, 2], items: [1, 2, 3] }, { indices: [3, 4], items: [4, 5] }]);
  assert.deepEqual(splitItems(items, 3).map((p) => p.items), [[1, 2], [3], [4, 5]]);
  assert.deepEqual(splitItems([1], 2), [{ indices: [0], items: [1] }]);
  assert.deepEqual(splitItems([], 2), [{ indices: [], items: [] }]);
  // served images in their shard's byte order, each part's slices narrowed to its span
  const slice = (offset) => ({ url: 'p0', file: 'pack-0.bin', offset, length: 10, count: 4 });
  const packed = [30, 0, 20, 10].map((o, i) => ({ name: `i${i}`, pack: slice(o) }));
  const [first, second] = splitItems([...packed, { name: 'own' }], 2);
  assert.deepEqual(first.indices, [1, 3, 2]);
  assert.deepEqual(first.items.map((i) => i.pack.range), [[0, 30], [0, 30], [0, 30]]);
  assert.deepEqual(first.items.map((i) => i.pack.count), [3, 3, 3]);
  assert.deepEqual(second.indices, [0, 4]);
  assert.deepEqual(second.items[0].pack, { ...slice(30), range: [30, 40], count: 1 });
  assert.deepEqual(second.items[1], { name: 'own' });
});

/** A 'features' job as tf-worker.js featuresOf runs it: an item named 'bad' skipped, its row zero. */
function rowsWorker() {
  return new FakeWorker((message, reply) => {
    const { items } = message.payload;
    const skipped = [];
    const data = rowsOf(items);
    items.forEach((item, i) => {
      if (item.name === 'bad') {
        skipped.push({ index: i, input: true, reason: 'bad: not an image' });
        data.fill(0, i * SIZE, (i + 1) * SIZE);
      }
    });
    reply({ type: 'done', result: { data, size: SIZE, skipped } });
  });
}

test('lanes: extract() and rows() share the items, rows and skipped indices in the callers order', async () => {
  const [first, second] = [extractingWorker(), extractingWorker()];
  let decoded = 0;
  const client = new TfWorker(first, (n) => { decoded += n; });
  client.addLane(new TfWorker(second));
  const items = ['1', '2', '3', '4', '5'].map((name) => ({ src: `u${name}`, name }));
  const progress = [];
  const out = await client.extract({ items, batchSize: 4, onProgress: (d, t) => progress.push([d, t]) });
  assert.deepEqual(Array.from(out.data), items.flatMap((i) => [1, 2, 3].map(() => Number(i.name))));
  assert.equal(out.count, 5);
  assert.deepEqual(first.sent[0].message.payload.items.map((i) => i.name), ['1', '2', '3']);
  assert.deepEqual(second.sent[0].message.payload.items.map((i) => i.name), ['4', '5']);
  assert.equal(first.sent[0].message.payload.batchSize, 4); // each lane runs the page's batch
  assert.equal(first.sent[0].message.payload.lanes, 2); // (its kernels' helper off meanwhile)
  assert.equal(progress.at(-1)[0], 5);
  assert.ok(progress.every(([d, t], i) => t === 5 && (i === 0 || d > progress[i - 1][0])), JSON.stringify(progress));
  assert.equal(decoded, 5); // a lane's decodes counted by the page's callback

  const [a, b] = [rowsWorker(), rowsWorker()];
  const rowsClient = new TfWorker(a);
  rowsClient.addLane(new TfWorker(b));
  const r = await rowsClient.rows(['1', '2', 'bad', '4'].map((name) => ({ src: 'x', name })), 4);
  assert.deepEqual(r.skipped.map((s) => s.index), [2]);
  assert.deepEqual(Array.from(r.data), [1, 1, 1, 2, 2, 2, 0, 0, 0, 4, 4, 4]);
  assert.equal(b.sent[0].message.payload.batchSize, 4); // each lane runs the page's batch, as extract()
});

test('lanes: a lane that fails an item stops the others and names it; a failed lane is left out', async () => {
  const [first, second] = [extractingWorker(), extractingWorker()];
  const client = new TfWorker(first);
  const lane = new TfWorker(second);
  client.addLane(lane);
  const items = ['1', '2', '3', '4', 'bad', '6', '7', '8'].map((name) => ({ src: 'x', name }));
  await assert.rejects(client.extract({ items, batchSize: 2 }), /bad is not an image/); // the second lane's first
  assert.ok(first.sent.some((s) => s.message.type === 'stop'), 'the first lane was told to stop');
  lane.failAll(new Error('gone'));
  const out = await client.extract({ items: items.slice(0, 4), batchSize: 2 });
  assert.equal(out.count, 4);
  assert.equal(first.sent.filter((s) => s.message.type === 'extract').at(-1).message.payload.items.length, 4);
});

test('lanes: extract() waits for the lanes still starting, then shares the items with them', async () => {
  const [first, second] = [extractingWorker(), extractingWorker()];
  const client = new TfWorker(first);
  client.lanesStarted = new Promise((resolve) => setTimeout(() => {
    client.addLane(new TfWorker(second));
    resolve(2);
  }, 20));
  const out = await client.extract({ items: ['1', '2', '3', '4'].map((name) => ({ src: 'x', name })) });
  assert.equal(out.count, 4);
  assert.equal(second.sent[0].message.payload.items.length, 2);
});

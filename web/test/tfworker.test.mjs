// The TF.js worker's client (web/src/tfworker.js) against a stand-in Worker: jobs answered in
// order, extract()'s chunks and Stop, training's epochs and Stop message, a dead worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TfWorker, workerMissing, workerRequested } from '../src/tfworker.js';

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

test('extract: chunks in order, progress, the images counted, a skipped image fails the run', async () => {
  const fake = new FakeWorker(({ type, payload }, reply) => {
    if (type !== 'features') return reply({ type: 'error', message: `unexpected ${type}` });
    const skipped = payload.items.filter((i) => i.name === 'bad').map((i) => ({ index: payload.items.indexOf(i), reason: 'bad is not an image', input: true }));
    reply({ type: 'done', result: { data: rowsOf(payload.items), size: SIZE, skipped } });
  });
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
  assert.deepEqual(fake.sent[0].message.payload.items, [{ src: 'u1', name: '1' }, { src: 'u2', name: '2' }]);
  await assert.rejects(client.extract({ items: [{ src: 'x', name: 'bad' }] }), /bad is not an image/);
  let asked = 0;
  assert.equal(await client.extract({ items, batchSize: 2, shouldStop: () => asked++ > 0 }), null);
});

test('trainHead: features transferred once, epochs to onEpoch and the charts, Stop sent after the job', async () => {
  let stopAfterTrain = null;
  const fake = new FakeWorker(({ type, payload }, reply) => {
    if (type === 'stop') return;
    for (let e = 1; e <= payload.hyper.epochs; e++) reply({ type: 'epoch', epoch: e, logs: { loss: 1 / e } });
    stopAfterTrain = fake.sent.findIndex((s) => s.message.type === 'stop') > fake.sent.findIndex((s) => s.message.type === 'train');
    reply({ type: 'done', result: { artifacts: { weightData: new ArrayBuffer(4) }, history: { epoch: [0, 1] }, epochs: 2, stopped: false, ms: 5 } });
  });
  const client = new TfWorker(fake);
  const feats = { data: new Float32Array(6), count: 2, size: SIZE };
  const epochs = [];
  const charted = [];
  const tf = { loadLayersModel: async (handler) => ({ loadedFrom: handler }), io: { fromMemory: (a) => ({ memory: a }) } };
  const out = await client.trainHead({
    tf, manifest: {}, feats, labelIndex: [0, 1], split: { train: [0, 1], valid: [] },
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
  assert.ok(out.model.loadedFrom.memory.weightData instanceof ArrayBuffer);
});

test('a dead worker fails what is waiting and every later call', async () => {
  const fake = new FakeWorker(() => {});
  const client = new TfWorker(fake);
  const waiting = client.call('features', { items: [] });
  fake.onerror({ message: 'boom', preventDefault() {} });
  await assert.rejects(waiting, /boom/);
  await assert.rejects(client.rows([]), /boom/);
});

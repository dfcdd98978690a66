// web/src/store.js in Node on fake-indexeddb: named projects saved and restored, one
// transaction per save (a failure half way keeps the previous save), format migration,
// features of another backbone left out.
//   cd web && node --test test/store.test.mjs
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMAT, StoreError, migrate, openStore, snapshotOf } from '../src/store.js';

let dbCount = 0;
const fresh = (options = {}) => openStore({ name: `test-${++dbCount}`, prepareImage: async (b) => b, ...options });

const png = (n) => new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47, n, n + 1])], { type: 'image/png' });

/** A project as web/src/project.js holds it: two classes, blobs and one served URL, features for some. */
function project({ features = true } = {}) {
  const examples = [
    { id: 'a1', label: 'cat', role: 'train', name: 'a1.png', src: png(1) },
    { id: 'a2', label: 'cat', role: 'valid', name: 'a2.png', src: png(2) },
    { id: 'b1', label: 'dog', role: 'train', name: 'b1.png', src: png(3) },
    { id: 'images/1/x.jpg', label: 'dog', role: 'test', name: 'x.jpg', src: 'http://site.test/images/1/x.jpg' },
  ];
  const map = new Map();
  if (features) examples.slice(0, 3).forEach((e, i) => map.set(e.id, new Float32Array([i, i + 0.5, -i])));
  return { classes: ['dog', 'cat'], examples, features: map, featureSize: 3 };
}

async function bytes(blob) {
  return Array.from(new Uint8Array(await blob.arrayBuffer()));
}

const HEAD = {
  artifacts: { modelTopology: { class_name: 'Sequential' }, weightSpecs: [{ name: 'w', shape: [3, 2], dtype: 'float32' }],
    weightData: new Float32Array([1, 2, 3, 4, 5, 6]).buffer },
  labels: ['dog', 'cat'], hyper: { epochs: 5, batchSize: 8, learningRate: 0.001 },
};

describe('store', () => {
  test('a project round-trips: classes in order, examples, image bytes, features, head, last used', async () => {
    const store = await fresh();
    const p = project();
    const wrote = await store.save('pets', snapshotOf(p, { backboneKey: 'bb1', head: HEAD }));
    assert.deepEqual([wrote.images, wrote.features], [3, 3]);
    const back = await store.load('pets', { backboneKey: 'bb1' });
    assert.deepEqual(back.classes, ['dog', 'cat']);
    assert.deepEqual(back.examples.map((e) => [e.id, e.label, e.role, e.name]),
      p.examples.map((e) => [e.id, e.label, e.role, e.name]));
    for (const [i, e] of back.examples.entries()) {
      if (typeof p.examples[i].src === 'string') assert.equal(e.src, p.examples[i].src);
      else assert.deepEqual(await bytes(e.src), await bytes(p.examples[i].src));
    }
    assert.deepEqual([...back.features.keys()].sort(), ['a1', 'a2', 'b1']);
    assert.deepEqual(Array.from(back.features.get('a2')), [1, 1.5, -1]);
    assert.equal(back.featureSize, 3);
    assert.deepEqual(back.head.labels, ['dog', 'cat']);
    assert.deepEqual(Array.from(new Float32Array(back.head.artifacts.weightData)), [1, 2, 3, 4, 5, 6]);
    assert.equal(await store.lastUsed(), 'pets');
    assert.equal(await store.load('nope', { backboneKey: 'bb1' }), null);
  });

  test('a second save writes only what is new and deletes what was removed', async () => {
    const store = await fresh();
    const p = project();
    await store.save('pets', snapshotOf(p, { backboneKey: 'bb1' }));
    p.examples = p.examples.filter((e) => e.id !== 'a1');
    p.features.delete('a1');
    p.examples.push({ id: 'c1', label: 'cat', role: 'train', name: 'c1.png', src: png(9) });
    p.features.set('c1', new Float32Array([7, 7, 7]));
    const wrote = await store.save('pets', snapshotOf(p, { backboneKey: 'bb1' }));
    assert.deepEqual([wrote.images, wrote.features], [1, 1]);
    const back = await store.load('pets', { backboneKey: 'bb1' });
    assert.deepEqual(back.examples.map((e) => e.id), ['a2', 'b1', 'images/1/x.jpg', 'c1']);
    assert.deepEqual([...back.features.keys()].sort(), ['a2', 'b1', 'c1']);
    assert.deepEqual(await bytes(back.examples[3].src), await bytes(png(9)));
  });

  test('several named projects are kept apart; rename and delete touch one', async () => {
    const store = await fresh();
    await store.save('one', snapshotOf(project(), { backboneKey: 'bb1' }));
    const two = project();
    two.classes = ['a', 'b', 'c'];
    two.examples = [{ id: 'z', label: 'c', role: 'train', name: 'z.png', src: png(5) }];
    two.features = new Map();
    await store.save('two', snapshotOf(two, { backboneKey: 'bb1' }));
    assert.deepEqual((await store.list()).map((p) => [p.name, p.classes, p.examples]), [['one', 2, 4], ['two', 3, 1]]);
    await store.rename('two', 'three');
    await assert.rejects(store.rename('one', 'three'), /exists already/);
    assert.deepEqual((await store.list()).map((p) => p.name), ['one', 'three']);
    const three = await store.load('three', { backboneKey: 'bb1' });
    assert.deepEqual(three.classes, ['a', 'b', 'c']);
    assert.deepEqual(await bytes(three.examples[0].src), await bytes(png(5)));
    await store.remove('one');
    assert.deepEqual((await store.list()).map((p) => p.name), ['three']);
    assert.equal(await store.load('one', { backboneKey: 'bb1' }), null);
    assert.equal((await store.load('three', { backboneKey: 'bb1' })).examples.length, 1);
  });

  test('features and head of another backbone are not restored; saving with the new one replaces them', async () => {
    const store = await fresh();
    await store.save('pets', snapshotOf(project(), { backboneKey: 'bb1', head: HEAD }));
    const other = await store.load('pets', { backboneKey: 'bb2' });
    assert.equal(other.features.size, 0);
    assert.equal(other.featureSize, null);
    assert.equal(other.head, null);
    assert.deepEqual(other.dropped, { features: 3, head: true });
    assert.equal(other.examples.length, 4); // the images are all there, to recompute from
    const p = project({ features: false });
    p.features.set('a1', new Float32Array([9, 9, 9]));
    const wrote = await store.save('pets', snapshotOf(p, { backboneKey: 'bb2' }));
    assert.equal(wrote.features, 1);
    const back = await store.load('pets', { backboneKey: 'bb2' });
    assert.deepEqual([...back.features.keys()], ['a1']);
    assert.equal((await store.load('pets', { backboneKey: 'bb1' })).features.size, 0);
  });

  test('a save that fails half way (quota exceeded on a put) leaves the previous save whole', async () => {
    const store = await fresh();
    const before = project();
    await store.save('pets', snapshotOf(before, { backboneKey: 'bb1' }));
    const after = project();
    after.classes = ['dog', 'cat', 'bird'];
    after.examples = after.examples.filter((e) => e.id !== 'a1');
    for (let i = 0; i < 5; i++) {
      after.examples.push({ id: `n${i}`, label: 'bird', role: 'train', name: `n${i}.png`, src: png(20 + i) });
      after.features.set(`n${i}`, new Float32Array([i, i, i]));
    }
    const put = IDBObjectStore.prototype.put;
    let calls = 0;
    IDBObjectStore.prototype.put = function (...args) {
      calls += 1;
      if (calls === 4) throw new DOMException('the disk is full', 'QuotaExceededError');
      return put.apply(this, args);
    };
    try {
      await assert.rejects(store.save('pets', snapshotOf(after, { backboneKey: 'bb1' })), (e) => {
        assert.ok(e instanceof StoreError);
        assert.match(e.message, /Could not save project pets: .*quota exceeded.*previous save is kept/);
        return true;
      });
    } finally {
      IDBObjectStore.prototype.put = put;
    }
    assert.ok(calls >= 4, 'the failure happened inside the save');
    const back = await store.load('pets', { backboneKey: 'bb1' });
    assert.deepEqual(back.classes, ['dog', 'cat']);
    assert.deepEqual(back.examples.map((e) => e.id), before.examples.map((e) => e.id));
    assert.deepEqual([...back.features.keys()].sort(), ['a1', 'a2', 'b1']);
    assert.deepEqual(await bytes(back.examples[0].src), await bytes(png(1)));
  });

  test('an error thrown inside the transaction (a closed tab: abort) keeps the previous save', async () => {
    const store = await fresh();
    await store.save('pets', snapshotOf(project(), { backboneKey: 'bb1' }));
    const after = project();
    after.examples.push({ id: 'late', label: 'cat', role: 'train', name: 'late.png', src: png(40) });
    const abort = IDBTransaction.prototype.abort;
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (...args) {
      if (args[0] && args[0].id === 'late') this.transaction.abort(); // as a closing tab aborts it
      return put.apply(this, args);
    };
    try {
      await assert.rejects(store.save('pets', snapshotOf(after, { backboneKey: 'bb1' })), /Could not save project pets/);
    } finally {
      IDBObjectStore.prototype.put = put;
      IDBTransaction.prototype.abort = abort;
    }
    const back = await store.load('pets', { backboneKey: 'bb1' });
    assert.equal(back.examples.length, 4);
    assert.ok(!back.examples.some((e) => e.id === 'late'));
  });

  test('an older format is migrated on load; a newer one is refused with a message', async () => {
    // Format 0 as a test stands it in: the class order under "labels".
    const migrations = { 0: ({ labels, ...rest }) => ({ ...rest, classes: labels }) };
    const store = await fresh({ migrations });
    await store.save('pets', snapshotOf(project(), { backboneKey: 'bb1' }));
    const tx = store.db.transaction('projects', 'readwrite');
    const os = tx.objectStore('projects');
    const req = os.get('pets');
    await new Promise((resolve) => { req.onsuccess = resolve; });
    const { classes, ...rest } = req.result;
    os.put({ ...rest, labels: classes, format: 0 });
    os.put({ ...rest, name: 'future', classes, format: FORMAT + 1 });
    await new Promise((resolve) => { tx.oncomplete = resolve; });
    const back = await store.load('pets', { backboneKey: 'bb1' });
    assert.deepEqual(back.classes, ['dog', 'cat']);
    assert.equal(back.features.size, 3);
    await assert.rejects(store.load('future', { backboneKey: 'bb1' }), /saved by a newer page \(format 2/);
    assert.throws(() => migrate({ name: 'x', format: 0 }), /no migration from format 0/);
  });
});

// web/src/wasm/identity.js on the wasm backend: a clone shares its source's data instead
// of copying it, keeps its values when the source is disposed or a variable it was taken
// from is assigned, strings still copy, and the data is freed once the last of them goes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { shareWasmIdentity } from '../src/wasm/identity.js';

await tf.setBackend('wasm');
await tf.ready();
const backend = tf.backend();
const offset = (t) => backend.getMemoryOffset(t.dataId);
const values = [1.5, -2, 3.25, 4, 5, 6];
const patched = shareWasmIdentity(tf);
const dataIds = backend.numDataIds();

test('the replaced kernel is in place', () => {
  assert.equal(patched, true);
});

test('a clone shares the data and keeps it when its source is disposed', () => {
  const x = tf.tensor(values, [2, 3]);
  const c = x.clone();
  assert.equal(offset(c), offset(x));
  x.dispose();
  assert.deepEqual(Array.from(c.dataSync()), values);
  c.dispose();
});

test('a clone of a variable keeps its values when the variable is assigned', () => {
  const initial = tf.tensor(values);
  const v = tf.variable(initial);
  const before = v.clone();
  const next = tf.tensor(values.map((k) => k * 10));
  v.assign(next);
  assert.deepEqual(Array.from(before.dataSync()), values);
  assert.deepEqual(Array.from(v.dataSync()), values.map((k) => k * 10));
  tf.dispose([before, v, initial, next]);
});

test('strings still clone', () => {
  const s = tf.tensor(['a', 'b']);
  const sc = s.clone();
  assert.deepEqual(sc.dataSync(), ['a', 'b']);
  tf.dispose([s, sc]);
});

test('no data leaks', () => {
  assert.equal(backend.numDataIds() - dataIds, 0);
});

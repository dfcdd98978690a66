// Checks web/src/identity.js in Node on the wasm backend: a clone shares its source's data
// instead of copying it, keeps its values when the source is disposed or a variable it was
// taken from is assigned, and the data is freed once the last of them is disposed.
//   node web/tools/identity-check.mjs > result.json
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { shareWasmIdentity } from '../src/identity.js';

await tf.setBackend('wasm');
await tf.ready();
const backend = tf.backend();
const offset = (t) => backend.getMemoryOffset(t.dataId);
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

const out = { patched: shareWasmIdentity(tf) };
const dataIds = backend.numDataIds();
const values = [1.5, -2, 3.25, 4, 5, 6];
const x = tf.tensor(values, [2, 3]);
const c = x.clone();
out.shares = offset(c) === offset(x);
x.dispose();
out.cloneAfterSourceDisposed = same(Array.from(c.dataSync()), values);
c.dispose();

const initial = tf.tensor(values);
const v = tf.variable(initial);
const before = v.clone();
const next = tf.tensor(values.map((k) => k * 10));
v.assign(next);
out.cloneAfterAssign = same(Array.from(before.dataSync()), values);
out.variableAfterAssign = same(Array.from(v.dataSync()), values.map((k) => k * 10));
tf.dispose([before, v, initial, next]);

const s = tf.tensor(['a', 'b']);
const sc = s.clone();
out.strings = same(sc.dataSync(), ['a', 'b']);
tf.dispose([s, sc]);
out.leakedData = backend.numDataIds() - dataIds;
console.log(JSON.stringify(out));

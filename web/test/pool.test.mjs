// web/src/wasm/pool.js: the page's training kernels split over a helper thread (worker_threads
// here, on a shared WebAssembly.Memory as the threaded wasm backend's) write exactly the bytes
// one thread writes: the products over mostly-zero features (both splits of the forward, the
// kernel gradient), Adam in place and the backbone's convolutions (conv.wat). Without a helper, or with one that never answers, the
// caller runs everything itself and nothing hangs.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { KernelPool, startKernelPool, STATE, SLOT } from '../src/wasm/pool.js';
import { product, productTransposeA } from '../src/wasm/sparse.js';
import { adamUpdate } from '../src/wasm/adam.js';
import { split } from '../src/wasm/conv.js';
import { compileKernels } from '../tools/wat.mjs';

const binaries = await compileKernels();
const memory = new WebAssembly.Memory({ initial: 1100, maximum: 65536, shared: true });
const instance = (b) => new WebAssembly.Instance(new WebAssembly.Module(b.shared), { env: { memory } }).exports;
const kernel = { ...instance(binaries.sparse), ...instance(binaries.adam), ...instance(binaries.conv) };
let worker = null;
const pool = startKernelPool(memory, binaries, () => {
  worker = new Worker(new URL('./kernel-helper.mjs', import.meta.url));
  return worker;
});
after(() => worker && worker.terminate());

let top = 64;
const alloc = (n) => { const at = top; top += 4 * n + 64; return at; };
const f32 = (at, n) => new Float32Array(memory.buffer, at, n);
let seed = 3;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296; };
const fill = (at, n, zeros = 0) => f32(at, n).forEach((_, i, a) => { a[i] = rnd() < zeros ? 0 : rnd() * 4 - 1; });
const bytes = (at, n) => Buffer.from(memory.buffer.slice(at, at + 4 * n));

async function readyPool() {
  while (!pool.ready) await new Promise((r) => setTimeout(r, 5));
  return pool;
}

/**
 * `kernel` whose functions, on this thread, first wait until the helper has taken a chunk of
 * the job (or none is left): each split job then runs on both threads, however busy the
 * machine, instead of the caller taking every chunk before the helper wakes.
 */
function sharing(p) {
  const wait = () => {
    const deadline = Date.now() + 10000;
    for (;;) {
      const v = Atomics.load(p.ctl, SLOT.next);
      const chunks = Atomics.load(p.ctl, SLOT.fn) >>> 16;
      if (Atomics.load(p.ctl, SLOT.done) > 0 || (v & 0xff) >= chunks) return;
      assert.ok(Date.now() < deadline, 'the helper took no chunk in 10 s');
      Atomics.wait(p.ctl, SLOT.done, 0, 1);
    }
  };
  return Object.fromEntries(Object.entries(kernel).map(([name, f]) => [name, (...args) => { wait(); return f(...args); }]));
}

// [m, k, n]: the default head's shapes, and odd ones (n no multiple of 4, k odd)
for (const [m, k, n] of [[32, 12544, 100], [7, 20001, 10], [3, 33333, 6]]) {
  test(`products ${m}x${k}x${n} on two threads equal one thread's bytes`, async () => {
    const p = await readyPool();
    const x = alloc(m * k), w = alloc(k * n), dy = alloc(m * n), y1 = alloc(m * n), y2 = alloc(m * n);
    const g1 = alloc(k * n), g2 = alloc(k * n);
    fill(x, m * k, 0.85);
    fill(w, k * n);
    fill(dy, m * n);
    fill(y2, m * n); // stale contents: every output value must be written
    fill(g2, k * n);
    product(kernel, null, x, w, y1, m, k, n);
    productTransposeA(kernel, null, x, dy, g1, m, k, n);
    const before = p.splits;
    const shared = sharing(p);
    for (const by of ['columns', 'rows']) {
      product(shared, p, x, w, y2, m, k, n, by);
      assert.ok(bytes(y1, m * n).equals(bytes(y2, m * n)), `forward by ${by}`);
      fill(y2, m * n);
    }
    productTransposeA(shared, p, x, dy, g2, m, k, n);
    assert.ok(bytes(g1, k * n).equals(bytes(g2, k * n)), 'kernel gradient');
    assert.ok(f32(g1, k * n).some((v) => v !== 0));
    assert.equal(p.splits - before, n >= 8 ? 3 : 2, 'each product ran on both threads');
  });
}

test('Adam in place on two threads equals one thread\'s bytes', async () => {
  const p = await readyPool();
  const size = 12544 * 100 + 3;
  const scalars = [0.9, 0.1, 0.999, 0.001, 0.19, 0.002, 1e-7, -3e-4];
  const sets = [0, 1].map(() => ({ w: alloc(size), g: alloc(size), m: alloc(size), v: alloc(size) }));
  for (const key of ['w', 'g', 'm', 'v']) {
    fill(sets[0][key], size);
    if (key === 'v') f32(sets[0].v, size).forEach((_, i, a) => { a[i] = Math.abs(a[i]); });
    bytes(sets[0][key], size).copy(Buffer.from(memory.buffer, sets[1][key], 4 * size));
  }
  const before = p.splits;
  sets.forEach(({ w, g, m, v }, i) => adamUpdate(i ? sharing(p) : kernel, i ? p : null, [w, g, m, v, w, m, v], size, scalars));
  assert.equal(p.splits - before, 1);
  for (const key of ['w', 'm', 'v']) assert.ok(bytes(sets[0][key], size).equals(bytes(sets[1][key], size)), key);
});

/** A pool whose helper is a stub: `ready` says whether it claims to have started. */
function stubPool(ready) {
  const stub = new KernelPool({ postMessage() {} }, memory, {});
  if (ready) Atomics.store(stub.ctl, SLOT.state, STATE.ready);
  return stub;
}

test('a helper not started, or one that never takes a chunk: the caller runs them all, no wait', () => {
  const [m, k, n] = [32, 4096, 100];
  const x = alloc(m * k), dy = alloc(m * n), g1 = alloc(k * n), g2 = alloc(k * n);
  fill(x, m * k, 0.8);
  fill(dy, m * n);
  productTransposeA(kernel, null, x, dy, g1, m, k, n);
  for (const ready of [false, true]) {
    const stub = stubPool(ready);
    fill(g2, k * n);
    productTransposeA(kernel, stub, x, dy, g2, m, k, n);
    assert.ok(bytes(g1, k * n).equals(bytes(g2, k * n)), `helper ready: ${ready}`);
    assert.equal(stub.splits, 0);
    // a ready stub got the job: its chunks were all taken here, and the job closed
    assert.equal(Atomics.load(stub.ctl, SLOT.next), ready ? (1 << 8) | 0xff : 0);
  }
});

test('no pool on unshared memory', () => {
  const local = new WebAssembly.Memory({ initial: 1 });
  assert.equal(startKernelPool(local, binaries, () => { throw new Error('not called'); }), null);
});

test('convolutions on two threads equal one thread\'s bytes', async () => {
  const p = await readyPool();
  const shared = sharing(p);
  // pointwise: 4 x 33 x 31 rows (a multiple of 6 per chunk, the rest in the last) of 16 channels -> 24
  const [m, k, n] = [4 * 33 * 31, 16, 24];
  const a = alloc(m * k), w = alloc(k * n), b = alloc(n), y1 = alloc(m * n), y2 = alloc(m * n);
  [[a, m * k], [w, k * n], [b, n], [y2, m * n]].forEach(([at, len]) => fill(at, len));
  const rows = (out) => (r0, r1) => [a + 4 * r0 * k, w, b, out + 4 * r0 * n, r1 - r0, k, n, 0, 6];
  split(kernel.pointwise, null, 3, m, m * n, rows(y1), 6);
  const before = p.splits;
  split(shared.pointwise, p, 3, m, m * n, rows(y2), 6);
  assert.ok(bytes(y1, m * n).equals(bytes(y2, m * n)), 'pointwise');
  // depthwise: 4 x 48 x 48 x 8, stride 1, padding 1, no activation (infinite bounds as arguments)
  const [batch, h, c] = [4, 48, 8];
  const size = batch * h * h * c;
  const x = alloc(size), f = alloc(9 * c), fb = alloc(c), d1 = alloc(size), d2 = alloc(size);
  [[x, size], [f, 9 * c], [fb, c], [d2, size]].forEach(([at, len]) => fill(at, len));
  const outRows = (out) => (r0, r1) => [x, f, fb, out, h, h, c, h, h, 1, 1, 1, -Infinity, Infinity, r0, r1];
  split(kernel.depthwise, null, 4, batch * h, size, outRows(d1), 1);
  split(shared.depthwise, p, 4, batch * h, size, outRows(d2), 1);
  assert.ok(bytes(d1, size).equals(bytes(d2, size)), 'depthwise');
  // the first layer: 4 x 96 x 96 x 3 -> 48 x 48 x 8, stride 2, padding at the bottom and right
  const [ih, oh] = [96, 48];
  const isize = batch * ih * ih * 3, osize = batch * oh * oh * 8;
  const im = alloc(isize), k3 = alloc(27 * 8), b3 = alloc(8), o1 = alloc(osize), o2 = alloc(osize);
  [[im, isize], [k3, 27 * 8], [b3, 8], [o2, osize]].forEach(([at, len]) => fill(at, len));
  const convRows = (out) => (r0, r1) => [im, k3, b3, out, ih, ih, 3, 8, oh, oh, 2, 0, 0, 0, 6, r0, r1];
  split(kernel.conv3x3, null, 5, batch * oh, osize, convRows(o1), 1);
  split(shared.conv3x3, p, 5, batch * oh, osize, convRows(o2), 1);
  assert.ok(bytes(o1, osize).equals(bytes(o2, osize)), 'conv3x3');
  assert.equal(p.splits - before, 3, 'all three split over the helper');
});

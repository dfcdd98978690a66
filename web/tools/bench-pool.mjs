// pool.js' two-thread kernels against one thread, in Node (worker_threads on a shared
// WebAssembly.Memory), at the default head's shapes: the forward x @ w split by columns and
// by rows, the kernel gradient x^T @ dy, Adam over the 12544x100 kernel. Paired: one thread
// and two alternate within each round. Exploration aid:
//   cd web && node tools/bench-pool.mjs [rounds] [fraction of zeros]
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { startKernelPool } from '../src/wasm/pool.js';
import { product, productTransposeA } from '../src/wasm/sparse.js';
import { adamUpdate } from '../src/wasm/adam.js';
import { compileKernels } from './wat.mjs';

const ROUNDS = Number(process.argv[2] || 5);
const ZEROS = Number(process.argv[3] || 0.85);
const [M, K, N] = [32, 12544, 100];
const binaries = await compileKernels();
const memory = new WebAssembly.Memory({ initial: 1200, maximum: 65536, shared: true });
const instance = (b) => new WebAssembly.Instance(new WebAssembly.Module(b.shared), { env: { memory } }).exports;
const kernel = { ...instance(binaries.sparse), ...instance(binaries.adam) };
const pool = startKernelPool(memory, binaries, () => new Worker(new URL('../test/kernel-helper.mjs', import.meta.url)));
while (!pool.ready) await new Promise((r) => setTimeout(r, 10));

let top = 0;
const alloc = (n) => { const at = top; top += 4 * n + 64 - ((4 * n) % 64); return at; };
const f32 = (at, n) => new Float32Array(memory.buffer, at, n);
let s = 11;
const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s / 4294967296; };
const x = alloc(M * K), w = alloc(K * N), dy = alloc(M * N), y = alloc(M * N), gw = alloc(K * N);
const [g, m, v] = [alloc(K * N), alloc(K * N), alloc(K * N)];
f32(x, M * K).forEach((_, i, a) => { a[i] = rnd() < ZEROS ? 0 : rnd() * 6; });
for (const at of [w, dy, g]) f32(at, at === dy ? M * N : K * N).forEach((_, i, a) => { a[i] = rnd() - 0.5; });
const adam = (p) => adamUpdate(kernel, p, [w, g, m, v, w, m, v], K * N, [0.9, 0.1, 0.999, 0.001, 0.1, 0.001, 1e-7, -1e-4]);

const cases = {
  'forward x@w by columns': (p) => product(kernel, p, x, w, y, M, K, N, 'columns'),
  'forward x@w by rows': (p) => product(kernel, p, x, w, y, M, K, N, 'rows'),
  'gradient x^T@dy': (p) => productTransposeA(kernel, p, x, dy, gw, M, K, N),
  'adam in place': adam,
};
const time = (fn, reps = 20) => { const t = performance.now(); for (let i = 0; i < reps; i++) fn(); return (performance.now() - t) / reps; };
for (const [name, fn] of Object.entries(cases)) {
  const one = [], two = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [list, p] of (r % 2 ? [[two, pool], [one, null]] : [[one, null], [two, pool]])) list.push(time(() => fn(p)));
  }
  const med = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
  const ratio = med(one.map((o, i) => two[i] / o));
  console.log(`${name.padEnd(24)} one thread ${med(one).toFixed(2)} ms, two ${med(two).toFixed(2)} ms (${ratio.toFixed(2)}x paired)`);
}
// one job's round trip: the helper woken, takes a chunk (4 elements of Adam), "done" seen here
const tiny = [w, g, m, v, w, m, v].map((o) => o + 16);
const trip = [];
for (let r = 0; r < 200; r++) {
  const t = performance.now();
  const args = [...tiny, 4, 0.9, 0.1, 0.999, 0.001, 0.1, 0.001, 1e-7, -1e-4];
  // two chunks; this thread's first waits for the helper to take the other
  let first = true;
  const local = (...a) => {
    if (first) while (Atomics.load(pool.ctl, 3) === 0) Atomics.wait(pool.ctl, 3, 0, 1);
    first = false;
    kernel.adam(...a);
  };
  pool.run(2, local, args, args.map(() => 0), args, 2);
  trip.push(performance.now() - t);
  await new Promise((r2) => setTimeout(r2, 1)); // the helper back asleep, as between a step's jobs
}
trip.sort((p, q) => p - q);
console.log(`round trip of an empty job: p50 ${(trip[100] * 1000).toFixed(0)} us, p90 ${(trip[180] * 1000).toFixed(0)} us`);
console.log(`jobs split: ${pool.splits}; loadavg ${(await import('node:os')).loadavg()[0].toFixed(2)}`);
process.exit(0);

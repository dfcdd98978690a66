// The training step's own kernels at the default head's shapes, before/after, alternated in
// one process (A B A B, median ms of `reps`): sparse.wat's kernel gradient x^T @ dy
// (32 x 12544 features, 85% zeros -> a 12544 x 100 gradient) and its nonzeros check, from
// another checkout's sparse.wat against this one's; adam.wat's update of a 12544 x 100
// variable into three new buffers (as before) against in place (adam.js now).
//   git show REV:web/src/wasm/sparse.wat > /tmp/sparse-before.wat
//   cd web && node tools/bench-step.mjs /tmp/sparse-before.wat [reps]
import { compileWat } from './wat.mjs';

const before = process.argv[2];
const reps = Number(process.argv[3] || 30);
if (!before) throw new Error('usage: node tools/bench-step.mjs SPARSE_BEFORE.wat [reps]');
const memory = new WebAssembly.Memory({ initial: 2000, maximum: 65536 });
const instance = async (path) => new WebAssembly.Instance(
  new WebAssembly.Module((await compileWat(path)).local), { env: { memory } }).exports;
const src = (name) => new URL(`../src/wasm/${name}.wat`, import.meta.url).pathname;
const sparse = { before: await instance(before), after: await instance(src('sparse')) };
const adam = await instance(src('adam'));

const m = 32, k = 12544, n = 100, N = k * n;
let end = 1 << 16;
const alloc = (floats) => { const at = end; end += floats * 4 + 64; return at; };
const [A, B, O1, O2] = [m * k, m * n, N, N].map(alloc);
const [W, G, M, V, WO, MO, VO] = Array.from({ length: 7 }, () => alloc(N));
const f = new Float32Array(memory.buffer);
let s = 7;
const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s / 4294967296; };
for (let i = 0; i < m * k; i++) f[A / 4 + i] = rnd() < 0.85 ? 0 : rnd() * 6;
for (let i = 0; i < m * n; i++) f[B / 4 + i] = rnd() - 0.5;
for (let i = 0; i < N; i++) { f[W / 4 + i] = rnd() - 0.5; f[G / 4 + i] = (rnd() - 0.5) * 1e-2; }
const ADAM = [0.9, 0.1, 0.999, 0.001, 0.1, 0.001, 1e-7, -3e-4];

const time = (fn) => { const t = performance.now(); fn(); return performance.now() - t; };
const ms = { gradBefore: [], gradAfter: [], nzBefore: [], nzAfter: [], adamCopied: [], adamInPlace: [] };
for (let r = 0; r < reps; r++) {
  const pairs = [
    ['gradBefore', () => sparse.before.matmulTransposeA(A, B, O1, m, k, n)],
    ['gradAfter', () => sparse.after.matmulTransposeA(A, B, O2, m, k, n)],
    ['nzBefore', () => sparse.before.nonzeros(A, m * k)],
    ['nzAfter', () => sparse.after.nonzeros(A, m * k)],
    ['adamCopied', () => adam.adam(W, G, M, V, WO, MO, VO, N, ...ADAM)],
    ['adamInPlace', () => adam.adam(W, G, M, V, W, M, V, N, ...ADAM)],
  ];
  for (let i = 0; i < pairs.length; i += 2) {
    const two = r % 2 ? [pairs[i + 1], pairs[i]] : [pairs[i], pairs[i + 1]];
    for (const [name, fn] of two) ms[name].push(time(fn));
  }
}
let diff = 0;
for (let i = 0; i < N; i++) diff = Math.max(diff, Math.abs(f[O1 / 4 + i] - f[O2 / 4 + i]));
const med = (v) => v.slice(2).sort((a, b) => a - b)[Math.floor((v.length - 2) / 2)];
const line = (what, a, b) => `${what} ${med(ms[a]).toFixed(2)} -> ${med(ms[b]).toFixed(2)} ms (${(med(ms[a]) / med(ms[b])).toFixed(2)}x)`;
console.log([line('kernel gradient', 'gradBefore', 'gradAfter') + ` max |diff| ${diff}`,
  line('nonzeros', 'nzBefore', 'nzAfter'), line('adam new buffers -> in place', 'adamCopied', 'adamInPlace'),
  `load ${(await import('node:os')).loadavg()[0].toFixed(1)}`].join('; '));

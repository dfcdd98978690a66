// Backend choice: wasm (SIMD, threads when cross-origin isolated) by default,
// webgl and cpu on request, falling back wasm -> webgl -> cpu when one fails. Only wasm
// comes with the page; webgl and cpu are imported (their own chunks) when first tried.
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import ADAM_WASM from './wasm/adam.wat';
import CONV_WASM from './wasm/conv.wat';
import RESIZE_WASM from './wasm/resize.wat';
import SPARSE_WASM from './wasm/sparse.wat';
import TRANSPOSE_WASM from './wasm/transpose.wat';
import { installWasmKernels } from './wasm/kernels.js';
import { memoryOf } from './wasm/memory.js';
import { poolOf, startKernelPool } from './wasm/pool.js';

export const BACKENDS = ['wasm', 'webgl', 'cpu'];
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm'];

let wasmPathsSet = false;

/** Points the wasm backend at the .wasm files that sit beside the page, wherever it is served. */
export function configureWasmPaths(pageUrl) {
  if (wasmPathsSet) return;
  const paths = {};
  for (const file of WASM_FILES) paths[file] = new URL(file, pageUrl).href;
  setWasmPaths(paths);
  wasmPathsSet = true;
}

/**
 * Threads for the wasm pool. TF.js' default is hardwareConcurrency / 2, so a 2-core machine
 * gets a pool of 1 and the second core idles (tfjs#8513); the calling thread works in the
 * pool, so 2 uses both. Larger machines keep TF.js' half (hyper-threads share a core's
 * SIMD units).
 */
export function wasmThreads(cores) {
  const n = Math.max(1, Math.floor(cores || 1));
  return Math.max(Math.min(n, 2), Math.floor(n / 2));
}

/** The backend asked for in ?backend=, or wasm. Unknown names are ignored. */
export function requestedBackend(search) {
  const name = new URLSearchParams(search).get('backend');
  return BACKENDS.includes(name) ? name : 'wasm';
}

/**
 * Which of the page's own wasm kernels to install. ?tfjs= lists those to leave as TF.js has
 * them, for before/after benchmarks: matmul (matmul.js), transpose (transpose.js), adam
 * (adam.js), identity (identity.js), resize (resize.js), sparse (sparse.js: XNNPACK for every
 * product), conv (conv.js: XNNPACK for the backbone's convolutions), chain (chain.js: the
 * backbone's convolutions op by op), or all.
 */
export function pageKernels(search) {
  const keep = (new URLSearchParams(search).get('tfjs') || '').split(',');
  const own = (name) => !keep.includes(name) && !keep.includes('all');
  return { fastMatMul: own('matmul'), fastTranspose: own('transpose'), fusedAdam: own('adam'),
    sharedIdentity: own('identity'), fastResize: own('resize'), sparseMatMul: own('sparse'), fastConv: own('conv'),
    convChain: own('chain'),
    kernelThreads: new URLSearchParams(search).get('kernelThreads') !== '1' };
}

export const KERNEL_WORKER = 'kernel-worker.js';

/**
 * Starts the helper thread of the page's kernels (wasm/pool.js) when the backend's memory is
 * shared (TF.js' threaded build, whatever its pool's size: a lane of tfworker.js runs a pool of
 * one) and the machine has a second core for it: on one core the helper would take turns with
 * the thread it helps (and it watches for the next convolution before it sleeps, pool.js
 * LINGER_MS). ?kernelThreads=1 keeps the kernels on one thread anywhere.
 * @returns {boolean} whether the helper is starting
 */
function startKernelThreads(tf, pageUrl, binaries) {
  if (typeof Worker !== 'function' || !(navigator.hardwareConcurrency >= 2)) return false;
  // startKernelPool starts none where the memory is not shared
  return !!startKernelPool(memoryOf(tf.backend().wasm), binaries,
    () => new Worker(new URL(KERNEL_WORKER, pageUrl), { type: 'module', name: 'page kernels' }));
}

/**
 * The page's kernels' helper thread on this thread's wasm backend (wasm/pool.js): null when
 * there is none, else {enabled, splits} (jobs run on two threads so far); `enabled` true/false
 * turns the split on or off (the bench pairs both in one page).
 */
export function kernelThreads(tf, enabled) {
  if (tf.getBackend() !== 'wasm') return null;
  const pool = poolOf(memoryOf(tf.backend().wasm));
  if (!pool) return null;
  if (typeof enabled === 'boolean') pool.enabled = enabled;
  return { enabled: pool.enabled, splits: pool.splits };
}

/** The order to try: the requested backend first, then the rest of wasm -> webgl -> cpu. */
export function fallbackOrder(preferred) {
  return [preferred, ...BACKENDS.filter((b) => b !== preferred)];
}

/**
 * Starts the wasm backend with a pool of `threads`. TF.js 4.22 sizes the pool from
 * navigator.hardwareConcurrency / 2 while it initialises, whatever setThreadsCount asked
 * (measured: 2 cores -> 1 thread, 4 -> 2, 8 -> 4), so during that call only the page
 * reports twice the threads it wants as its core count.
 */
async function tryWasm(tf, threads) {
  const own = Object.getOwnPropertyDescriptor(navigator, 'hardwareConcurrency');
  try {
    Object.defineProperty(navigator, 'hardwareConcurrency', { configurable: true, get: () => threads * 2 });
  } catch (e) {
    // not configurable here: TF.js' own pool size it is
  }
  try {
    return await tryBackend(tf, 'wasm');
  } finally {
    if (own) Object.defineProperty(navigator, 'hardwareConcurrency', own);
    else delete navigator.hardwareConcurrency;
  }
}

// The backends not in the first download, imported when one is first tried.
const LATER = {
  webgl: () => import('./backend-webgl.js'),
  cpu: () => import('./backend-cpu.js'),
};

async function tryBackend(tf, name) {
  try {
    if (LATER[name] && !tf.findBackendFactory(name)) await LATER[name]();
    if (!(await tf.setBackend(name))) return false;
    await tf.ready();
    // A tiny op proves the backend can run kernels, not only initialise.
    const ok = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0] === 3);
    return ok && tf.getBackend() === name;
  } catch (e) {
    return false;
  }
}

/**
 * Activates the first working backend in fallbackOrder(preferred); on wasm, installs the
 * page's kernels (kernels.js; `kernels` as pageKernels() gives them). `threads`: the wasm
 * pool's size, wasmThreads(cores) unless given.
 * @returns {Promise<{name: string, fellBack: boolean, failed: string[], details: string}>}
 */
export async function activateBackend(tf, preferred, pageUrl, kernels = {}, threads = null) {
  configureWasmPaths(pageUrl);
  const failed = [];
  for (const name of fallbackOrder(preferred)) {
    const started = name === 'wasm'
      ? await tryWasm(tf, threads || wasmThreads(navigator.hardwareConcurrency)) : await tryBackend(tf, name);
    if (started) {
      const binaries = { adam: ADAM_WASM, transpose: TRANSPOSE_WASM, resize: RESIZE_WASM, sparse: SPARSE_WASM,
        conv: CONV_WASM };
      const own = name === 'wasm' ? installWasmKernels(tf, binaries, kernels) : [];
      if (name === 'wasm' && kernels.kernelThreads !== false && startKernelThreads(tf, pageUrl, binaries)) {
        own.push('own kernels on 2 threads');
      }
      const details = [await describe(tf, name), ...own].join(', ');
      return { name, fellBack: name !== preferred, failed, details };
    }
    failed.push(name);
  }
  throw new Error(`no TensorFlow.js backend could start (tried ${failed.join(', ')})`);
}

/** Why the wasm backend runs one thread, as the backend line says it. */
export function singleThread(isolated = globalThis.crossOriginIsolated) {
  if (isolated) return '1 thread';
  return '1 thread: this host does not send cross-origin isolation headers (COOP/COEP); see README Deploy';
}

async function describe(tf, name) {
  if (name === 'wasm') {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    return [simd ? 'SIMD' : 'no SIMD', threads ? `threads (${getThreadsCount()} in the pool)` : singleThread()].join(', ');
  }
  if (name === 'webgl') return `WebGL ${tf.env().get('WEBGL_VERSION')}`;
  return 'plain JavaScript';
}

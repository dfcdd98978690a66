// A second thread for the page's own kernels (sparse.wat's products, adam.wat, conv.wat).
//
// TF.js' XNNPACK runs on the wasm backend's thread pool, but the page's kernels ran on the
// calling thread alone. Each of them is a loop over independent outputs, so one helper worker,
// instantiating the same modules on the backend's own shared WebAssembly.Memory, shares the
// range with the caller: the same float32 operations on the same values, so the results are
// bit-identical to one thread's.
//
// A job is a few chunks of the range; each thread takes the next chunk from a shared counter
// (compare-and-swap) until none is left. On a machine whose cores are busy with other work, a
// thread that is descheduled takes fewer chunks instead of holding the job up, and a helper
// that has not woken up takes none: the caller then runs them all and never waits for it.
//
// Signalling is a small SharedArrayBuffer: the caller writes a job and notifies; the helper
// (kernelhelper.js) Atomics.wait's for it, takes chunks, counts each done and notifies. The
// caller watches for the helper's chunks (Atomics.load) and, where it may block (a worker, such
// as the page's TF.js worker), sleeps in Atomics.wait after SPIN_MS: a sleeping thread wakes
// late, and the helper's last chunk most often ends within that (the main thread never may). A
// helper that has not started, a memory that is not shared or a small range: one thread.

import { compiledModule, supported } from './memory.js';

// the helper's functions, by index in a job
export const FUNCTIONS = [['sparse', 'matmulStrided'], ['sparse', 'matmulTransposeAStrided'], ['adam', 'adam'],
  ['conv', 'pointwise'], ['conv', 'depthwise'], ['conv', 'conv3x3']];

// Int32 slots of the control buffer. next: the job's seq << 8 | its next chunk; done: chunks
// the helper finished; fn: the function's index | argument count << 8 | chunk count << 16.
// A job's arguments follow as float64 from byte ARGS: the first chunk's, the increments from
// one chunk to the next, the last chunk's.
export const SLOT = { state: 0, job: 1, next: 2, done: 3, fn: 4 };
export const STATE = { starting: 0, ready: 1, failed: 2 };
// How long the helper watches for the next job after one of FUNCTIONS[i] (ms) before it sleeps:
// a backbone's convolutions come one after the other, training's products with other work between.
export const LINGER_MS = [0, 0, 0, 0.5, 0.5, 0.5];
/** How long the caller watches for the helper's last chunks before it blocks (where it may). */
export const SPIN_MS = 1;
export const ARGS = 32;
export const MAX_ARGS = 20;
export const CONTROL_BYTES = ARGS + 3 * 8 * MAX_ARGS;
const SEQ_MASK = 0x7fffff; // seq << 8 stays a positive int32

/** Splits below this many elements (Adam) or output values (products) run on one thread. */
export const MIN_SPLIT = 65536;

/** Arguments of chunk i of `chunks`: first + i * step, the last one's given. */
export function chunkArgs(first, step, last, chunks, i) {
  return i < chunks - 1 ? first.map((v, j) => v + i * step[j]) : last;
}

/** Takes the next chunk of job seq (its index), or -1 when none is left or the job is over. */
export function takeChunk(ctl, seq, chunks) {
  for (;;) {
    const v = Atomics.load(ctl, SLOT.next);
    if (v >>> 8 !== seq || (v & 0xff) >= chunks) return -1;
    if (Atomics.compareExchange(ctl, SLOT.next, v, v + 1) === v) return v & 0xff;
  }
}

const pools = new WeakMap(); // WebAssembly.Memory -> KernelPool

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
function canBlock() {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch (e) {
    return false;
  }
}

export class KernelPool {
  /**
   * @param {{postMessage: Function}} worker a started kernelhelper.js worker
   * @param {WebAssembly.Memory} memory the backend's shared memory
   * @param {{sparse: WebAssembly.Module, adam: WebAssembly.Module}} modules compiled for it
   */
  constructor(worker, memory, modules) {
    this.worker = worker;
    this.control = new SharedArrayBuffer(CONTROL_BYTES);
    this.ctl = new Int32Array(this.control);
    this.args = new Float64Array(this.control, ARGS, 3 * MAX_ARGS);
    this.seq = 0;
    this.blocks = canBlock();
    this.splits = 0; // jobs the helper took part in (tests and the bench check the path taken)
    this.enabled = true; // false: every job on the calling thread (paired benchmarks in one page)
    worker.postMessage({ memory, control: this.control, modules });
  }

  /** The helper has its modules and waits for jobs. */
  get ready() {
    return Atomics.load(this.ctl, SLOT.state) === STATE.ready;
  }

  /** Marks the pool unusable (a helper that failed to start). */
  retire() {
    Atomics.store(this.ctl, SLOT.state, STATE.failed);
  }

  /**
   * Runs FUNCTIONS[fn] (`local`: the same function on this thread's instance) over `chunks`
   * chunks (chunkArgs) shared with the helper; returns once every chunk is done. Without a
   * ready helper, all of them here, in order.
   */
  run(fn, local, first, step, last, chunks) {
    if (!this.enabled || !this.ready || chunks < 2 || chunks > 254 || first.length > MAX_ARGS) {
      for (let i = 0; i < chunks; i++) local(...chunkArgs(first, step, last, chunks, i));
      return;
    }
    this.seq = (this.seq + 1) & SEQ_MASK || 1;
    const seq = this.seq;
    const n = first.length;
    [first, step, last].forEach((values, k) => this.args.set(values, k * MAX_ARGS));
    Atomics.store(this.ctl, SLOT.fn, fn | (n << 8) | (chunks << 16));
    Atomics.store(this.ctl, SLOT.done, 0);
    Atomics.store(this.ctl, SLOT.next, seq << 8);
    Atomics.store(this.ctl, SLOT.job, seq);
    Atomics.notify(this.ctl, SLOT.job);
    let mine = 0;
    for (let i; (i = takeChunk(this.ctl, seq, chunks)) >= 0; mine += 1) local(...chunkArgs(first, step, last, chunks, i));
    // closed: a helper that wakes late reads the next job's chunk count but takes nothing of this one
    Atomics.store(this.ctl, SLOT.next, (seq << 8) | 0xff);
    const theirs = chunks - mine; // taken by the helper, which runs each to its end
    const until = performance.now() + SPIN_MS;
    for (let done, i = 1; (done = Atomics.load(this.ctl, SLOT.done)) < theirs; i++) {
      if (this.blocks && i % 256 === 0 && performance.now() > until) Atomics.wait(this.ctl, SLOT.done, done);
    }
    // a trap there would be a bug here too; an in-place chunk cannot simply be run again
    if (!this.ready) throw new Error('the kernel helper failed: a chunk of the product or update is lost');
    if (theirs > 0) this.splits += 1;
  }
}

/**
 * Starts the helper for `memory` once (a no-op when the memory is not shared or one runs).
 * @param {WebAssembly.Memory} memory the wasm backend's memory
 * @param {{sparse: {shared: Uint8Array}, adam: {shared: Uint8Array}}} binaries the .wat compiled
 * @param {() => object|null} spawn starts a kernelhelper.js worker (postMessage, terminate)
 * @returns {KernelPool|null}
 */
export function startKernelPool(memory, binaries, spawn) {
  if (pools.has(memory)) return pools.get(memory);
  if (typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer)) return null;
  let pool = null;
  try {
    const worker = spawn();
    if (!worker) return null;
    const modules = { sparse: compiledModule(binaries.sparse, true), adam: compiledModule(binaries.adam, true) };
    // conv.wat needs relaxed SIMD: where it cannot run, conv.js is not in place either
    if (binaries.conv && supported(binaries.conv)) modules.conv = compiledModule(binaries.conv, true);
    pool = new KernelPool(worker, memory, modules);
    const fail = () => pool.retire();
    if (typeof worker.addEventListener === 'function') worker.addEventListener('error', fail);
    else if (typeof worker.on === 'function') worker.on('error', fail);
  } catch (e) {
    return null; // no worker here: one thread
  }
  pools.set(memory, pool);
  return pool;
}

/** The started pool on this memory, or null. */
export function poolOf(memory) {
  return pools.get(memory) || null;
}

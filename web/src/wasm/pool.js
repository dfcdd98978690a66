// A second thread for the page's own training kernels (sparse.wat's products, adam.wat).
//
// TF.js' XNNPACK runs on the wasm backend's thread pool, but the page's kernels ran on the
// calling thread alone. Each of them is a loop over independent outputs, so one helper worker,
// instantiating the same modules on the backend's own shared WebAssembly.Memory, runs half of
// the range while the caller runs the other half: the same float32 operations on the same
// values, so the results are bit-identical to one thread's.
//
// Signalling is a small SharedArrayBuffer: the caller writes a job and notifies; the helper
// (kernelhelper.js) Atomics.wait's for it, runs it and notifies "done". The caller waits with
// Atomics.wait where it may block (a worker, such as the page's TF.js worker) and spins on
// Atomics.load where it may not (the main thread). A helper that has not started, a memory
// that is not shared or a small range: one thread, as before. Nothing may hang: a job the
// helper has not taken within TAKE_MS is taken back (compare-and-swap), run by the caller, and
// the pool retires.

// the helper's functions, by index in a job
export const FUNCTIONS = [['sparse', 'matmulStrided'], ['sparse', 'matmulTransposeAStrided'], ['adam', 'adam']];

// Int32 slots of the control buffer; a job's arguments follow as float64 from byte ARGS
export const SLOT = { state: 0, job: 1, taken: 2, done: 3, fn: 4 };
export const STATE = { starting: 0, ready: 1, failed: 2 };
export const ARGS = 32;
const MAX_ARGS = 16;
export const CONTROL_BYTES = ARGS + 8 * MAX_ARGS;

// A helper that has not picked a job up by then is taken to be gone (never reached in a
// working pool: a wake-up is far shorter).
const TAKE_MS = 2000;

/** Splits below this many elements (Adam) or output values (products) run on one thread. */
export const MIN_SPLIT = 65536;

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

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

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
    this.args = new Float64Array(this.control, ARGS, MAX_ARGS);
    this.seq = 0;
    this.blocks = canBlock();
    this.splits = 0; // jobs run on two threads (tests and the bench check the path taken)
    this.takeMs = TAKE_MS;
    this.enabled = true; // false: every job on the calling thread (paired benchmarks in one page)
    worker.postMessage({ memory, control: this.control, modules });
  }

  /** The helper has its modules and waits for jobs. */
  get ready() {
    return Atomics.load(this.ctl, SLOT.state) === STATE.ready;
  }

  /** Marks the pool unusable (a helper that failed to start or answer). */
  retire() {
    Atomics.store(this.ctl, SLOT.state, STATE.failed);
  }

  /**
   * Runs FUNCTIONS[fn](...theirs) on the helper while `mine()` runs here; returns once both
   * are done. Without a ready helper, `alone` (the same function on this thread's instance)
   * runs their half here after mine.
   */
  run(fn, theirs, mine, alone) {
    if (!this.enabled || !this.ready) {
      mine();
      alone(...theirs);
      return;
    }
    const seq = ++this.seq;
    theirs.forEach((v, i) => { this.args[i] = v; });
    Atomics.store(this.ctl, SLOT.fn, fn | (theirs.length << 8));
    Atomics.store(this.ctl, SLOT.job, seq);
    Atomics.notify(this.ctl, SLOT.job);
    mine();
    if (!this.wait(seq)) {
      this.retire();
      alone(...theirs);
      return;
    }
    // a trap there would be a bug here too; an in-place half cannot simply be run again
    if (!this.ready) throw new Error('the kernel helper failed: its half of the product or update is lost');
    this.splits += 1;
  }

  /**
   * Waits for job seq: true once the helper has done it, false when the helper had not taken
   * it within TAKE_MS and it was taken back (the helper takes a job with the same
   * compare-and-swap, so exactly one of the two runs it). A taken job runs to its end.
   */
  wait(seq) {
    const deadline = now() + this.takeMs;
    for (;;) {
      const done = Atomics.load(this.ctl, SLOT.done);
      if (done === seq) return true;
      const taken = Atomics.load(this.ctl, SLOT.taken) === seq;
      if (!taken && now() > deadline
        && Atomics.compareExchange(this.ctl, SLOT.taken, seq - 1, -1) === seq - 1) return false;
      if (this.blocks) Atomics.wait(this.ctl, SLOT.done, done, taken ? Infinity : this.takeMs);
    }
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
    const modules = { sparse: new WebAssembly.Module(binaries.sparse.shared),
      adam: new WebAssembly.Module(binaries.adam.shared) };
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

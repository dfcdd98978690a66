// The helper thread's side of pool.js: instantiates the page's kernels on the backend's shared
// memory, then, for each job, the chunks it takes before the caller does. It blocks in
// Atomics.wait between jobs, so its worker never returns to its event loop (it lives as long
// as the page, or is terminated).
import { ARGS, FUNCTIONS, LINGER_MS, MAX_ARGS, SLOT, STATE, chunkArgs, takeChunk } from './pool.js';

/**
 * @param {{memory: WebAssembly.Memory, control: SharedArrayBuffer,
 *   modules: {sparse: WebAssembly.Module, adam: WebAssembly.Module}}} start pool.js' message
 */
export function serve({ memory, control, modules }) {
  const ctl = new Int32Array(control);
  const args = new Float64Array(control, ARGS, 3 * MAX_ARGS);
  let fns;
  try {
    const exports = {};
    for (const [name, module] of Object.entries(modules)) {
      exports[name] = new WebAssembly.Instance(module, { env: { memory } }).exports;
    }
    fns = FUNCTIONS.map(([module, name]) => exports[module] && exports[module][name]);
  } catch (e) {
    Atomics.store(ctl, SLOT.state, STATE.failed);
    return;
  }
  Atomics.store(ctl, SLOT.state, STATE.ready);
  let seen = 0;
  let linger = 0;
  for (;;) {
    const until = linger ? performance.now() + linger : 0;
    for (let i = 1; linger && Atomics.load(ctl, SLOT.job) === seen; i++) {
      if (i % 64 === 0 && performance.now() > until) break;
    }
    Atomics.wait(ctl, SLOT.job, seen);
    const seq = Atomics.load(ctl, SLOT.job);
    if (seq === seen) continue;
    seen = seq;
    // read before any chunk is taken: the caller writes the next job's only once this one's
    // chunks are all taken and done, so a late helper finds none left and writes nothing
    const word = Atomics.load(ctl, SLOT.fn);
    const [fn, n, chunks] = [word & 0xff, (word >> 8) & 0xff, word >>> 16];
    linger = LINGER_MS[fn] || 0;
    const [first, step, last] = [0, 1, 2].map((k) => Array.from(args.subarray(k * MAX_ARGS, k * MAX_ARGS + n)));
    for (let i; (i = takeChunk(ctl, seq, chunks)) >= 0;) {
      try {
        fns[fn](...chunkArgs(first, step, last, chunks, i));
      } catch (e) {
        Atomics.store(ctl, SLOT.state, STATE.failed);
      }
      Atomics.add(ctl, SLOT.done, 1);
      Atomics.notify(ctl, SLOT.done);
    }
  }
}

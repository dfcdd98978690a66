// The helper thread's side of pool.js: instantiates the page's kernels on the backend's shared
// memory, then runs each job it takes until told to stop. It blocks in Atomics.wait between
// jobs, so its worker never returns to its event loop (it is only ever terminated).
import { ARGS, FUNCTIONS, SLOT, STATE } from './pool.js';

/**
 * @param {{memory: WebAssembly.Memory, control: SharedArrayBuffer,
 *   modules: {sparse: WebAssembly.Module, adam: WebAssembly.Module}}} start pool.js' message
 */
export function serve({ memory, control, modules }) {
  const ctl = new Int32Array(control);
  const args = new Float64Array(control, ARGS);
  let fns;
  try {
    const exports = {};
    for (const [name, module] of Object.entries(modules)) {
      exports[name] = new WebAssembly.Instance(module, { env: { memory } }).exports;
    }
    fns = FUNCTIONS.map(([module, name]) => exports[module][name]);
  } catch (e) {
    Atomics.store(ctl, SLOT.state, STATE.failed);
    return;
  }
  Atomics.store(ctl, SLOT.state, STATE.ready);
  let seen = 0;
  for (;;) {
    Atomics.wait(ctl, SLOT.job, seen);
    const seq = Atomics.load(ctl, SLOT.job);
    if (seq === seen) continue;
    // the caller takes a job back from a helper that was too late with the same swap
    if (Atomics.compareExchange(ctl, SLOT.taken, seen, seq) !== seen) return;
    seen = seq;
    const word = Atomics.load(ctl, SLOT.fn);
    try {
      fns[word & 0xff](...args.subarray(0, word >> 8));
    } catch (e) {
      Atomics.store(ctl, SLOT.state, STATE.failed);
    }
    Atomics.store(ctl, SLOT.done, seq);
    Atomics.notify(ctl, SLOT.done);
  }
}

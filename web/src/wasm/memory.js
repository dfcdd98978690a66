// The page's WebAssembly kernels (adam.wat, transpose.wat) work on tfjs-backend-wasm's own
// memory: each is instantiated once per backend memory, importing it. The threaded build's
// memory is shared, the others' is not, and an import must say which (web/tools/wat.mjs
// compiles both).

const instances = new WeakMap(); // binaries -> WeakMap(WebAssembly.Memory -> exports)
const modules = new WeakMap(); // binaries -> {shared?, local?: WebAssembly.Module}

/** The backend's WebAssembly.Memory (threaded builds expose it as wasmMemory). */
export function memoryOf(wasm) {
  const memory = wasm.wasmMemory || (wasm.asm && wasm.asm.memory);
  if (!memory) throw new Error('the wasm backend does not expose its memory');
  return memory;
}

/** True when these binaries can run here (wasm SIMD present). */
export function supported(binaries) {
  return typeof WebAssembly !== 'undefined' && WebAssembly.validate(binaries.local);
}

/**
 * `binaries` compiled for a shared or an unshared memory, once (the kernels' helper thread,
 * wasm/pool.js, instantiates the same shared module).
 */
export function compiledModule(binaries, shared) {
  if (!modules.has(binaries)) modules.set(binaries, {});
  const byKind = modules.get(binaries);
  const kind = shared ? 'shared' : 'local';
  if (!byKind[kind]) byKind[kind] = new WebAssembly.Module(binaries[kind]);
  return byKind[kind];
}

/**
 * The exports of `binaries` instantiated on `backend`'s memory (cached).
 * @param {{shared: Uint8Array, local: Uint8Array}} binaries
 * @param {object} backend the wasm backend (its .wasm is the Emscripten module)
 */
export function kernelExports(binaries, backend) {
  const memory = memoryOf(backend.wasm);
  if (!instances.has(binaries)) instances.set(binaries, new WeakMap());
  const byMemory = instances.get(binaries);
  if (!byMemory.has(memory)) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    byMemory.set(memory, new WebAssembly.Instance(compiledModule(binaries, shared), { env: { memory } }).exports);
  }
  return byMemory.get(memory);
}

/** Where a tensor's data starts in the backend's memory (bytes). */
export function offsetOf(backend, tensorInfo) {
  return backend.dataIdMap.get(tensorInfo.dataId).memoryOffset;
}

/**
 * Tells the backend a tensor's data was written in place (adam.js): it gets a new id, so
 * XNNPACK's operators packed from the old contents (cached by id, e.g. a dense kernel after a
 * prediction) are dropped rather than used again. The memory stays where it is.
 */
export function writtenInPlace(backend, tensorInfo) {
  const data = backend.dataIdMap.get(tensorInfo.dataId);
  const size = tensorInfo.shape.reduce((a, b) => a * b, 1);
  backend.wasm.tfjs.disposeData(data.id);
  data.id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(data.id, size, data.memoryOffset);
}

// Compiles a WebAssembly text kernel (src/wasm/*.wat) with wabt, twice: for the threaded
// wasm backend, whose memory is shared, and for the others, whose memory is not (an import
// must declare which). Used by build.mjs (bundled as bytes) and, in Node, by test/ and
// tools/train-check.mjs.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import v8 from 'node:v8';
import wabtInit from 'wabt';

// conv.wat uses relaxed SIMD (fused multiply-adds), which the page's browsers run as shipped and
// Node 20 behind a flag: on for this process (and its worker threads) wherever kernels are compiled here.
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

const FEATURES = { simd: true, relaxed_simd: true, threads: true, bulk_memory: true };

/** @returns {Promise<{shared: Uint8Array, local: Uint8Array}>} */
export async function compileWat(path) {
  const wabt = await wabtInit();
  const text = await readFile(path, 'utf8');
  const shared = / shared\)/;
  if (!shared.test(text)) throw new Error(`${path}: expected a shared memory import`);
  const binary = (source) => {
    const module = wabt.parseWat(basename(path), source, FEATURES);
    try {
      module.validate(FEATURES);
      return Uint8Array.from(module.toBinary({}).buffer);
    } finally {
      module.destroy();
    }
  };
  return { shared: binary(text), local: binary(text.replace(shared, ')')) };
}

/** The page's kernels (src/wasm/*.wat) compiled, as
 * src/wasm/kernels.js takes them. */
export async function compileKernels() {
  const src = (name) => new URL(`../src/wasm/${name}.wat`, import.meta.url).pathname;
  return {
    adam: await compileWat(src('adam')),
    conv: await compileWat(src('conv')),
    resize: await compileWat(src('resize')),
    sparse: await compileWat(src('sparse')),
    transpose: await compileWat(src('transpose')),
  };
}

/** An esbuild plugin: `import binaries from './x.wat'` gives {shared, local} byte arrays. */
export const watPlugin = {
  name: 'wat',
  setup(b) {
    b.onLoad({ filter: /\.wat$/ }, async (args) => {
      const { shared, local } = await compileWat(args.path);
      const bytes = (u8) => `Uint8Array.from(atob(${JSON.stringify(Buffer.from(u8).toString('base64'))}), (c) => c.charCodeAt(0))`;
      return { contents: `export default { shared: ${bytes(shared)}, local: ${bytes(local)} };`, loader: 'js' };
    });
  },
};

// Builds dist/: index.html, style.css, favicon.svg, app.js (+ map) and the wasm backend binaries.
// Usage: node build.mjs [--watch] [--sourcemap]   (NO_MINIFY=1: readable app.js, for profiles)
import { build, context } from 'esbuild';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { watPlugin } from './tools/wat.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const wasmDir = join(here, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
const WASM = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
const FAVICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
  + '<rect width="16" height="16" rx="3" fill="#ff6f00"/><path d="M4 4h8v2H9v6H7V6H4z" fill="#fff"/></svg>\n';

// tfjs-vis require()s @tensorflow/tfjs-core; esbuild then resolves every import of it to
// the CommonJS "main" build while deep imports (dist/ops/...) stay ESM: two copies of the
// engine, and layers fail ("reading 'clone'"). Pin the bare name to the ESM entry.
const oneTfjsCore = {
  name: 'one-tfjs-core',
  setup(b) {
    const entry = join(here, 'node_modules', '@tensorflow', 'tfjs-core', 'dist', 'index.js');
    b.onResolve({ filter: /^@tensorflow\/tfjs-core$/ }, () => ({ path: entry }));
  },
};

const options = {
  entryPoints: [join(here, 'src', 'main.js')],
  outfile: join(dist, 'app.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  minify: !process.env.NO_MINIFY,
  sourcemap: process.argv.includes('--sourcemap'),
  legalComments: 'eof',
  define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
  logLevel: 'warning',
  plugins: [oneTfjsCore, watPlugin],
};

async function copyStatic() {
  await copyFile(join(here, 'index.html'), join(dist, 'index.html'));
  await copyFile(join(here, 'style.css'), join(dist, 'style.css'));
  await writeFile(join(dist, 'favicon.svg'), FAVICON);
  for (const file of WASM) await copyFile(join(wasmDir, file), join(dist, file));
}

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await copyStatic();
if (process.argv.includes('--watch')) {
  const ctx = await context(options);
  await ctx.watch();
  console.log('watching src/ (index.html and style.css are copied at start only)');
} else {
  const result = await build({ ...options, metafile: true });
  const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
  console.log(`dist/ written: app.js (+ map with --sourcemap) ${(bytes / 1e6).toFixed(2)} MB, ${WASM.length} wasm files`);
}

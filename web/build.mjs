// Builds dist/: index.html, style.css, favicon.svg, coi-sw.js, _headers, the page's ES modules
// and the wasm backend binaries. The modules are split (esbuild's splitting): app.js (src/boot.js)
// imports main-*.js, what prediction needs, preloaded by index.html; training-*.js
// (the training loop), evaluating-*.js (the held-out evaluation) and backend-webgl-*.js,
// backend-cpu-*.js when needed; chunk-*.js are code they share (tfjs-vis is one, shared by
// training and evaluation, so neither grows the first visit). All files sit flat in dist/, as the site copies them.
// Usage: node build.mjs [--watch] [--sourcemap]   (NO_MINIFY=1: readable code, for profiles)
import { build, context } from 'esbuild';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
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
  // tf-worker.js: the TF.js worker (src/worker/), its own entry sharing the page's chunks
  entryPoints: { app: join(here, 'src', 'boot.js'), 'tf-worker': join(here, 'src', 'worker', 'tf-worker.js'),
    // kernel-worker.js: the helper thread of the page's training kernels (src/wasm/pool.js)
    'kernel-worker': join(here, 'src', 'worker', 'kernel-worker.js') },
  outdir: dist,
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: !process.env.NO_MINIFY,
  sourcemap: process.argv.includes('--sourcemap'),
  legalComments: 'eof',
  define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
  logLevel: 'warning',
  plugins: [oneTfjsCore, watPlugin],
};

// Netlify's (and Cloudflare Pages') header file: cross-origin isolation, so the wasm backend
// gets its threads there. Other hosts serve it as an ordinary file or ignore it.
const HEADERS_FILE = `/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
  Cross-Origin-Resource-Policy: same-origin
`;

const PRELOAD = '<!-- modulepreload -->';

/** index.html with a modulepreload for main-*.js and the chunks it imports (none in watch mode):
 * the browser fetches them alongside app.js rather than after it has run. */
async function writeIndex(metafile) {
  let html = await readFile(join(here, 'index.html'), 'utf8');
  if (!html.includes(PRELOAD)) throw new Error(`index.html lacks the ${PRELOAD} marker`);
  const files = [];
  if (metafile) {
    const main = Object.keys(metafile.outputs).find((f) => /\/main-[^/]+\.js$/.test(f));
    const visit = (file) => {
      if (files.includes(file)) return;
      files.push(file);
      for (const i of metafile.outputs[file].imports) if (i.kind === 'import-statement') visit(i.path);
    };
    if (main) visit(main);
  }
  const links = files.map((f) => `<link rel="modulepreload" href="${basename(f)}">`).join('\n  ');
  await writeFile(join(dist, 'index.html'), html.replace(PRELOAD, links));
  return files;
}

async function copyStatic() {
  await copyFile(join(here, 'coi-sw.js'), join(dist, 'coi-sw.js'));
  await writeFile(join(dist, '_headers'), HEADERS_FILE);
  await copyFile(join(here, 'style.css'), join(dist, 'style.css'));
  await writeFile(join(dist, 'favicon.svg'), FAVICON);
  for (const file of WASM) await copyFile(join(wasmDir, file), join(dist, file));
}

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await copyStatic();
if (process.argv.includes('--watch')) {
  await writeIndex(null);
  const ctx = await context(options);
  await ctx.watch();
  console.log('watching src/ (index.html and style.css are copied at start only)');
} else {
  const result = await build({ ...options, metafile: true });
  const preloaded = await writeIndex(result.metafile);
  const js = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js'));
  const mb = (files) => (files.reduce((a, [, o]) => a + o.bytes, 0) / 1e6).toFixed(2);
  const first = js.filter(([f]) => /\/app\.js$/.test(f) || preloaded.includes(f));
  console.log(`dist/ written: ${js.length} modules, ${mb(js)} MB (${mb(first)} MB before the first prediction: `
    + `app.js + ${preloaded.length} preloaded), ${WASM.length} wasm files`);
}

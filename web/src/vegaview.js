// Vega views built in steps: vega-lite's compile, vega's parse, the view and its first render
// each in a task of its own, so no drawing is one long main-thread task (vega-embed, as tfjs-vis
// calls it, does all four at once: the confusion matrix after a Train was a long task; README,
// Performance).
import { parse, View } from 'vega';
import { compile } from 'vega-lite';
import { yieldToPage } from './tasks.js';

const compiled = new Map(); // a vega-lite spec's JSON -> its vega spec, the latest KEEP_SPECS
const KEEP_SPECS = 8;

/**
 * vega-lite's compile of `spec`, once per spec (the page's charts are the same few specs: the
 * idle-time warm-up compiles them, a Train only parses them).
 */
export function vegaSpec(spec) {
  const key = JSON.stringify(spec);
  if (!compiled.has(key)) {
    if (compiled.size >= KEEP_SPECS) compiled.delete(compiled.keys().next().value);
    compiled.set(key, compile(spec).spec);
  }
  return structuredClone(compiled.get(key)); // parse and the view get a copy of their own
}

/**
 * A vega view of a vega-lite spec in `box`, its rows in the spec's named dataset 'values'
 * before the first render (an empty chart has no scale domains).
 */
export async function buildView(box, spec, rows) {
  await yieldToPage();
  const vega = vegaSpec(spec);
  await yieldToPage();
  const runtime = parse(vega);
  await yieldToPage();
  const view = new View(runtime, { renderer: 'canvas', container: box, hover: false });
  await yieldToPage();
  await view.insert('values', rows).runAsync(); // the first layout and drawing: the longest step
  return view;
}

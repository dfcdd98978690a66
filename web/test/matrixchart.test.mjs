// The confusion matrix's vega-lite spec (web/src/matrixchart.js) compiled and drawn by vega in
// Node: a shaded cell and a count per true and predicted class, both axes in the labels' order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, View } from 'vega';
import { compile } from 'vega-lite';
import { matrixRows, matrixSpec } from '../src/matrixchart.js';

test('matrixRows: a row per cell, true class by row, predicted by column', () => {
  assert.deepEqual(matrixRows(['a', 'b'], [[2, 0], [1, 3]]), [
    { label: 'a', prediction: 'a', count: 2 }, { label: 'a', prediction: 'b', count: 0 },
    { label: 'b', prediction: 'a', count: 1 }, { label: 'b', prediction: 'b', count: 3 },
  ]);
});

test('matrixSpec draws every cell with its count, the axes in the labels order (not sorted)', async () => {
  const labels = ['zebra', 'ant', '<b>bee</b>'];
  const matrix = [[5, 1, 0], [0, 4, 2], [1, 0, 6]];
  const view = new View(parse(compile(matrixSpec(labels, 300)).spec), { renderer: 'none' });
  await view.insert('values', matrixRows(labels, matrix)).runAsync();
  const svg = await view.toSVG();
  view.finalize();
  const cells = svg.match(/aria-label="[^"]*" role="graphics-symbol" aria-roledescription="rect mark"/g) || [];
  assert.equal(cells.length, 9);
  const counts = [...svg.matchAll(/aria-roledescription="text mark"[^>]*>([^<]*)</g)].map((m) => Number(m[1]));
  assert.deepEqual(counts, matrix.flat()); // row by row: true class, then predicted
  assert.ok(cells[5].includes('predicted: &lt;b&gt;bee&lt;/b&gt;; true: ant; count: 2'), cells[5]); // text, escaped
  // both axes in the labels' order, not sorted
  assert.match(svg, /X-axis titled 'predicted' for a discrete scale with 3 values: zebra, ant, &lt;b&gt;bee&lt;\/b&gt;/);
  assert.match(svg, /Y-axis titled 'true' for a discrete scale with 3 values: zebra, ant, &lt;b&gt;bee&lt;\/b&gt;/);
});

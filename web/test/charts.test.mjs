// The training curves' vega-lite spec (web/src/charts.js) compiled and drawn by vega in Node:
// one line per metric, rows added epoch by epoch as the page inserts them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, View } from 'vega';
import { compile } from 'vega-lite';
import { curveRows, curveSpec } from '../src/charts.js';

test('curveRows keeps the metrics present in the logs, epochs counted from 1', () => {
  assert.deepEqual(curveRows(0, { loss: 2, acc: 0.5 }, ['loss', 'val_loss']), [{ epoch: 1, series: 'loss', value: 2 }]);
  assert.deepEqual(curveRows(4, { loss: 1, val_loss: 1.5 }, ['loss', 'val_loss']).map((r) => [r.epoch, r.series]),
    [[5, 'loss'], [5, 'val_loss']]);
});

test('curveSpec draws a line per series and takes rows inserted later', async () => {
  const spec = { ...curveSpec('loss'), width: 300 }; // no container in Node
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  await view.insert('values', curveRows(0, { loss: 2, val_loss: 3 }, ['loss', 'val_loss'])).runAsync();
  await view.insert('values', curveRows(1, { loss: 1, val_loss: 2 }, ['loss', 'val_loss'])).runAsync();
  assert.equal(view.data('values').length, 4);
  const svg = await view.toSVG();
  assert.match(svg, /loss/);
  assert.equal((svg.match(/aria-roledescription="line mark"/g) || []).length, 2); // loss and val_loss
  assert.equal((svg.match(/aria-roledescription="point"/g) || []).length, 4); // 2 epochs x 2 series
  view.finalize();
});

// web/src/vegaview.js' compile cache in Node: a spec compiled once, each caller its own copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from 'vega-lite';
import { vegaSpec } from '../src/vegaview.js';
import { curveSpec } from '../src/charts.js';

// vega-lite's output holds a few class instances (signal references); vega reads it as JSON
const json = (spec) => JSON.parse(JSON.stringify(spec));

test('vegaSpec is vega-lite compile, each call a copy of its own', () => {
  const spec = { ...curveSpec('loss'), width: 300 };
  const a = vegaSpec(spec);
  assert.deepEqual(json(a), json(compile(spec).spec));
  a.marks.length = 0; // a caller changing its copy
  assert.deepEqual(json(vegaSpec(spec)), json(compile(spec).spec));
  assert.notEqual(vegaSpec(spec), vegaSpec(spec));
});

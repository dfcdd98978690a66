// The evaluation's per-class accuracy table (tfjs-vis) and confusion matrix (matrixchart.js'
// heatmap, built in steps: vegaview.js): part of the evaluation chunk (evaluating.js), loaded
// when first evaluating.
import * as tfvis from '@tensorflow/tfjs-vis';
import { matrixRows, matrixSpec } from './matrixchart.js';
import { yieldToPage } from './tasks.js';
import { buildView } from './vegaview.js';

/** tfjs-vis' table writes its cells as HTML: a class name is the user's text, so escape it. */
function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const views = new WeakMap(); // matrix panel -> its vega view (finalized when redrawn)

/** Finalizes the panel's matrix view, if it has one (vega's timers and listeners go with it). */
function dropMatrixView(panel) {
  views.get(panel)?.finalize();
  views.delete(panel);
}

/**
 * Draws evaluateHead's result: accuracy per class ('–' for a class with nothing held out)
 * and the confusion matrix (rows true, columns predicted), each panel cleared first, each
 * drawn in tasks of its own (the page gets its turn between them).
 */
export async function drawEvaluation(perClassPanel, matrixPanel, result) {
  perClassPanel.textContent = '';
  matrixPanel.textContent = '';
  dropMatrixView(matrixPanel);
  const rows = result.per_class.map((c) => ({ accuracy: c.accuracy == null ? '–' : c.accuracy, count: c.count }));
  await tfvis.show.perClassAccuracy(perClassPanel, rows, result.labels.map(escapeHtml));
  await yieldToPage();
  const side = Math.min(640, 160 + 40 * result.labels.length);
  const box = document.createElement('div');
  matrixPanel.appendChild(box);
  views.set(matrixPanel, await buildView(box, matrixSpec(result.labels, side), matrixRows(result.labels, result.confusion_matrix)));
}

/**
 * Draws a made-up two-class result in hidden boxes (the caller removes them): tfjs-vis' and
 * vega's first table and matrix pay V8's first-call compilation in idle time, not after a Train.
 */
export async function warmEvaluationCharts(perClassBox, matrixBox) {
  await drawEvaluation(perClassBox, matrixBox, {
    labels: ['a', 'b'], per_class: [{ accuracy: 1, count: 2 }, { accuracy: 0.5, count: 2 }],
    confusion_matrix: [[2, 0], [1, 1]],
  });
  dropMatrixView(matrixBox);
}

// The evaluation's per-class accuracy table and confusion matrix, drawn by tfjs-vis (with
// vega): part of the evaluation chunk (evaluating.js), loaded when first evaluating.
import * as tfvis from '@tensorflow/tfjs-vis';

/** tfjs-vis' table writes its cells as HTML: a class name is the user's text, so escape it. */
function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Draws evaluateHead's result: accuracy per class ('–' for a class with nothing held out)
 * and the confusion matrix (rows true, columns predicted), each panel cleared first.
 */
export async function drawEvaluation(perClassPanel, matrixPanel, result) {
  perClassPanel.textContent = '';
  matrixPanel.textContent = '';
  const rows = result.per_class.map((c) => ({ accuracy: c.accuracy == null ? '–' : c.accuracy, count: c.count }));
  await tfvis.show.perClassAccuracy(perClassPanel, rows, result.labels.map(escapeHtml));
  const side = Math.min(640, 160 + 40 * result.labels.length);
  await tfvis.render.confusionMatrix(matrixPanel, { values: result.confusion_matrix, tickLabels: result.labels },
    { shadeDiagonal: true, showTextOverlay: true, width: side, height: side, xLabel: 'predicted', yLabel: 'true' });
}

// The confusion matrix as a vega-lite heatmap: tfjs-vis' render.confusionMatrix spec (shaded
// diagonal, counts written in the cells), drawn by evaluation-charts.js in steps (vegaview.js)
// rather than by vega-embed in one task.

/**
 * The confusion matrix's vega-lite spec (tfjs-vis' with shadeDiagonal and showTextOverlay):
 * a cell per true and predicted class, both axes in `labels` order, shaded by its count,
 * rows {label, prediction, count} arriving in 'values'.
 */
export function matrixSpec(labels, side) {
  const axis = (field, title) => ({ field, type: 'ordinal', title, scale: { domain: labels } });
  return {
    width: side,
    height: side,
    padding: 0,
    autosize: { type: 'fit', contains: 'padding' },
    config: { axis: { labelFontSize: 12, titleFontSize: 12 }, text: { fontSize: 12 },
      legend: { labelFontSize: 12, titleFontSize: 12 } },
    data: { name: 'values' },
    encoding: { x: axis('prediction', 'predicted'), y: axis('label', 'true') },
    layer: [
      { mark: { type: 'rect' },
        encoding: {
          color: { field: 'count', type: 'quantitative', scale: { range: ['#f7fbff', '#4292c6'] } },
          tooltip: [{ field: 'label', type: 'nominal' }, { field: 'prediction', type: 'nominal' },
            { field: 'count', type: 'quantitative' }],
        } },
      { mark: { type: 'text', baseline: 'middle' }, encoding: { text: { field: 'count', type: 'nominal' } } },
    ],
  };
}

/** The matrix's rows for matrixSpec: one per cell (row i: true class i, column j: predicted j). */
export function matrixRows(labels, matrix) {
  return matrix.flatMap((row, i) => row.map((count, j) => ({ label: labels[i], prediction: labels[j], count })));
}

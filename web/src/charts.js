// Live training curves: loaded with the training code (training.js) when Train is first
// pressed, not with the page. The charts are vega-lite's (the library tfjs-vis draws with),
// built once per run in steps with the page's turn between them (vegaview.js) and fed each
// epoch's logs as new rows: tfjs-vis' show.history rebuilt the whole vega view at each
// redraw, a long main-thread task (the training itself runs in a worker, so these drawings
// were the page's longest tasks).
import { yieldToPage } from './tasks.js';
import { buildView, vegaSpec } from './vegaview.js';

/** The vega-lite spec of one chart: a line per series over the epochs, rows arriving in 'values'. */
export function curveSpec(title, height = 180) {
  return {
    width: 'container',
    height,
    autosize: { type: 'fit-x', contains: 'padding' },
    title,
    data: { name: 'values' },
    mark: { type: 'line', point: true, clip: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  };
}

/** Rows of one epoch for a chart: {epoch, series, value} per metric present in the logs. */
export function curveRows(epoch, logs, metrics) {
  return metrics.filter((m) => logs[m] != null).map((m) => ({ epoch: epoch + 1, series: m, value: logs[m] }));
}

/**
 * Draws one throwaway curve in `box` (a hidden element the caller removes), so that vega-lite's
 * first compile and vega's first layout (V8 compiles each function at its first call: the
 * first chart costs several times a later one) happen in idle time, not at the first Train;
 * and compiles the accuracy chart's spec (vegaview.js keeps it).
 */
export async function warmCurves(box) {
  vegaSpec(curveSpec('accuracy'));
  await yieldToPage();
  const view = await buildView(box, curveSpec('loss'), curveRows(0, { loss: 1, val_loss: 1.2 }, ['loss', 'val_loss']));
  await yieldToPage();
  await view.insert('values', curveRows(1, { loss: 0.8, val_loss: 1 }, ['loss', 'val_loss'])).runAsync();
  view.finalize();
}

/**
 * Live loss and accuracy curves in the charts panel, cleared for a new run: the charts are
 * built at the first epoch's logs, later epochs' rows inserted into their views (vega
 * redraws only what changed), one view a task, each round followed by a frame so the page
 * paints them. Epochs that end while a round is drawn (training in the worker does not wait
 * for the charts) are drawn together in the next round. Each chart's data-epochs: the last
 * epoch drawn.
 * @returns {{onEpochEnd(epoch: number, logs: object): Promise<void>, onTrainEnd(): Promise<void>}}
 *   each promise settles once every epoch given so far is drawn
 */
export function trainingCharts(panel, withValidation) {
  panel.textContent = '';
  const groups = [
    { title: 'loss', metrics: withValidation ? ['loss', 'val_loss'] : ['loss'] },
    { title: 'accuracy', metrics: withValidation ? ['acc', 'val_acc'] : ['acc'] },
  ];
  const boxes = groups.map(() => {
    const box = document.createElement('div');
    box.className = 'chart';
    panel.appendChild(box);
    return box;
  });
  let views = null; // built at the first epoch's logs, one chart after the other
  const pending = groups.map(() => []); // rows not drawn yet, per chart
  let drawing = null; // the rounds under way

  async function draw() {
    await Promise.resolve(); // `drawing` is set before the rounds can end
    try {
      while (pending.some((rows) => rows.length)) {
        const rows = pending.map((r) => r.splice(0));
        if (!views) {
          views = [];
          for (let i = 0; i < boxes.length; i++) views.push(await buildView(boxes[i], curveSpec(groups[i].title), rows[i]));
        } else {
          for (let i = 0; i < views.length; i++) {
            if (i > 0) await yieldToPage();
            await views[i].insert('values', rows[i]).runAsync();
          }
        }
        rows.forEach((r, i) => { if (r.length) boxes[i].dataset.epochs = String(r[r.length - 1].epoch); });
        await new Promise((resolve) => requestAnimationFrame(resolve));
      }
    } finally {
      drawing = null;
    }
  }

  return {
    onEpochEnd(epoch, logs) {
      groups.forEach((group, i) => pending[i].push(...curveRows(epoch, logs, group.metrics)));
      drawing = drawing || draw();
      return drawing;
    },
    async onTrainEnd() {
      await drawing;
    },
  };
}

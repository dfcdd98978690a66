// Live training curves: loaded with the training code (training.js) when Train is first
// pressed, not with the page. The charts are vega-lite's (the library tfjs-vis draws with),
// built once per run in steps with the page's turn between them (compile, parse, first
// render) and fed each epoch's logs as new rows: tfjs-vis' show.history rebuilt the whole
// vega view at each redraw, a main-thread task of 100 ms and more (the training itself runs
// in a worker, so these drawings were the page's longest tasks).
import { parse, View } from 'vega';
import { compile } from 'vega-lite';
import { yieldToPage } from './tasks.js';

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
 * A vega view of a vega-lite spec in `box`, its first rows in place before the first render (an
 * empty chart has no scale domains), built in steps that each leave the page a turn.
 */
async function buildView(box, spec, rows) {
  await yieldToPage();
  const vega = compile(spec).spec;
  await yieldToPage();
  const runtime = parse(vega);
  await yieldToPage();
  const view = new View(runtime, { renderer: 'canvas', container: box, hover: false });
  await yieldToPage();
  await view.insert('values', rows).runAsync(); // the first layout and drawing: the longest step
  return view;
}

/**
 * Draws one throwaway curve in `box` (a hidden element the caller removes), so that vega-lite's
 * first compile and vega's first layout (V8 compiles each function at its first call: the
 * first chart costs several times a later one) happen in idle time, not at the first Train.
 */
export async function warmCurves(box) {
  const view = await buildView(box, curveSpec('loss'), curveRows(0, { loss: 1, val_loss: 1.2 }, ['loss', 'val_loss']));
  await yieldToPage();
  await view.insert('values', curveRows(1, { loss: 0.8, val_loss: 1 }, ['loss', 'val_loss'])).runAsync();
  view.finalize();
}

/**
 * Live loss and accuracy curves in the charts panel, cleared for a new run: the charts are
 * built at the first epoch's logs, later epochs' rows inserted into their views (vega
 * redraws only what changed), each followed by a frame so the page paints them.
 * @returns {{onEpochEnd(epoch: number, logs: object): Promise<void>, onTrainEnd(): Promise<void>}}
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
  return {
    async onEpochEnd(epoch, logs) {
      const rows = groups.map((group) => curveRows(epoch, logs, group.metrics));
      if (!views) {
        views = [];
        for (let i = 0; i < boxes.length; i++) views.push(await buildView(boxes[i], curveSpec(groups[i].title), rows[i]));
      } else {
        await Promise.all(views.map((view, i) => view.insert('values', rows[i]).runAsync()));
      }
      await new Promise((resolve) => requestAnimationFrame(resolve));
    },
    async onTrainEnd() {},
  };
}

// Live training curves (tfjs-vis, which brings vega): loaded with the training code
// (training.js) when Train is first pressed, not with the page.
import * as tfvis from '@tensorflow/tfjs-vis';

// A redraw of the curves (vega rebuilds the charts) costs about as much as an epoch of the
// default head on wasm, so redrawing every epoch would double the Train button's time.
// Redraws are spaced so they take at most a fifth of it, and at least CHART_MS apart.
const CHART_MS = 250;
const CHART_SHARE = 0.2;

/**
 * Live tfjs-vis loss and accuracy curves in the charts panel, cleared for a new run:
 * every epoch's logs are kept, the curves redrawn when enough time has passed (above) and
 * once more when training ends, each redraw followed by a frame so the page paints it.
 * @returns {{onEpochEnd(epoch: number, logs: object): Promise<void>, onTrainEnd(): Promise<void>}}
 */
export function trainingCharts(panel, withValidation) {
  panel.textContent = '';
  const metrics = withValidation ? ['loss', 'val_loss', 'acc', 'val_acc'] : ['loss', 'acc'];
  const history = [];
  let next = 0; // performance.now() after which the next redraw may start
  let behind = false;
  const draw = async () => {
    const started = performance.now();
    behind = false;
    await tfvis.show.history(panel, history, metrics, { height: 180, zoomToFit: true });
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const took = performance.now() - started;
    next = performance.now() + Math.max(CHART_MS, took * (1 / CHART_SHARE - 1));
  };
  return {
    async onEpochEnd(epoch, logs) {
      history.push({ ...logs });
      behind = true;
      if (performance.now() >= next) await draw();
    },
    async onTrainEnd() {
      if (behind) await draw();
    },
  };
}

// Continuing a loaded Teachable Machine model's head on the project (tmtrain.js, in the
// training chunk), and using the continued model: the Train button's path when the head in
// use is a Teachable Machine export (main.js' onTrain shares the run's state, Stop and messages).
import { loadTraining } from './chunks.js';

/**
 * A copy of the TM model with its head trained on from its own weights, or null if stopped.
 * @param {object} deps {tf, app (project, stop), ui, loadPixels(example)}
 */
export async function continueTm({ tf, app, ui, loadPixels }, tmHead, hyper) {
  const { continueTmHead, trainingCharts } = await loadTraining();
  return continueTmHead({ tf, tmHead, project: app.project, hyper, loadPixels, stop: app.stop,
    charts: trainingCharts(ui.chartsPanel(), app.project.withRole('valid').length > 0),
    onStatus: (text) => ui.setStatus('training', text), onProgress: ui.setProgress });
}

/** The continued TM model is used; examples of classes it does not have were left out. */
export function useContinuedTm({ app, ui }, tmHead, result, how) {
  app.heads.setBrowser({ ...tmHead, model: result.model, name: `${tmHead.name}, head trained on in this page` });
  ui.setHeadChoice('browser', `Teachable Machine model from ${tmHead.name}, head trained on in this page`);
  ui.setStatus('ready', `${how}; predictions now use the Teachable Machine model with the head trained on here.`);
  if (result.leftOut.length) {
    ui.showMessage(`Left out the examples of ${result.leftOut.join(', ')}: not among the model's classes `
      + `(${result.labels.join(', ')}).`, 'info');
  }
}

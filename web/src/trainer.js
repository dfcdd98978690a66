// The Train button's work: backbone features for the project's train and valid examples
// that have none yet (computed once, kept in the project for every later run), then a
// fresh head of the project's classes, with progress and live curves in the page.
import { trainingCharts } from './charts.js';
import { FEATURE_BATCH, extractFeatures, trainHead } from './train.js';

/**
 * @param {object} opts {tf, manifest, backbone, project, hyper: {epochs, batchSize, learningRate,
 *   optimizer, loss}, loadPixels(example), ui, stop: {requested, model} (shared with the Stop
 *   button), timings (featuresMs, trainMs, trainEpochs are written), worker (a TfWorker: the
 *   features and the training loop run there; null: here)}
 * @returns {Promise<object|null>} trainHead's result plus `labels` (the project's classes at
 *   training time, the new head's outputs), or null when stopped before training started
 */
export async function trainProjectHead({ tf, manifest, backbone, project, hyper, loadPixels, ui, stop, timings, worker = null }) {
  const set = project.trainingSet();
  const missing = project.withoutFeatures(set.items);
  if (missing.length) {
    ui.setStatus('training', `Extracting features of ${missing.length} images…`);
    const started = performance.now();
    const opts = {
      tf, backbone, manifest, items: missing, loadPixels, batchSize: FEATURE_BATCH,
      onProgress: (done, total) => ui.setProgress(done, total, `features ${done}/${total}`),
      shouldStop: () => stop.requested,
    };
    const feats = await (worker ? worker.extract(opts) : extractFeatures(opts));
    if (!feats) return null;
    project.storeFeatures(missing, feats);
    timings.featuresMs = performance.now() - started;
  }
  ui.setStatus('training', `Training for ${hyper.epochs} epochs…`);
  ui.setProgress(0, hyper.epochs, `epoch 0/${hyper.epochs}`);
  const labels = [...project.classes];
  const result = await (worker ? worker.trainHead.bind(worker) : trainHead)({
    tf, manifest, feats: project.featureRows(set.items), labelIndex: set.labelIndex, split: set.split, hyper,
    classes: labels.length,
    charts: trainingCharts(ui.chartsPanel(), set.split.valid.length > 0),
    onModel: (model) => {
      stop.model = model;
      if (stop.requested) model.stopTraining = true;
    },
    onEpoch: (epoch, logs) => {
      const acc = logs.acc != null ? `, accuracy ${logs.acc.toFixed(3)}` : '';
      ui.setProgress(epoch, hyper.epochs, `epoch ${epoch}/${hyper.epochs}: loss ${logs.loss.toFixed(4)}${acc}`);
    },
  });
  timings.trainMs = result.ms;
  timings.trainEpochs = result.epochs;
  return { ...result, labels };
}

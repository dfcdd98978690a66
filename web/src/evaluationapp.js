// The evaluation's part of the app: the head in use scored on the project's held-out examples
// (the evaluation chunk, in the TF.js worker where there is one) and shown by ui-evaluation.js,
// after training or from the Evaluate button; a wrong example clicked is predicted again.
import { loadEvaluation } from './chunks.js';
import { srcToCanvas } from './data.js';
import { pixelsOf } from './predict.js';
import { NO_HEAD } from './projectapp.js';
import { yieldToPage } from './tasks.js';
import * as evaluationUi from './ui-evaluation.js';

/**
 * @param {object} deps {tf, app (main.js' state: manifest, backbone, heads, project, ready,
 *   training, tfWorker), ui, refreshControls(), predictAndShow(canvas, name)}
 * @returns {{evaluateInUse(): Promise<object|null>, onEvaluate(), onShowExample(id), busy(): boolean}}
 */
export function createEvaluationApp({ tf, app, ui, refreshControls, predictAndShow }) {
  let evaluating = false;

  /** Evaluates the head in use on the project's held-out examples and shows it; the result, or null. */
  async function evaluateInUse() {
    if (!app.project) {
      evaluationUi.showError('Nothing to evaluate on: the training images are unavailable.');
      return null;
    }
    if (!app.heads.active) {
      evaluationUi.showError(NO_HEAD);
      return null;
    }
    evaluating = true;
    refreshControls();
    try {
      evaluationUi.showRunning('Evaluating…');
      const { evaluateHead, drawEvaluation } = await loadEvaluation();
      const result = await evaluateHead({ tf, manifest: app.manifest, backbone: app.backbone, head: app.heads.active,
        headName: app.heads.which, project: app.project, onProgress: evaluationUi.showProgress, worker: await app.tfWorker,
        loadPixels: async (example, spec) => pixelsOf(tf, await srcToCanvas(example.src, example.name), spec) });
      await yieldToPage(); // the scoring and the drawings in tasks of their own
      await evaluationUi.show(result, app.heads.describe(), new Map(app.project.examples.map((e) => [e.id, e])), drawEvaluation);
      return result;
    } catch (e) {
      evaluationUi.showError(`Evaluation failed: ${e.message}`);
      return null;
    } finally {
      evaluating = false;
      refreshControls();
    }
  }

  function onEvaluate() {
    return app.ready && !app.training && !evaluating ? evaluateInUse() : null;
  }

  /** A wrong example clicked in the evaluation: shown in the preview with its prediction. */
  async function onShowExample(id) {
    const example = app.project && app.project.examples.find((e) => e.id === id);
    if (!example || !app.ready) return;
    try {
      await predictAndShow(await srcToCanvas(example.src, example.name), example.name);
      ui.showMessage('');
    } catch (e) {
      ui.showMessage(`Could not show ${example.name}: ${e.message}`);
    }
  }

  evaluationUi.bind({ onEvaluate, onShowExample });
  return { evaluateInUse, onEvaluate, onShowExample, busy: () => evaluating };
}

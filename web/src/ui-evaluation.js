// The evaluation section's DOM: the Evaluate button (its own listener), the result
// (`data-result` JSON for automation), the drawings (given by the evaluation chunk) and the
// wrong examples as clickable thumbnails. The figures come from evaluation.js.

import { yieldToPage } from './tasks.js';

const $ = (id) => document.getElementById(id);

const el = {
  evaluate: $('evaluate'),
  result: $('evaluation'),
  summary: $('evaluation-summary'),
  perClass: $('evaluation-per-class'),
  matrix: $('evaluation-matrix'),
  wrongTitle: $('evaluation-wrong-title'),
  wrong: $('evaluation-wrong'),
};

/** Thumbnails shown at most; the rest are counted (data-result lists them all). */
const MAX_WRONG = 48;

let objectUrls = []; // thumbnails of Blob examples, revoked when redrawn

export const NOTHING_HELD_OUT = 'No held-out examples to evaluate on: add more examples (about 15% of each class is held out).';

/**
 * Listens to the Evaluate button and the wrong examples' thumbnails:
 * {onEvaluate(), onShowExample(id)}.
 */
export function bind({ onEvaluate, onShowExample }) {
  el.evaluate.addEventListener('click', () => onEvaluate());
  el.wrong.addEventListener('click', (e) => {
    const item = e.target.closest('[data-example-id]');
    if (!item) return;
    document.getElementById('predict-section').scrollIntoView({ block: 'nearest' });
    onShowExample(item.dataset.exampleId);
  });
}

export function setEnabled(enabled) {
  el.evaluate.disabled = !enabled;
}

function setState(state, text) {
  el.result.dataset.state = state;
  el.summary.textContent = text;
}

/** state running: the result shown is the previous one until the new one replaces it. */
export function showRunning(text) {
  setState('running', text);
}

export function showProgress(done, total) {
  setState('running', `Evaluating… ${done}/${total}`);
}

export function showError(text) {
  setState('error', text);
  el.result.dataset.seq = String(Number(el.result.dataset.seq || 0) + 1);
}

const pct = (x) => (x == null ? '–' : `${(x * 100).toFixed(1)}%`);

/**
 * Shows evaluateHead's result: summary, data-result, the drawings (draw(perClassPanel,
 * matrixPanel, result), from the evaluation chunk) and the wrong examples.
 * @param {object} result evaluateHead's
 * @param {string} headText what the head in use is, as the page says it
 * @param {Map<string, object>} examples the project's examples by id (src, name)
 */
export async function show(result, headText, examples, draw) {
  const { wrong } = result;
  el.result.dataset.result = JSON.stringify(result);
  el.result.dataset.head = result.head;
  clearDrawings();
  if (!result.count) {
    setState('empty', NOTHING_HELD_OUT);
  } else {
    const classes = result.per_class.filter((c) => c.count).map((c) => `${c.name} ${pct(c.accuracy)}`).join(', ');
    setState('done', `Head ${headText}: ${pct(result.accuracy)} of ${result.count} held-out examples right (${classes}); `
      + `${wrong.length} wrong.`);
    await draw(el.perClass, el.matrix, result);
    await yieldToPage(); // the thumbnails in a task of their own
    showWrong(wrong, examples);
  }
  el.result.dataset.seq = String(Number(el.result.dataset.seq || 0) + 1);
}

function clearDrawings() {
  el.perClass.textContent = '';
  el.matrix.textContent = '';
  el.wrong.textContent = '';
  el.wrongTitle.hidden = true;
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
}

/** The wrong examples, most confident mistakes first, each a button showing it predicted. */
function showWrong(wrong, examples) {
  el.wrongTitle.hidden = wrong.length === 0;
  el.wrongTitle.textContent = wrong.length > MAX_WRONG
    ? `Wrong: the ${MAX_WRONG} most confident of ${wrong.length} (click one to see its prediction)`
    : `Wrong (click one to see its prediction)`;
  for (const w of wrong.slice(0, MAX_WRONG)) {
    const example = examples.get(w.id);
    if (!example) continue;
    let src = example.src;
    if (typeof src !== 'string') {
      src = URL.createObjectURL(src);
      objectUrls.push(src);
    }
    const text = `${w.name}: ${w.true}, predicted ${w.predicted} (${pct(w.confidence)})`;
    const img = document.createElement('img');
    Object.assign(img, { src, alt: text, width: 64, height: 64, loading: 'lazy', decoding: 'async' });
    const caption = document.createElement('span');
    caption.textContent = `${w.predicted} ${pct(w.confidence)}`;
    const button = document.createElement('button');
    Object.assign(button, { type: 'button', title: text, className: 'wrong-example' });
    button.dataset.exampleId = w.id;
    button.append(img, caption);
    el.wrong.append(button);
  }
}

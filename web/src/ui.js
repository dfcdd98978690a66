// The page's DOM: reads inputs, writes status, gallery, predictions and progress (the
// training curves are charts.js'), and listens to its own controls, handing what the user
// did to main.js (bind).
import { firstFile } from './data.js';
import { make } from './dom.js';

const $ = (id) => document.getElementById(id);

const el = {
  status: $('status'),
  backend: $('backend'),
  backendInfo: $('backend-info'),
  loadTime: $('load-time'),
  dropzone: $('dropzone'),
  upload: $('upload'),
  headSelect: $('head-select'),
  message: $('message'),
  preview: $('preview'),
  prediction: $('prediction'),
  trainForm: $('train-form'),
  trainSummary: $('train-summary'),
  epochs: $('epochs'),
  learningRate: $('learning-rate'),
  batchSize: $('batch-size'),
  train: $('train'),
  stop: $('stop'),
  progress: $('progress'),
  progressText: $('progress-text'),
  charts: $('charts'),
  download: $('download'),
  downloadMerged: $('download-merged'),
  downloadTm: $('download-tm'),
  loadModel: $('load-model'),
  about: $('about'),
  titleLabels: $('title-labels'),
};

/** state: loading | ready | training | error */
export function setStatus(state, text) {
  el.status.dataset.state = state;
  el.status.textContent = text;
}

/** A message about the user's last action (bad upload, model loaded…); '' hides it. */
export function showMessage(text, kind = 'warning') {
  el.message.hidden = !text;
  el.message.textContent = text || '';
  el.message.dataset.kind = kind;
}

export function showBackend(name, details, note) {
  el.backend.value = name;
  el.backend.dataset.active = name;
  el.backendInfo.dataset.backend = name;
  el.backendInfo.textContent = `running on ${name} (${details})${note ? ` — ${note}` : ''}`;
}

export function showLoadTime(ms) {
  el.loadTime.dataset.ms = String(Math.round(ms));
  el.loadTime.textContent = `models loaded in ${Math.round(ms)} ms`;
}

export function showTitle(labels) {
  el.titleLabels.textContent = `— ${labels.join(' / ')}`;
}

/** The manifest's facts worth reading: backbone, head, metrics, versions. */
export function showAbout(manifest) {
  const rows = [
    ['Labels', manifest.labels.join(', ')],
    ['Input', `${manifest.input.height}×${manifest.input.width}×${manifest.input.channels}`],
    ['Backbone', `${manifest.backbone.name} cut at ${manifest.backbone.cut_layer} → [${manifest.backbone.output_shape.join(', ')}]`],
    ['Head', (manifest.head.layers || []).map((l) => l.type + (l.units ? `(${l.units}${l.activation ? `, ${l.activation}` : ''})` : '')
      + (l.rate != null ? `(${l.rate})` : '')).join(' → ')],
  ];
  const t = manifest.training || {};
  if (t.hyperparameters) rows.push(['Python training', Object.entries(t.hyperparameters).map(([k, v]) => `${k} ${v}`).join(', ')]);
  if (t.metrics) rows.push(['Python metrics', formatMetrics(t.metrics)]);
  if (manifest.images && manifest.images.count != null) rows.push(['Training images', String(manifest.images.count)]);
  if (manifest.versions) rows.push(['Versions', formatMetrics(manifest.versions)]);
  if (manifest.built_at) rows.push(['Built', String(manifest.built_at)]);
  el.about.textContent = '';
  for (const [k, v] of rows) el.about.append(make('dt', { textContent: k }), make('dd', { textContent: v }));
}

function formatMetrics(obj) {
  return Object.entries(obj).map(([k, v]) => {
    if (typeof v === 'number') return `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`;
    if (v && typeof v === 'object') return `${k} {${formatMetrics(v)}}`;
    return `${k} ${v}`;
  }).join(', ');
}

export function setHyperparameters({ epochs, batchSize, learningRate }) {
  el.epochs.value = String(epochs);
  el.batchSize.value = String(batchSize);
  el.learningRate.value = String(learningRate);
}

/** The hyper-parameter inputs, or null (with the browser's own message) when invalid. */
function readHyperparameters() {
  if (!el.trainForm.reportValidity()) return null;
  return {
    epochs: Math.round(Number(el.epochs.value)),
    batchSize: Math.round(Number(el.batchSize.value)),
    learningRate: Number(el.learningRate.value),
  };
}

/**
 * The image predicted: a canvas as it is, or an image File as an <img> of it (the browser
 * decodes that off the page's thread; its URL is let go once the image has loaded).
 */
export function showPreview(source, name) {
  let shown = source;
  if (source instanceof Blob) {
    shown = document.createElement('img');
    shown.alt = name;
    const url = URL.createObjectURL(source);
    const release = () => URL.revokeObjectURL(url);
    shown.addEventListener('load', release, { once: true });
    shown.addEventListener('error', release, { once: true });
    shown.src = url;
  }
  shown.title = name;
  shown.setAttribute('aria-label', name);
  el.preview.textContent = '';
  el.preview.append(shown);
}

/** Top-k rows with probability bars; data-result holds them as JSON, best first. */
export function showPrediction(rows, head, headText, name, ms) {
  const p = el.prediction;
  p.textContent = '';
  p.append(make('p', { className: 'muted', textContent: `${name}: ${Math.round(ms)} ms, head: ${headText}` }));
  rows.forEach((row, i) => {
    const bar = make('span', { className: 'bar' });
    bar.style.width = `${(row.probability * 100).toFixed(1)}%`;
    p.append(make('div', { className: i === 0 ? 'row best' : 'row' }, [
      make('span', { className: 'label', textContent: row.label }),
      make('span', { className: 'track' }, [bar]),
      make('span', { className: 'pct', textContent: `${(row.probability * 100).toFixed(1)}%` }),
    ]));
  });
  p.dataset.head = head;
  p.dataset.result = JSON.stringify(rows);
  p.dataset.file = name;
  p.dataset.seq = String(Number(p.dataset.seq || 0) + 1);
}

/** The panel the training curves are drawn in (charts.js). */
export function chartsPanel() {
  return el.charts;
}

export function setProgress(value, max, text) {
  el.progress.max = max;
  el.progress.value = value;
  el.progressText.textContent = text;
}

export function setTrainSummary(text) {
  el.trainSummary.textContent = text;
}

/** Enables the controls that make sense for the current state. */
export function setBusy({ ready, training, hasBrowserHead }) {
  el.train.disabled = !ready || training;
  el.stop.disabled = !training;
  el.backend.disabled = training || !ready;
  el.download.disabled = !ready;
  el.downloadMerged.disabled = !ready;
  el.downloadTm.disabled = !ready;
  el.loadModel.disabled = !ready || training;
  el.epochs.disabled = training;
  el.learningRate.disabled = training;
  el.batchSize.disabled = training;
  el.headSelect.querySelector('option[value="browser"]').disabled = !hasBrowserHead;
}

export function setHeadChoice(value, browserText) {
  const option = el.headSelect.querySelector('option[value="browser"]');
  if (browserText) option.textContent = browserText;
  el.headSelect.value = value;
}

/**
 * Listens to the page's controls and calls the handlers with what the user did:
 * {onImage(file|null) (upload, drop, paste), onTrain({epochs, batchSize, learningRate})
 * (only when the form is valid), onTrainIntent() (pointer or focus on Train), onStop(),
 * onDownload('head'|'merged'|'tm'), onLoadModel(files),
 * onHeadChange('python'|'browser'), onBackendChange(name)}. Each may return a promise.
 */
export function bind(handlers) {
  el.upload.addEventListener('change', async () => {
    const file = el.upload.files[0];
    if (file) await handlers.onImage(file);
    el.upload.value = '';
  });
  for (const type of ['dragenter', 'dragover']) {
    el.dropzone.addEventListener(type, (e) => { e.preventDefault(); el.dropzone.classList.add('over'); });
  }
  el.dropzone.addEventListener('dragleave', () => el.dropzone.classList.remove('over'));
  el.dropzone.addEventListener('drop', (e) => {
    e.preventDefault();
    el.dropzone.classList.remove('over');
    handlers.onImage(firstFile(e.dataTransfer));
  });
  // A file dropped beside the drop zone must not navigate away from the page.
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => e.preventDefault());
  document.addEventListener('paste', (e) => {
    const file = firstFile(e.clipboardData);
    if (file) {
      e.preventDefault();
      handlers.onImage(file);
    }
  });
  el.trainForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const hyper = readHyperparameters();
    if (hyper) handlers.onTrain(hyper);
  });
  for (const type of ['pointerenter', 'focus']) el.train.addEventListener(type, () => handlers.onTrainIntent());
  el.stop.addEventListener('click', () => handlers.onStop());
  el.download.addEventListener('click', () => handlers.onDownload('head'));
  el.downloadMerged.addEventListener('click', () => handlers.onDownload('merged'));
  el.downloadTm.addEventListener('click', () => handlers.onDownload('tm'));
  el.loadModel.addEventListener('change', async () => {
    await handlers.onLoadModel(Array.from(el.loadModel.files));
    el.loadModel.value = '';
  });
  el.headSelect.addEventListener('change', () => handlers.onHeadChange(el.headSelect.value));
  el.backend.addEventListener('change', () => handlers.onBackendChange(el.backend.value));
  // Should never fire; if it does, say so in the page too (the console still gets it).
  window.addEventListener('unhandledrejection', (e) => {
    showMessage(`Unexpected problem: ${e.reason && e.reason.message ? e.reason.message : e.reason}`);
  });
}

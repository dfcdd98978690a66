// Wires the page: backend, manifest, models, gallery, predict, train, download, load.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { activateBackend, pageKernels, requestedBackend } from './backend.js';
import { InputError, canvasToPixels, decodeToCanvas, fetchJson, fetchToCanvas, firstFile, groupByLabel,
  loadImageList } from './data.js';
import { buildHead, checkModels, classify, features, loadFromFiles, loadModel, mergeModels, warmUp } from './models.js';
import { preprocess, topK } from './preprocess.js';
import { extractFeatures, splitItems, trainHead } from './train.js';
import * as ui from './ui.js';

const PAGE = document.baseURI;

const app = {
  manifest: null,
  backbone: null,
  python: null, // {model, kind: 'head'}
  browser: null, // {model, kind: 'head'|'merged', source: 'trained'|'file', name}
  active: 'python',
  items: [],
  trainSet: null, // {items, labelIndex, split: {train, valid, note}}: the images training uses
  feats: null, // cached features of the served images: plain Float32Array, no tensors
  ready: false,
  training: false,
  stopRequested: false,
  trainingModel: null,
  last: null, // {canvas, name} of the last predicted image, re-predicted when the head changes
  timings: {},
};

function classifier() {
  return app.active === 'browser' && app.browser ? app.browser : app.python;
}

function headText() {
  const c = classifier();
  if (c === app.python) return 'trained in Python';
  if (c.source === 'trained') return 'trained in this page';
  return `loaded from ${c.name}${c.kind === 'merged' ? ' (merged model)' : ''}`;
}

function refreshControls() {
  ui.setBusy({ ready: app.ready, training: app.training, hasBrowserHead: Boolean(app.browser) });
}

function readyText() {
  return `Ready: drop, paste or choose an image to classify it as ${app.manifest.labels.join(', ')}.`;
}

function fail(error) {
  app.ready = false;
  ui.setStatus('error', `Error: ${error.message || error}`);
  refreshControls();
}

// ---------- prediction ----------

function pixelsOf(canvas) {
  return canvasToPixels(tf, canvas, app.manifest.input.channels);
}

/** Probabilities in manifest label order for a decoded image canvas. */
async function probabilities(canvas) {
  const out = tf.tidy(() => classify(tf, app.backbone, classifier(), preprocess(tf, pixelsOf(canvas), app.manifest)));
  try {
    return Array.from(await out.data());
  } finally {
    out.dispose();
  }
}

async function predictAndShow(canvas, name) {
  const started = performance.now();
  const probs = await probabilities(canvas);
  const ms = performance.now() - started;
  app.timings.lastPredictMs = ms;
  const k = Math.min(3, app.manifest.labels.length);
  ui.showPreview(canvas, name);
  ui.showPrediction(topK(probs, app.manifest.labels, k), app.active === 'browser' && app.browser ? 'browser' : 'python',
    headText(), name, ms);
  app.last = { canvas, name };
}

async function handleFile(file) {
  if (!app.ready) return;
  if (!file) {
    ui.showMessage('No file found in what was dropped or pasted.');
    return;
  }
  try {
    const canvas = await decodeToCanvas(file, file.name || 'the pasted image');
    await predictAndShow(canvas, file.name || 'pasted image');
    ui.showMessage('');
  } catch (e) {
    ui.showMessage(e instanceof InputError ? e.message : `Could not classify ${file.name}: ${e.message}`);
  }
}

async function repredict() {
  if (app.last) await predictAndShow(app.last.canvas, app.last.name);
}

// ---------- training ----------

/** The served images training uses (train + validation, never test), split as Python does. */
function trainingSet(items, manifest) {
  const hp = manifest.training.hyperparameters;
  const seed = manifest.training.seed != null ? manifest.training.seed : 0;
  const all = splitItems(items, manifest.labels, hp.validation_split || 0, seed);
  const used = [...all.train, ...all.valid];
  const usedItems = used.map((i) => items[i]);
  const row = new Map(used.map((itemIndex, r) => [itemIndex, r]));
  return {
    items: usedItems,
    labelIndex: usedItems.map((item) => manifest.labels.indexOf(item.label)),
    split: { train: all.train.map((i) => row.get(i)), valid: all.valid.map((i) => row.get(i)), note: all.note },
  };
}

/** A served training image as pixels, through the same decode as an uploaded one. */
async function loadPixels(item) {
  return pixelsOf(await fetchToCanvas(item.url));
}

async function train() {
  const hp = ui.readHyperparameters();
  if (!hp || app.training || !app.ready) return;
  const set = app.trainSet;
  if (!set || set.split.train.length === 0) {
    ui.showMessage('There are no served training images to train on.');
    return;
  }
  const defaults = app.manifest.training.hyperparameters;
  const hyper = { ...hp, optimizer: defaults.optimizer, loss: defaults.loss };
  app.training = true;
  app.stopRequested = false;
  refreshControls();
  ui.showMessage('');
  try {
    if (!app.feats) {
      ui.setStatus('training', `Extracting features of ${set.items.length} images…`);
      const started = performance.now();
      app.feats = await extractFeatures({
        tf, backbone: app.backbone, manifest: app.manifest, items: set.items,
        loadPixels,
        batchSize: 16,
        onProgress: (done, total) => ui.setProgress(done, total, `features ${done}/${total}`),
        shouldStop: () => app.stopRequested,
      });
      if (app.feats) app.timings.featuresMs = performance.now() - started;
    }
    if (!app.feats) {
      ui.setProgress(0, 1, 'stopped');
      ui.setStatus('ready', 'Stopped before training started. ' + readyText());
      return;
    }
    ui.setStatus('training', `Training for ${hyper.epochs} epochs…`);
    ui.setProgress(0, hyper.epochs, `epoch 0/${hyper.epochs}`);
    const result = await trainHead({
      tf, manifest: app.manifest, feats: app.feats, labelIndex: set.labelIndex, split: set.split, hyper,
      charts: ui.trainingCharts(set.split.valid.length > 0),
      onModel: (model) => {
        app.trainingModel = model;
        if (app.stopRequested) model.stopTraining = true;
      },
      onEpoch: (epoch, logs) => {
        const acc = logs.acc != null ? `, accuracy ${logs.acc.toFixed(3)}` : '';
        ui.setProgress(epoch, hyper.epochs, `epoch ${epoch}/${hyper.epochs}: loss ${logs.loss.toFixed(4)}${acc}`);
      },
    });
    app.timings.trainMs = result.ms;
    app.timings.trainEpochs = result.epochs;
    if (app.browser) app.browser.model.dispose();
    app.browser = { model: result.model, kind: 'head', source: 'trained', name: 'this page' };
    app.active = 'browser';
    ui.setHeadChoice('browser', 'trained in this page');
    const how = result.stopped ? `Stopped after ${result.epochs}/${hyper.epochs} epochs` : `Trained ${result.epochs} epochs`;
    ui.setStatus('ready', `${how} in ${(result.ms / 1000).toFixed(1)} s; predictions now use the head trained here.`);
    refreshControls();
    await repredict();
  } catch (e) {
    ui.showMessage(`Training failed: ${e.message}`);
    ui.setStatus('ready', readyText());
  } finally {
    app.training = false;
    app.trainingModel = null;
    refreshControls();
  }
}

function stop() {
  app.stopRequested = true;
  if (app.trainingModel) app.trainingModel.stopTraining = true;
}

// ---------- download / load ----------

async function download(merged) {
  const c = classifier();
  try {
    if (!merged && c.kind === 'merged') {
      ui.showMessage('The model in use is a merged model: use "Download merged model".');
      return;
    }
    if (merged) {
      const model = c.kind === 'merged' ? c.model : mergeModels(tf, app.backbone, c.model);
      await model.save('downloads://tfjs-transfer-merged');
    } else {
      await c.model.save('downloads://tfjs-transfer-head');
    }
  } catch (e) {
    ui.showMessage(`Download failed: ${e.message}`);
  }
}

async function loadModelFiles(files) {
  if (!files || files.length === 0 || app.training) return;
  try {
    const loaded = await loadFromFiles(tf, app.manifest, files);
    if (app.browser) app.browser.model.dispose();
    app.browser = { ...loaded, source: 'file' };
    app.active = 'browser';
    ui.setHeadChoice('browser', `loaded from ${loaded.name}${loaded.kind === 'merged' ? ' (merged)' : ''}`);
    refreshControls();
    ui.showMessage(`Loaded ${loaded.name} as a ${loaded.kind === 'merged' ? 'merged model' : 'head'}; predictions now use it.`, 'info');
    await repredict();
  } catch (e) {
    ui.showMessage(`Could not use that model: ${e.message}`);
  }
}

// ---------- backend ----------

async function switchBackend(name) {
  if (app.training) return;
  app.ready = false;
  refreshControls();
  ui.setStatus('loading', `Switching to ${name}…`);
  try {
    const backend = await activateBackend(tf, name, PAGE, pageKernels(location.search));
    warmUp(tf, app.backbone, app.python.model, app.manifest);
    ui.showBackend(backend.name, backend.details, backend.fellBack ? `${name} failed` : '');
    const url = new URL(location.href);
    url.searchParams.set('backend', backend.name);
    history.replaceState(null, '', url);
    app.ready = true;
    refreshControls();
    ui.setStatus('ready', readyText());
    await repredict();
  } catch (e) {
    fail(e);
  }
}

// ---------- start ----------

function wire() {
  const { el } = ui;
  el.upload.addEventListener('change', async () => {
    const file = el.upload.files[0];
    if (file) await handleFile(file);
    el.upload.value = '';
  });
  for (const type of ['dragenter', 'dragover']) {
    el.dropzone.addEventListener(type, (e) => { e.preventDefault(); el.dropzone.classList.add('over'); });
  }
  el.dropzone.addEventListener('dragleave', () => el.dropzone.classList.remove('over'));
  el.dropzone.addEventListener('drop', (e) => {
    e.preventDefault();
    el.dropzone.classList.remove('over');
    handleFile(firstFile(e.dataTransfer));
  });
  // A file dropped beside the drop zone must not navigate away from the page.
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => e.preventDefault());
  document.addEventListener('paste', (e) => {
    const file = firstFile(e.clipboardData);
    if (file) {
      e.preventDefault();
      handleFile(file);
    }
  });
  el.trainForm.addEventListener('submit', (e) => { e.preventDefault(); train(); });
  el.stop.addEventListener('click', stop);
  el.download.addEventListener('click', () => download(false));
  el.downloadMerged.addEventListener('click', () => download(true));
  el.loadModel.addEventListener('change', async () => {
    await loadModelFiles(Array.from(el.loadModel.files));
    el.loadModel.value = '';
  });
  el.headSelect.addEventListener('change', async () => {
    app.active = el.headSelect.value === 'browser' && app.browser ? 'browser' : 'python';
    await repredict();
  });
  el.backend.addEventListener('change', () => switchBackend(el.backend.value));
  // Should never fire; if it does, say so in the page too (the console still gets it).
  window.addEventListener('unhandledrejection', (e) => {
    ui.showMessage(`Unexpected problem: ${e.reason && e.reason.message ? e.reason.message : e.reason}`);
  });
}

function expose() {
  window.tfjsTransfer = {
    tf,
    manifest: app.manifest,
    numTensors: () => tf.memory().numTensors,
    backend: () => tf.getBackend(),
    timings: app.timings,
    head: () => (app.active === 'browser' && app.browser ? 'browser' : 'python'),
    predictUrl: async (url) => topK(await probabilities(await fetchToCanvas(new URL(url, PAGE).href)),
      app.manifest.labels, app.manifest.labels.length),
    probabilitiesUrl: async (url) => probabilities(await fetchToCanvas(new URL(url, PAGE).href)),
    // The page's own steps, for `make bench` to time the product's code rather than a copy.
    steps: { extractFeatures, trainHead, buildHead, loadPixels, preprocess, features, backbone: () => app.backbone,
      trainSet: () => app.trainSet },
    featuresUrl: async (url) => {
      const canvas = await fetchToCanvas(new URL(url, PAGE).href);
      const out = tf.tidy(() => features(tf, app.backbone, preprocess(tf, pixelsOf(canvas), app.manifest)));
      try {
        return Array.from(await out.data());
      } finally {
        out.dispose();
      }
    },
  };
}

async function start() {
  wire();
  refreshControls();
  ui.setStatus('loading', 'Starting TensorFlow.js…');
  const backend = await activateBackend(tf, requestedBackend(location.search), PAGE, pageKernels(location.search));
  const asked = requestedBackend(location.search);
  ui.showBackend(backend.name, backend.details, backend.fellBack ? `${asked} failed, fell back` : '');
  ui.setStatus('loading', 'Loading manifest.json…');
  const manifest = await fetchJson(new URL('manifest.json', PAGE).href, 'manifest.json');
  if (typeof manifest.format !== 'string' || !manifest.format.startsWith('tfjs-transfer/')) {
    throw new Error(`manifest.json has format ${JSON.stringify(manifest.format)}, expected "tfjs-transfer/1"`);
  }
  app.manifest = manifest;
  ui.showTitle(manifest.labels);
  ui.showAbout(manifest);
  const hp = manifest.training.hyperparameters;
  ui.setHyperparameters({ epochs: hp.epochs, batchSize: hp.batch_size, learningRate: hp.learning_rate });
  ui.setStatus('loading', `Loading ${manifest.backbone.path} and ${manifest.head.path}…`);
  const started = performance.now();
  const [backbone, head] = await Promise.all([
    loadModel(tf, manifest.backbone.path, PAGE, 'backbone'),
    loadModel(tf, manifest.head.path, PAGE, 'head'),
  ]);
  checkModels(manifest, backbone, head);
  warmUp(tf, backbone, head, manifest);
  app.timings.loadMs = performance.now() - started;
  ui.showLoadTime(app.timings.loadMs);
  app.backbone = backbone;
  app.python = { model: head, kind: 'head', source: 'python' };
  try {
    app.items = await loadImageList(manifest, PAGE);
    ui.showGallery(groupByLabel(app.items, manifest.labels));
    app.trainSet = trainingSet(app.items, manifest);
    const { split } = app.trainSet;
    const counts = manifest.labels.map((l) => `${l} ${split.train.filter((i) => app.trainSet.items[i].label === l).length}`);
    ui.setTrainSummary(`${split.train.length} training images (${counts.join(', ')}), `
      + `${split.valid.length} for validation (${split.note}); optimizer ${hp.optimizer}, loss ${hp.loss}.`);
  } catch (e) {
    app.items = [];
    app.trainSet = null;
    ui.showMessage(`Training images unavailable (prediction still works): ${e.message}`);
  }
  expose();
  app.ready = true;
  refreshControls();
  ui.setStatus('ready', readyText());
}

start().catch(fail);

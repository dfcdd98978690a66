// The app: holds its state (manifest, backbone, project, heads) and wires the page's
// controls (ui.bind) to what they do: predict, train, download (head, merged model,
// Teachable Machine zip), load (a TF.js model or a Teachable Machine export), switch backend.
// What prediction needs is imported here; the training code (training.js, with tfjs-vis)
// is a chunk of its own, imported when Train is first pressed (or pointed at).
import * as tf from './tf.js';
import '@tensorflow/tfjs-backend-wasm';
import { activateBackend, pageKernels, requestedBackend } from './backend.js';
import { InputError, decodeToCanvas, fetchImageIndex, fetchJson, fetchToCanvas, srcToCanvas } from './data.js';
import { Heads } from './heads.js';
import { buildHead, checkModels, features, loadFromFiles, loadModel, mergeModels, warmUp } from './models.js';
import { pixelsOf, probabilities } from './predict.js';
import { preprocess, topK } from './preprocess.js';
import { projectFromSite, trainSummary } from './project.js';
import * as ui from './ui.js';
import { bindWebcam } from './ui-webcam.js';

const PAGE = document.baseURI;

const app = {
  manifest: null,
  backbone: null,
  heads: null, // Heads: the Python head, the page's, which is in use
  project: null, // Project: classes, examples and their features; null if images.json is unavailable
  ready: false,
  training: false,
  stop: { requested: false, model: null }, // the Stop button's request and the model it stops
  last: null, // {canvas, name} of the last predicted image, re-predicted when the head changes
  timings: {},
};

function refreshControls() {
  ui.setBusy({ ready: app.ready, training: app.training, hasBrowserHead: Boolean(app.heads && app.heads.browser) });
}

function readyText() {
  return `Ready: drop, paste or choose an image to classify it as ${app.heads.active.labels.join(', ')}.`;
}

function fail(error) {
  app.ready = false;
  ui.setStatus('error', `Error: ${error.message || error}`);
  refreshControls();
}

/** An example's pixels, through the same decode as an uploaded image. */
async function loadPixels(example) {
  return pixelsOf(tf, await srcToCanvas(example.src, example.name), app.manifest);
}

// ---------- prediction ----------

async function predictAndShow(canvas, name) {
  const head = app.heads.active;
  const started = performance.now();
  const probs = await probabilities(tf, app.manifest, app.backbone, head, canvas);
  const ms = performance.now() - started;
  app.timings.lastPredictMs = ms;
  ui.showPreview(canvas, name);
  ui.showPrediction(topK(probs, head.labels, Math.min(3, head.labels.length)), app.heads.which,
    app.heads.describe(), name, ms);
  app.last = { canvas, name };
}

async function onImage(file) {
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

let trainingCode = null;

/** The training chunk (training.js), imported once; a failed import is tried again next time. */
function loadTraining() {
  if (!trainingCode) {
    trainingCode = import('./training.js').catch((e) => {
      trainingCode = null;
      throw new Error(`could not load the training code: ${e.message}`);
    });
  }
  return trainingCode;
}

/** The user is about to train (pointer on, or focus in, the Train button): start fetching. */
function onTrainIntent() {
  loadTraining().catch(() => {}); // onTrain reports a failure
}

async function onTrain(hp) {
  if (app.training || !app.ready) return;
  if (!app.project || app.project.withRole('train').length === 0) {
    ui.showMessage('There are no served training images to train on.');
    return;
  }
  const defaults = app.manifest.training.hyperparameters;
  const hyper = { ...hp, optimizer: defaults.optimizer, loss: defaults.loss };
  app.training = true;
  app.stop = { requested: false, model: null };
  refreshControls();
  ui.showMessage('');
  try {
    if (!trainingCode) ui.setStatus('training', 'Loading the training code…');
    const { trainProjectHead } = await loadTraining();
    const result = await trainProjectHead({ tf, manifest: app.manifest, backbone: app.backbone, project: app.project,
      hyper, loadPixels, ui, stop: app.stop, timings: app.timings });
    if (!result) {
      ui.setProgress(0, 1, 'stopped');
      ui.setStatus('ready', 'Stopped before training started. ' + readyText());
      return;
    }
    app.heads.setBrowser({ model: result.model, kind: 'head', labels: result.labels, source: 'trained', name: 'this page' });
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
    app.stop.model = null;
    refreshControls();
  }
}

function onStop() {
  app.stop.requested = true;
  if (app.stop.model) app.stop.model.stopTraining = true;
}

// ---------- download / load ----------

/** The merged model of the head in use (image in, probabilities out), sharing its layers. */
function mergedInUse() {
  const head = app.heads.active;
  return head.kind === 'merged' ? head.model : mergeModels(tf, app.backbone, head.model);
}

/** Saves a Blob as a download, as model.save('downloads://') does. */
function saveBlob(blob, fileName) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The Teachable Machine code (tm.js, with fflate), a chunk imported when first used. */
const tmCode = () => import('./tm.js');

/** Picked files that are a Teachable Machine export: a zip, or metadata.json among them. */
function isTmExport(files) {
  return files.some((f) => /\.zip$/i.test(f.name) || f.name === 'metadata.json');
}

/** The head in use as Teachable Machine's zip, refused for a site TM and ml5 cannot feed. */
async function downloadTm() {
  const head = app.heads.active;
  const { metadata, notExpressible, tmZip } = await tmCode();
  if (head.source !== 'tm') {
    const why = notExpressible(app.manifest);
    if (why) {
      ui.showMessage(`${why}.`);
      return;
    }
  }
  const zip = await tmZip(tf, mergedInUse(), metadata(app.manifest, head.labels, app.heads.describe()));
  saveBlob(new Blob([zip], { type: 'application/zip' }), 'tfjs-transfer-tm.zip');
}

/** kind: 'head', 'merged' or 'tm' (the Teachable Machine / ml5 zip). */
async function onDownload(kind) {
  const head = app.heads.active;
  try {
    if (kind === 'head' && head.kind === 'merged') {
      ui.showMessage('The model in use is a merged model: use "Merged model" or "Teachable Machine / ml5".');
      return;
    }
    if (kind === 'tm') await downloadTm();
    else if (kind === 'merged') await mergedInUse().save('downloads://tfjs-transfer-merged');
    else await head.model.save('downloads://tfjs-transfer-head');
  } catch (e) {
    ui.showMessage(`Download failed: ${e.message}`);
  }
}

/** A Teachable Machine export (files or zip): it predicts with its own labels and input. */
async function loadTm(files) {
  const { TM_INPUT, loadTmExport } = await tmCode();
  const loaded = await loadTmExport(tf, files);
  app.heads.setBrowser({ model: loaded.model, kind: 'merged', labels: loaded.labels, source: 'tm',
    name: loaded.name, input: TM_INPUT });
  ui.setHeadChoice('browser', `Teachable Machine model from ${loaded.name}`);
  refreshControls();
  ui.showMessage(`Loaded the Teachable Machine model ${loaded.name} (${loaded.labels.join(', ')}); predictions now use it.`, 'info');
}

async function onLoadModel(files) {
  if (!files || files.length === 0 || app.training) return;
  try {
    if (isTmExport(files)) {
      await loadTm(files);
    } else {
      const loaded = await loadFromFiles(tf, app.manifest, files);
      app.heads.setBrowser({ ...loaded, labels: app.manifest.labels, source: 'file' });
      ui.setHeadChoice('browser', `loaded from ${loaded.name}${loaded.kind === 'merged' ? ' (merged)' : ''}`);
      refreshControls();
      ui.showMessage(`Loaded ${loaded.name} as a ${loaded.kind === 'merged' ? 'merged model' : 'head'}; predictions now use it.`, 'info');
    }
    await repredict();
  } catch (e) {
    ui.showMessage(`Could not use that model: ${e.message}`);
  }
}

async function onHeadChange(which) {
  app.heads.use(which);
  await repredict();
}

// ---------- backend ----------

async function onBackendChange(name) {
  if (app.training) return;
  app.ready = false;
  refreshControls();
  ui.setStatus('loading', `Switching to ${name}…`);
  try {
    const backend = await activateBackend(tf, name, PAGE, pageKernels(location.search));
    warmUp(tf, app.backbone, app.heads.python.model, app.manifest);
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

// --- stand-in until p14core lands ---
// selectedClass / addExamples / onProjectChanged as the contract names them: the class is
// the webcam section's own select, examples get role 'train', the gallery shows Blobs by URL.
const blobUrls = new WeakMap();
function blobUrl(blob) {
  if (!blobUrls.has(blob)) blobUrls.set(blob, URL.createObjectURL(blob));
  return blobUrls.get(blob);
}

function selectedClass() {
  const select = document.getElementById('webcam-class');
  if (app.project && select.options.length !== app.project.classes.length) {
    select.replaceChildren(...app.project.classes.map((c) => new Option(c, c)));
  }
  return select.value || null;
}

function onProjectChanged() {
  const groups = new Map([...app.project.byClass()].map(([c, examples]) => [c,
    examples.map((e) => (typeof e.src === 'string' ? e : { ...e, src: blobUrl(e.src) }))]));
  ui.showGallery(groups);
  ui.setTrainSummary(trainSummary(app.project, app.manifest.training.hyperparameters));
}

async function addExamples(label, items) {
  if (!app.project) throw new Error('there is no project to add to (images.json is unavailable)');
  for (const { blob, name } of items) {
    let id = name;
    for (let n = 2; app.project.examples.some((e) => e.id === id); n++) id = name.replace(/(\.\w+)?$/, `-${n}$1`);
    app.project.addExample({ id, label, src: blob, role: 'train', name: id });
  }
  onProjectChanged();
}

/** Calls back when the selected class changes (p14core: the class list's selection). */
function onSelectedClassChange(callback) {
  document.getElementById('webcam-class').addEventListener('change', callback);
}
// --- end stand-in ---

// ---------- webcam (p14cam) ----------

let webcamSection = null; // bindWebcam's {webcam, recorder, live, refresh}

/** The head in use's top classes for a webcam frame, or null while the page cannot predict. */
async function predictFrame(canvas) {
  if (!app.ready) return null;
  const head = app.heads.active;
  const probs = await probabilities(tf, app.manifest, app.backbone, head, canvas);
  return topK(probs, head.labels, Math.min(3, head.labels.length));
}

function startWebcam() {
  const input = app.manifest.input;
  webcamSection = bindWebcam({
    frameSize: () => Math.max(input.height, input.width), selectedClass, addExamples, predictFrame,
  });
  onSelectedClassChange(() => webcamSection.refresh()); // the "Records to" line
  webcamSection.refresh();
}
// ---------- end webcam ----------

// ---------- start ----------

function expose() {
  const canvasOf = (url) => fetchToCanvas(new URL(url, PAGE).href);
  window.tfjsTransfer = {
    tf,
    manifest: app.manifest,
    project: () => app.project,
    numTensors: () => tf.memory().numTensors,
    backend: () => tf.getBackend(),
    timings: app.timings,
    head: () => app.heads.which,
    webcam: () => webcamSection, // p14cam: {webcam, recorder, live}
    predictUrl: async (url) => {
      const head = app.heads.active;
      return topK(await probabilities(tf, app.manifest, app.backbone, head, await canvasOf(url)), head.labels, head.labels.length);
    },
    probabilitiesUrl: async (url) => probabilities(tf, app.manifest, app.backbone, app.heads.active, await canvasOf(url)),
    // The page's own steps, for `make bench` to time the product's code rather than a copy.
    // extractFeatures and trainHead import the training chunk on their first call.
    steps: {
      extractFeatures: async (opts) => (await loadTraining()).extractFeatures(opts),
      trainHead: async (opts) => (await loadTraining()).trainHead(opts),
      loadTraining, buildHead, loadPixels, preprocess, features, backbone: () => app.backbone,
      trainSet: () => (app.project ? app.project.trainingSet() : null),
    },
    featuresUrl: async (url) => {
      const canvas = await canvasOf(url);
      const out = tf.tidy(() => features(tf, app.backbone, preprocess(tf, pixelsOf(tf, canvas, app.manifest), app.manifest)));
      try {
        return Array.from(await out.data());
      } finally {
        out.dispose();
      }
    },
  };
}

async function loadProject(manifest) {
  try {
    const { file, images } = await fetchImageIndex(manifest, PAGE);
    app.project = projectFromSite(manifest.labels, images, PAGE, file);
    ui.showGallery(app.project.byClass());
    ui.setTrainSummary(trainSummary(app.project, manifest.training.hyperparameters));
  } catch (e) {
    app.project = null;
    ui.showMessage(`Training images unavailable (prediction still works): ${e.message}`);
  }
}

async function start() {
  ui.bind({ onImage, onTrain, onTrainIntent, onStop, onDownload, onLoadModel, onHeadChange, onBackendChange });
  refreshControls();
  ui.setStatus('loading', 'Starting TensorFlow.js…');
  // manifest.json downloads while the backend fetches and compiles its .wasm
  const manifestRequest = fetchJson(new URL('manifest.json', PAGE).href, 'manifest.json');
  manifestRequest.catch(() => {}); // awaited (and reported) below
  const asked = requestedBackend(location.search);
  const backend = await activateBackend(tf, asked, PAGE, pageKernels(location.search));
  ui.showBackend(backend.name, backend.details, backend.fellBack ? `${asked} failed, fell back` : '');
  ui.setStatus('loading', 'Loading manifest.json…');
  const manifest = await manifestRequest;
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
  app.heads = new Heads({ model: head, kind: 'head', labels: manifest.labels, source: 'python', name: manifest.head.path });
  await loadProject(manifest);
  expose();
  startWebcam(); // p14cam
  app.ready = true;
  refreshControls();
  ui.setStatus('ready', readyText());
}

start().catch(fail);

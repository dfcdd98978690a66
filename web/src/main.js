// The app: holds its state (manifest, backbone, project, heads, the TF.js worker) and wires
// the page's controls to what they do: predict, the project (projectapp.js), the webcam
// (ui-webcam.js), train (a Teachable Machine head continued: tmcontinue.js), evaluate
// (evaluationapp.js), keep projects (storeapp.js), download (head, merged model, Teachable
// Machine zip), load (a TF.js model or a Teachable Machine export), switch backend.
// What prediction needs is imported here; the training and evaluation code (with tfjs-vis)
// are chunks of their own (chunks.js), imported in idle time once the page is ready
// (prepare.js) or at first use; TF.js work runs in tfworker.js's worker.
import * as tf from './tf.js';
import '@tensorflow/tfjs-backend-wasm';
import { activateBackend, kernelThreads, pageKernels, requestedBackend, wasmThreads } from './backend.js';
import { InputError, fetchImageIndex, fetchJson, fetchToCanvas } from './data.js';
import { Heads } from './heads.js';
import { buildHead, checkModels, features, fetchModel, loadFromFiles, loadModel, mergeModels, useFusedPlans, warmUp } from './models.js';
import { fuseRequested } from './fused.js';
import { pixelsOf, predictFile, probabilities } from './predict.js';
import { preprocess, topK } from './preprocess.js';
import { Project, projectFromSite } from './project.js';
import { exampleToPixels } from './packs.js';
import * as ui from './ui.js';
import { NO_HEAD, createProjectApp } from './projectapp.js';
import { bindProject, setProjectBusy } from './ui-project.js';
import * as evaluationUi from './ui-evaluation.js';
import { yieldToPage } from './tasks.js';
import { loadEvaluation, loadTraining } from './chunks.js';
import { createEvaluationApp } from './evaluationapp.js';
import { startStore } from './storeapp.js';
import { continueTm, useContinuedTm } from './tmcontinue.js';
import { bindWebcam } from './ui-webcam.js';
import { startTfWorker, workerLanes, workerRequested } from './tfworker.js';
import { prepareInIdle, prepareRequested } from './prepare.js';

const PAGE = document.baseURI;

const app = {
  manifest: null,
  backbone: null,
  heads: null, // Heads: the Python head, the page's, which is in use
  project: null, // Project: classes, examples and their features (the served dataset's, or made in the page)
  ready: false,
  training: false,
  stop: { requested: false, model: null }, // the Stop button's request and the model it stops
  last: null, // {source, name} of the last predicted image (a canvas or File), re-predicted when the head changes
  predictions: 0, // predictions started: only the latest one's result is shown
  timings: {},
};

// ---------- TF.js in a worker (tfworker.js) for adding examples, training and evaluation ----------
let tfWorkerStart = Promise.resolve(null);

/** Starts the worker once the page is ready (?worker=0: none, everything on this thread). */
function startWorker() {
  if (!workerRequested(location.search)) return;
  tfWorkerStart = startTfWorker({ manifest: app.manifest, pageUrl: PAGE, backend: tf.getBackend(),
    kernels: pageKernels(location.search), fuse: fuseRequested(location.search), warm: prepareRequested(location.search),
    lanes: workerLanes(location.search, wasmThreads(navigator.hardwareConcurrency)),
    onDecoded: (n) => { app.timings.examplesDecoded = (app.timings.examplesDecoded || 0) + n; } });
}

/** The worker, or null: none started, it failed, or the page now runs another backend than the worker's. */
Object.defineProperty(app, 'tfWorker', {
  get: () => tfWorkerStart.then((w) => (w && !w.failed && w.info.backend === tf.getBackend() ? w : null)),
});

function refreshControls() {
  ui.setBusy({ ready: app.ready, training: app.training, hasBrowserHead: Boolean(app.heads && app.heads.browser) });
  setProjectBusy({ ready: app.ready, training: app.training, hasSite: Boolean(app.manifest && app.manifest.head.path) });
  evaluationUi.setEnabled(app.ready && !app.training && !evaluationApp.busy());
}

function readyText() {
  if (!app.heads.active) return `Ready: add classes and their images below, then train. ${NO_HEAD}`;
  return `Ready: drop, paste or choose an image to classify it as ${app.heads.active.labels.join(', ')}.`;
}

// ---------- the app hooks of the project ----------
/** After any edit of the project (class list, summary; persistence hooks its autosave here). */
function onProjectChanged() {
  projectApp.refresh();
  if (app.persist) app.persist.changed();
}

/** The class list's selection changed: the webcam's "Records to" line follows it. */
function onClassSelected() {
  if (webcamSection) webcamSection.refresh();
}

const projectApp = createProjectApp({
  tf, app, ui, refreshControls, onChanged: () => onProjectChanged(), onSelected: () => onClassSelected(),
  loadSiteProject: () => siteProject(app.manifest),
});

/** Adds [{blob, name}] to class `label` with their features; resolves to {added, skipped}. */
const addExamples = (label, items) => projectApp.addExamples(label, items);

/** The class new examples go to (the class list's selection), or null. */
const selectedClass = () => projectApp.selectedClass();

function fail(error) {
  app.ready = false;
  ui.setStatus('error', `Error: ${error.message || error}`);
  refreshControls();
}

/** An example's pixels, through the same decode as an uploaded image. */
async function loadPixels(example) {
  app.timings.examplesDecoded = (app.timings.examplesDecoded || 0) + 1; // a restore must not recompute features
  return exampleToPixels(tf, example, app.manifest.input.channels); // pack: its shard's slice (packs.js)
}

// ---------- prediction ----------

async function predictAndShow(canvas, name) {
  await showLatest(canvas, name, (head) => probabilities(tf, app.manifest, app.backbone, head, canvas));
}

/** A new image file predicted and shown; its time counts its decoding. */
async function predictFileAndShow(file, name) {
  await showLatest(file, name, (head) => predictFile(tf, app.manifest, app.backbone, head, file, name));
}

/**
 * Runs predict(head in use) and shows the result, unless another prediction started meanwhile
 * (a file decodes asynchronously: a second file may overtake it): the latest is shown, with
 * the head in use when it ends.
 */
async function showLatest(source, name, predict) {
  const ticket = ++app.predictions;
  const head = app.heads.active;
  const started = performance.now();
  const probs = await predict(head);
  if (ticket !== app.predictions) return;
  if (head !== app.heads.active) { // the head changed meanwhile
    if (app.heads.active) await showLatest(source, name, predict);
    return;
  }
  show(source, name, head, probs, performance.now() - started);
}

/**
 * A prediction's preview (a canvas, or an image File shown as itself) and top classes,
 * remembered for repredict().
 */
function show(source, name, head, probs, ms) {
  app.timings.lastPredictMs = ms;
  ui.showPreview(source, name);
  ui.showPrediction(topK(probs, head.labels, Math.min(3, head.labels.length)), app.heads.which,
    app.heads.describe(), name, ms);
  app.last = { source, name };
}

async function onImage(file) {
  if (!app.ready) return;
  if (!app.heads.active) {
    ui.showMessage(NO_HEAD);
    return;
  }
  if (!file) {
    ui.showMessage('No file found in what was dropped or pasted.');
    return;
  }
  const name = file.name || 'pasted image';
  try {
    await predictFileAndShow(file, name);
    ui.showMessage('');
  } catch (e) {
    ui.showMessage(e instanceof InputError ? e.message : `Could not classify ${name}: ${e.message}`);
  }
}

async function repredict() {
  if (!app.last || !app.heads.active) return;
  const { source, name } = app.last;
  await (source instanceof Blob ? predictFileAndShow(source, name) : predictAndShow(source, name));
}

// ---------- training ----------

/** The user is about to train (pointer on, or focus in, the Train button): start fetching. */
function onTrainIntent() {
  loadTraining().catch(() => {}); // onTrain reports a failure
}

/**
 * Train: a head for the project's classes, or, with a Teachable Machine model in use, its own
 * head continued on the project (tmtrain.js). Both share the run's state, Stop and messages.
 */
async function onTrain(hp) {
  if (app.training || !app.ready) return;
  const tmHead = app.heads.active && app.heads.active.source === 'tm' ? app.heads.active : null;
  const problem = tmHead ? null
    : app.project ? app.project.trainingProblems() : 'There are no training images to train on.';
  if (problem) {
    ui.showMessage(problem);
    return;
  }
  const defaults = app.manifest.training.hyperparameters;
  const hyper = { ...hp, optimizer: defaults.optimizer, loss: defaults.loss };
  app.training = true;
  app.stop = { requested: false, model: null };
  refreshControls();
  ui.showMessage('');
  try {
    const result = tmHead ? await continueTm({ tf, app, ui, loadPixels }, tmHead, hyper) : await trainProject(hyper);
    if (!result) {
      ui.setProgress(0, 1, 'stopped');
      ui.setStatus('ready', 'Stopped before training started. ' + readyText());
      return;
    }
    const how = `${result.stopped ? `Stopped after ${result.epochs}/${hyper.epochs} epochs` : `Trained ${result.epochs} epochs`}`
      + ` in ${(result.ms / 1000).toFixed(1)} s`;
    await (tmHead ? useContinuedTm({ app, ui }, tmHead, result, how) : useProjectHead(result, hyper, how));
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

/** A new head for the project's classes (trainer.js), or null if stopped before it started. */
async function trainProject(hyper) {
  if (!loadTraining.started()) ui.setStatus('training', 'Loading the training code…');
  const { trainProjectHead } = await loadTraining();
  return trainProjectHead({ tf, manifest: app.manifest, backbone: app.backbone, project: app.project,
    hyper, loadPixels, ui, stop: app.stop, timings: app.timings, worker: await app.tfWorker });
}

/** The page's new head is used, saved with the project and evaluated. */
async function useProjectHead(result, hyper, how) {
  app.heads.setBrowser({ model: result.model, kind: 'head', labels: result.labels, source: 'trained', name: 'this page', hyper });
  onProjectChanged(); // the trained head is saved with the project
  ui.setHeadChoice('browser', 'trained in this page');
  ui.setStatus('training', 'Evaluating the new head on the held-out examples…');
  await yieldToPage(); // the status is painted: the new head and the evaluation are tasks of their own
  await evaluationApp.evaluateInUse();
  ui.setStatus('ready', `${how}; predictions now use the head trained here.`);
}

function onStop() {
  app.stop.requested = true;
  if (app.stop.model) app.stop.model.stopTraining = true;
}

// ---------- evaluation ----------

const evaluationApp = createEvaluationApp({ tf, app, ui, refreshControls, predictAndShow });

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
  if (!head) {
    ui.showMessage(NO_HEAD);
    return;
  }
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
    warmUp(tf, app.backbone, app.heads.python && app.heads.python.model, app.manifest);
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

// ---------- webcam ----------

let webcamSection = null; // bindWebcam's {webcam, recorder, live, refresh}

/** The head in use's top classes for a webcam frame, or null while the page cannot predict. */
async function predictFrame(canvas) {
  const head = app.heads.active;
  if (!app.ready || !head) return null;
  const worker = await app.tfWorker; // predicted in the worker where there is one
  const probs = worker ? await worker.probabilities(tf, head, canvas) : await probabilities(tf, app.manifest, app.backbone, head, canvas);
  return topK(probs, head.labels, Math.min(3, head.labels.length));
}

function startWebcam() {
  const input = app.manifest.input;
  webcamSection = bindWebcam({
    frameSize: () => Math.max(input.height, input.width), selectedClass, addExamples, predictFrame,
  });
  webcamSection.refresh();
}

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
    evaluate: evaluationApp.onEvaluate, // the result shown in [data-testid=evaluation]
    webcam: () => webcamSection, // {webcam, recorder, live}
    tfWorker: () => app.tfWorker, // the TF.js worker (or null)
    kernelThreads: (enabled) => kernelThreads(tf, enabled), // the page's kernels' helper thread (wasm/pool.js)
    predictUrl: async (url) => {
      const head = app.heads.active;
      if (!head) throw new Error(NO_HEAD);
      return topK(await probabilities(tf, app.manifest, app.backbone, head, await canvasOf(url)), head.labels, head.labels.length);
    },
    probabilitiesUrl: async (url) => probabilities(tf, app.manifest, app.backbone, app.heads.active, await canvasOf(url)),
    // a new image File/Blob through the page's own file path (onImage's), without the DOM update
    probabilitiesFile: (file) => predictFile(tf, app.manifest, app.backbone, app.heads.active, file,
      file.name || 'the file'),
    // The page's own steps, for `make bench` to time the product's code rather than a copy.
    // extractFeatures and trainHead import the training chunk on their first call.
    steps: {
      extractFeatures: async (opts) => (await loadTraining()).extractFeatures(opts),
      trainHead: async (opts) => (await loadTraining()).trainHead(opts),
      loadTraining, buildHead, loadPixels, preprocess, features, backbone: () => app.backbone,
      useFusedPlans, // fused.js' plan on/off in one page: bench/page_bench.js' paired before/after
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
    // the project's hooks
    addExamples,
    selectedClass,
    backboneKey: () => projectApp.backboneKey,
    /** The head in use on an image Blob (an example's src): top classes, best first. */
    predictBlob: async (blob) => {
      const head = app.heads.active;
      if (!head) throw new Error(NO_HEAD);
      const probs = await predictFile(tf, app.manifest, app.backbone, head, blob, blob.name || 'the file');
      return topK(probs, head.labels, head.labels.length);
    },
  };
}

/** The served dataset as a project (images.json). */
async function siteProject(manifest) {
  const { file, images, packs } = await fetchImageIndex(manifest, PAGE);
  return projectFromSite(manifest.labels, images, PAGE, file, packs);
}

/** The project the page starts with: the served dataset's, or an empty one for a backbone-only site. */
async function loadProject(manifest) {
  if (!manifest.head.path) {
    projectApp.adopt(new Project());
    return;
  }
  try {
    projectApp.adopt(await siteProject(manifest));
  } catch (e) {
    projectApp.adopt(new Project());
    ui.showMessage(`Training images unavailable (prediction still works; you can add your own): ${e.message}`);
  }
}

async function start() {
  ui.bind({ onImage, onTrain, onTrainIntent, onStop, onDownload, onLoadModel, onHeadChange, onBackendChange });
  bindProject(projectApp.handlers);
  refreshControls();
  ui.setStatus('loading', 'Starting TensorFlow.js…');
  // manifest.json downloads while the backend fetches and compiles its .wasm
  const manifestRequest = fetchJson(new URL('manifest.json', PAGE).href, 'manifest.json');
  manifestRequest.catch(() => {}); // awaited (and reported) below
  // load: the models' files download while the backend starts (models.js fetchModel)
  const modelFiles = manifestRequest.then((m) => ({ backbone: fetchModel(tf, m.backbone.path, PAGE),
    head: m.head.path ? fetchModel(tf, m.head.path, PAGE) : null }));
  modelFiles.catch(() => {}); // a bad manifest is reported below
  const asked = requestedBackend(location.search);
  useFusedPlans(fuseRequested(location.search)); // ?fuse=0: the models layer by layer (fused.js)
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
  const withHead = Boolean(manifest.head.path); // a backbone-only site has none: the page starts empty
  ui.setStatus('loading', withHead ? `Loading ${manifest.backbone.path} and ${manifest.head.path}…` : `Loading ${manifest.backbone.path}…`);
  const started = performance.now();
  const files = await modelFiles;
  const [backbone, head] = await Promise.all([
    loadModel(tf, manifest.backbone.path, PAGE, 'backbone', files.backbone),
    withHead ? loadModel(tf, manifest.head.path, PAGE, 'head', files.head) : null,
  ]);
  checkModels(manifest, backbone, head);
  warmUp(tf, backbone, head, manifest);
  app.timings.loadMs = performance.now() - started;
  ui.showLoadTime(app.timings.loadMs);
  app.backbone = backbone;
  app.heads = new Heads(head ? { model: head, kind: 'head', labels: manifest.labels, source: 'python', name: manifest.head.path } : null);
  if (!head) { // a backbone-only site: no Python head to choose
    ui.setHeadChoice('browser', 'trained in this page');
    document.querySelector('#head-select option[value="python"]').disabled = true;
  }
  await projectApp.useBackbone(backbone, manifest);
  await loadProject(manifest);
  expose();
  app.persist = await startStore({ tf, app, ui, projectApp, loadSiteProject: () => loadProject(app.manifest),
    refreshControls, saveBlob });
  startWebcam();
  startWorker();
  app.ready = true;
  app.timings.readyAt = performance.now(); // since navigation: the page's cold start, all steps
  refreshControls();
  ui.setStatus('ready', readyText());
  // the first Train and evaluation, prepared in idle time (prepare.js)
  window.tfjsTransfer.prepared = prepareRequested(location.search) ? prepareInIdle({ loadTraining, loadEvaluation }) : null;
}

start().catch(fail);

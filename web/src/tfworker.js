// The main thread's side of worker/tf-worker.js: starts it (the same TF.js build, backend and
// backbone as the page), and gives promise calls for backbone features and head training, the
// typed arrays transferred, not copied. Where a module Worker, OffscreenCanvas or
// createImageBitmap is missing, or the worker fails to start, there is no worker (null) and
// the callers keep the main-thread path.
//
// Where the page would give TF.js a pool of more than two threads, the worker is as many
// lanes instead: workers whose TF.js runs one thread each, every lane extracting features of
// its own share of the images. A pool's threads meet at a barrier after every layer, and in
// wasm a thread that waits there sleeps and wakes late; lanes never wait for each other (as
// pipeline/tflite_engine.py's lanes). The first lane does everything else (training, with the
// page's own kernels on two threads: backend.js, wasm/pool.js; live prediction). Two threads
// are one worker: the page's kernels (the backbone as one chain, wasm/chain.js) already share
// each layer with their helper thread without a barrier, as fast as two lanes, and training
// after one worker's extraction is not slowed by a second one's (bench/worker_pair.py).

import { FEATURE_BATCH } from './featurebatch.js';
import { buildHead } from './models.js';

export const WORKER_FILE = 'tf-worker.js';

/** How often extract() asks shouldStop() while the worker runs a batch (the Stop button's latency). */
export const STOP_POLL_MS = 100;

/** ?worker=0 keeps TF.js on the main thread (before/after measurements, a fallback to compare). */
export function workerRequested(search) {
  return new URLSearchParams(search).get('worker') !== '0';
}

/** Why this browser cannot run the worker, or null when it can. */
export function workerMissing(g = globalThis) {
  if (typeof g.Worker !== 'function') return 'no Worker';
  if (typeof g.OffscreenCanvas !== 'function') return 'no OffscreenCanvas';
  if (typeof g.createImageBitmap !== 'function') return 'no createImageBitmap';
  return null;
}

/**
 * How many lanes: ?lanes=N (1: one worker with TF.js' pool of `threads`), else one worker
 * for a pool of up to two threads (the page's kernels use both) and one lane per thread the
 * page would give TF.js' pool beyond that (backend.js wasmThreads).
 */
export function workerLanes(search, threads) {
  const asked = Number.parseInt(new URLSearchParams(search).get('lanes'), 10);
  if (asked >= 1) return asked;
  return threads > 2 ? threads : 1;
}

/**
 * items cut into `n` parts as equal as can be (none empty): [{indices, items}], indices[j]
 * being the place in `items` of the part's item j. Items from packs (packs.js) go in the
 * shards' byte order, so that each part is one span of a shard, and each part's pack slices
 * are narrowed to that span and its number of images: each lane fetches only its share of a
 * shard, once. Other items keep their order, after them.
 */
export function splitItems(items, n) {
  const count = Math.max(1, Math.min(n, items.length));
  const order = [...items.keys()];
  if (count > 1) {
    const key = (i) => (items[i] && items[i].pack ? [0, items[i].pack.url, items[i].pack.offset] : [1, '', i]);
    order.sort((x, y) => {
      const [a, b] = [key(x), key(y)];
      return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) || a[2] - b[2];
    });
  }
  const parts = [];
  for (let k = 0, start = 0; k < count; k++) {
    const end = Math.round(((k + 1) * items.length) / count);
    const indices = order.slice(start, end);
    const share = indices.map((i) => items[i]);
    parts.push({ indices, items: count > 1 ? narrowPacks(share) : share });
    start = end;
  }
  return parts;
}

/** items with each pack slice given the span and count of these items' slices of its shard. */
function narrowPacks(items) {
  const spans = new Map(); // shard url -> {range: [start, end], count}
  for (const { pack } of items) {
    if (!pack) continue;
    const span = spans.get(pack.url) || { range: [Infinity, 0], count: 0 };
    span.range = [Math.min(span.range[0], pack.offset), Math.max(span.range[1], pack.offset + pack.length)];
    span.count += 1;
    spans.set(pack.url, span);
  }
  return items.map((item) => (item.pack ? { ...item, pack: { ...item.pack, ...spans.get(item.pack.url) } } : item));
}

/** The lanes' rows ({data, size} for each of splitItems' parts) as one array, in the items' order. */
function joinRows(parts, outs, count) {
  const { size } = outs[0];
  const data = new Float32Array(count * size);
  outs.forEach((out, k) => parts[k].indices.forEach((i, j) => {
    data.set(out.data.subarray(j * size, (j + 1) * size), i * size);
  }));
  return data;
}

/** What the worker needs of an example: where its pixels are (a served image's pack slice too). */
const workerItem = ({ src, name, pack }) => (pack ? { src, name, pack } : { src, name });

export class TfWorker {
  constructor(worker, onDecoded = () => {}) {
    this.worker = worker;
    this.onDecoded = onDecoded;
    this.headKeys = new WeakMap(); // head model -> its key in the worker
    this.headSent = null; // the key of the head the worker holds
    this.calls = new Map();
    this.failed = null;
    this.next = 1;
    this.lanes = [this]; // this worker first, then the started lanes that extract beside it (addLane)
    // startTfWorker's lanes, all started or left out: rows() and extract() wait for them, as
    // this worker on a pool of one thread would run alone meanwhile
    this.lanesStarted = Promise.resolve(1);
    worker.onmessage = ({ data }) => {
      const call = this.calls.get(data.id);
      if (!call) return;
      if (data.type === 'done') {
        this.calls.delete(data.id);
        call.resolve(data.result);
      } else if (data.type === 'error') {
        this.calls.delete(data.id);
        call.reject(new Error(data.message));
      } else {
        call.onMessage(data);
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.failAll(new Error(`the TF.js worker failed: ${event.message || 'it could not run'}`));
    };
  }

  failAll(error) {
    this.failed = error; // later calls fail at once (a dead worker would never answer)
    for (const call of this.calls.values()) call.reject(error);
    this.calls.clear();
  }

  /** Another worker (a TfWorker, started and warmed) that takes a share of rows() and extract(). */
  addLane(lane) {
    lane.onDecoded = (n) => this.onDecoded(n);
    this.lanes.push(lane);
  }

  /** The lanes that can take work now (one that failed is left out). */
  liveLanes() {
    return this.lanes.filter((lane) => lane === this || !lane.failed);
  }

  /** One job; onMessage gets the job's interim messages (training's epochs). */
  call(type, payload, { transfer = [], onMessage = () => {} } = {}) {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject, onMessage });
      this.worker.postMessage({ id, type, payload }, transfer);
    });
  }

  /**
   * Features of items [{src: Blob|URL string, name, pack?}], decoded in the workers (packs.js),
   * each lane its share of them (splitItems), `batchSize` images a backbone run in each (as
   * extract(): a part of `batchSize` items is one run in every lane).
   * @returns {Promise<{data: Float32Array, size: number, skipped: {index, reason, input}[]}>}
   *   row i for items[i]; skipped items' rows are zero
   */
  async rows(items, batchSize = 4) {
    await this.lanesStarted;
    const lanes = this.liveLanes();
    const parts = splitItems(items, lanes.length);
    if (parts.length < 2) return this.call('features', { items: items.map(workerItem), batchSize });
    const outs = await Promise.all(parts.map((part, k) => lanes[k].call('features',
      { items: part.items.map(workerItem), batchSize, lanes: parts.length })));
    const skipped = outs.flatMap((out, k) => out.skipped.map((s) => ({ ...s, index: parts[k].indices[s.index] })))
      .sort((a, b) => a.index - b.index);
    return { data: joinRows(parts, outs, items.length), size: outs[0].size, skipped };
  }

  /**
   * train.js extractFeatures' contract on the worker: every item's features, through the same
   * extractFeatures in the worker (its pipeline) as one job a lane, each lane its share of the
   * items (splitItems), `batchSize` images a backbone run in each (a lane on one thread gains
   * from a run of 32 as much as from two of 16: 0.91x the extraction, paired, bench/worker_pair.py
   * --batch); progress comes back per batch,
   * and shouldStop() is asked at each and every STOP_POLL_MS meanwhile (a Stop ends the job
   * between batches). An item that cannot be loaded fails the whole run, named, once the other
   * lanes have stopped at their next batch.
   * @returns {Promise<{data: Float32Array, count: number, size: number, waitMs: number}|null>} null if stopped
   */
  async extract({ items, batchSize = FEATURE_BATCH, onProgress = () => {}, shouldStop = () => false }) {
    await this.lanesStarted;
    const lanes = this.liveLanes();
    const parts = splitItems(items, lanes.length);
    if (parts.length < 2) return this.extractHere({ items, batchSize, onProgress, shouldStop });
    const done = parts.map(() => 0);
    let failed = false; // a lane's failure stops the others between their batches
    const stop = () => failed || shouldStop();
    const runs = parts.map((part, k) => lanes[k].extractHere({
      items: part.items, batchSize, lanes: parts.length, shouldStop: stop,
      onProgress: (n) => {
        done[k] = n;
        onProgress(done.reduce((a, b) => a + b, 0), items.length);
      },
    }).catch((e) => {
      failed = true;
      throw e;
    }));
    // every lane settled (the others stopped at their next batch) before a failure is thrown
    const settled = await Promise.allSettled(runs);
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
    const outs = settled.map((r) => r.value);
    if (outs.includes(null)) return null;
    return { data: joinRows(parts, outs, items.length), count: items.length, size: outs[0].size,
      waitMs: Math.max(...outs.map((out) => out.waitMs || 0)) };
  }

  /**
   * The backbone alone on blank preprocessed images, `batch` images a run as extract() runs
   * them, `runs` runs in every lane at once (make bench).
   * @returns {Promise<{ms: number, images: number}>} the slowest lane's ms, the images run in all
   */
  async backboneMs(batch, runs) {
    await this.lanesStarted;
    const lanes = this.liveLanes();
    const ms = await Promise.all(lanes.map((lane) => lane.call('backbone', { batch, runs, lanes: lanes.length })));
    return { ms: Math.max(...ms), images: batch * runs * lanes.length };
  }

  /** extract() on this worker alone (`lanes`: how many workers extract at once). */
  async extractHere({ items, batchSize, lanes = 1, onProgress, shouldStop }) {
    if (shouldStop()) return null;
    let counted = 0;
    let stopSent = false;
    const askStop = () => {
      if (!stopSent && shouldStop()) {
        stopSent = true;
        this.worker.postMessage({ type: 'stop' });
      }
    };
    const pending = this.call('extract', { items: items.map(workerItem), batchSize, lanes }, {
      onMessage: ({ done, total }) => {
        this.onDecoded(done - counted);
        counted = done;
        onProgress(done, total);
        askStop();
      },
    });
    const poll = setInterval(askStop, STOP_POLL_MS); // after the job is posted: a stop arrives after it
    try {
      return await pending;
    } finally {
      clearInterval(poll);
    }
  }

  /**
   * train.js trainHead's contract (a fresh head; no `head` to continue) with the loop in the
   * worker: the features go over once, each epoch's logs come back for onEpoch and the charts,
   * onModel gets a stand-in whose stopTraining = true stops the worker's loop. The same head
   * (the manifest's layers, models.js buildHead) is built here while the worker trains, and
   * takes the trained weights when they come back: a tf.LayersModel the page predicts, saves
   * and downloads with. feats.data is transferred, not copied (a copy of 2,000 examples'
   * features would be a long task of its own): the caller's array is left empty (detached).
   */
  async trainHead({ tf, manifest, feats, labelIndex, split, hyper, classes, seed = 1, charts = null,
    onModel = () => {}, onEpoch = () => {} }) {
    const { data } = feats;
    const worker = this;
    let charting = Promise.resolve();
    const pending = this.call('train', {
      manifest, feats: { data, count: feats.count, size: feats.size }, labelIndex, split,
      hyper: { epochs: hyper.epochs, batchSize: hyper.batchSize, learningRate: hyper.learningRate,
        optimizer: hyper.optimizer, loss: hyper.loss },
      classes, seed,
    }, {
      transfer: [data.buffer],
      onMessage: ({ epoch, logs }) => {
        onEpoch(epoch, logs);
        // not chained: the charts draw the epochs that ended meanwhile together (charts.js)
        if (charts) charting = Promise.all([charting, charts.onEpochEnd(epoch - 1, logs)]);
      },
    });
    onModel({ // after the job is posted: a stop it sends arrives after it
      set stopTraining(value) {
        if (value) worker.worker.postMessage({ type: 'stop' });
      },
      get stopTraining() {
        return false;
      },
    });
    const model = buildHead(tf, manifest, { seed, classes, blank: true }); // its weights come from the worker
    try {
      const out = await pending;
      await charting;
      if (charts && charts.onTrainEnd) await charts.onTrainEnd();
      const weights = out.weights.map(({ data, shape, dtype }) => tf.tensor(data, shape, dtype));
      try {
        model.setWeights(weights);
      } finally {
        tf.dispose(weights);
      }
      return { model, history: out.history, epochs: out.epochs, stopped: out.stopped, ms: out.ms };
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /**
   * The probabilities of `head` ({model, kind, input?} as Heads gives it; tf: the page's, to
   * save it) for an opaque canvas (a webcam frame), computed in the worker as predict.js
   * probabilities() computes them here. The head goes over (its artifacts) the first time it
   * is used and whenever another head is.
   * @returns {Promise<Float32Array>}
   */
  async probabilities(tf, head, canvas) {
    let key = this.headKeys.get(head.model);
    if (key == null) {
      key = this.next++;
      this.headKeys.set(head.model, key);
    }
    if (this.headSent !== key) {
      let artifacts = null;
      await head.model.save(tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }));
      this.headSent = null;
      await this.call('head', { key, artifacts, kind: head.kind, input: head.input || null },
        { transfer: [].concat(artifacts.weightData) });
      this.headSent = key;
    }
    // The frame's RGBA bytes go over (transferred): a frame is opaque, so nothing to composite
    // over white, and no ImageBitmap to make here nor canvas to draw it on there.
    const { data, width, height } = canvas.getContext('2d', { willReadFrequently: true })
      .getImageData(0, 0, canvas.width, canvas.height);
    return this.call('classify', { key, pixels: { data: new Uint8Array(data.buffer), width, height } },
      { transfer: [data.buffer] });
  }

  terminate() {
    for (const lane of this.lanes.slice(1)) lane.terminate();
    this.worker.terminate();
    this.failAll(new Error('the TF.js worker was stopped'));
  }
}

/**
 * Starts the worker beside the page's dist files and loads the backbone in it.
 * @param {object} opts {manifest, pageUrl, backend (the page's backend name), kernels (pageKernels()),
 *   fuse (fuseRequested(): the backbone as fused ops, as the page runs it),
 *   onDecoded(n) (extract() decoded n images: the page counts them), warm (run the worker's
 *   kernels once before the page's first job: tf-worker.js warm; false with ?prepare=0),
 *   lanes (workerLanes(); on wasm, more than 1 starts the others after the first, which then
 *   runs a pool of one thread too: client.lanesStarted resolves once they take work or are
 *   left out)}
 * @returns {Promise<TfWorker|null>} null (and a console note) where it cannot run
 */
export async function startTfWorker({ manifest, pageUrl, backend, kernels, fuse = true, onDecoded = () => {},
  warm = true, lanes = 1, scriptUrl = new URL(WORKER_FILE, import.meta.url) }) {
  const missing = workerMissing();
  if (missing) {
    console.info(`tfjs-transfer: TF.js runs on the main thread (${missing} in this browser)`);
    return null;
  }
  const count = backend === 'wasm' ? Math.max(1, lanes) : 1;
  const threads = count > 1 ? 1 : null;
  let client = null;
  const started = performance.now();
  try {
    client = new TfWorker(new Worker(scriptUrl, { type: 'module' }), onDecoded);
    client.info = await client.call('init', { manifest, pageUrl: String(pageUrl), backend, kernels, fuse, threads });
    client.startMs = performance.now() - started; // its script, backend and backbone (make bench prints it)
    if (client.info.backend !== backend) throw new Error(`it runs ${client.info.backend}, the page ${backend}`);
    // queued ahead of the page's jobs; a failure only costs the warm-up ({batch, epochs} it ran, or null)
    client.warmed = warm ? client.call('warm', {}).catch((e) => {
      console.info(`tfjs-transfer: worker warm-up skipped (${e.message})`);
      return null;
    }) : Promise.resolve(null);
  } catch (e) {
    if (client) client.terminate();
    console.info(`tfjs-transfer: TF.js runs on the main thread (the worker did not start: ${e.message})`);
    return null;
  }
  const others = Array.from({ length: count - 1 }, () => startLane(client, {
    manifest, pageUrl: String(pageUrl), backend, kernels: { ...kernels, kernelThreads: false }, fuse, threads,
  }, warm, scriptUrl));
  client.lanesStarted = Promise.all(others).then(() => client.lanes.length);
  return client;
}

/** One more lane for `client` (backbone features only); a lane that cannot start is left out. */
async function startLane(client, init, warm, scriptUrl) {
  let lane = null;
  try {
    lane = new TfWorker(new Worker(scriptUrl, { type: 'module', name: 'TF.js lane' }));
    const info = await lane.call('init', init);
    if (info.backend !== init.backend) throw new Error(`it runs ${info.backend}, the page ${init.backend}`);
    if (warm) await lane.call('warm', { train: false });
    if (client.failed) throw client.failed;
    client.addLane(lane);
  } catch (e) {
    if (lane) lane.terminate();
    console.info(`tfjs-transfer: a TF.js lane did not start (${e.message}): fewer lanes extract features`);
  }
}

// The page's projects kept in IndexedDB, several by name. A save is ONE readwrite
// transaction over every object store it touches, so a full disk or a closed tab leaves
// the previous save whole. Images are kept as their original bytes (a Blob; only a very
// large one is re-encoded, before the transaction); features are kept per example with the
// fingerprint of the backbone that made them, and a different backbone's are not restored
// (the page recomputes them). Examples whose src is a URL (the served dataset) are kept as
// that URL: the served files are never copied or changed. No DOM here: Node tests it.

export const DB_NAME = 'tfjs-transfer';
const DB_VERSION = 1; // the object stores' layout (onupgradeneeded)
/** The version of a saved project record; older records go through MIGRATIONS on load. */
export const FORMAT = 1;
/**
 * Record migrations: MIGRATIONS[v](record) returns the record in format v + 1. Empty while
 * there is only format 1; a page that changes the record adds one here.
 */
export const MIGRATIONS = {};

const PROJECTS = 'projects'; // key: name -> {name, format, savedAt, classes, examples, backboneKey, featureSize, head}
const IMAGES = 'images'; // key: [project, example id] -> {id, blob}
const FEATURES = 'features'; // key: [project, example id] -> {id, backboneKey, data: ArrayBuffer}
const META = 'meta'; // key: 'last' -> name of the project last saved or opened
const ALL = [PROJECTS, IMAGES, FEATURES, META];

/** Images over either limit are re-encoded as JPEG when saved (phones take 50-200 MP). */
export const HUGE_BYTES = 4 * 1024 * 1024;
export const HUGE_PIXELS = 12e6;

/** A save, load or delete that failed; the message says which project and why. */
export class StoreError extends Error {}

const request = (req) => new Promise((resolve, reject) => {
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error);
});

/** All keys (or values) of one project in IMAGES or FEATURES: the range [name, *]. */
const projectRange = (IDBKeyRange, name) => IDBKeyRange.bound([name], [name, []]);

/** The backbone's fingerprint: features (and heads) are only reused for the same one. */
export function backboneKeyOf(manifest) {
  const b = manifest.backbone || {};
  return JSON.stringify([b.name, b.weights_id || manifest.fingerprint || null, b.cut_layer, b.output_shape,
    manifest.input, manifest.preprocessing]);
}

/** The record brought to FORMAT through `migrations`; a newer record is refused. */
export function migrate(record, migrations = MIGRATIONS) {
  let out = record;
  const from = out.format;
  if (!Number.isInteger(from) || from < 0) throw new StoreError(`project ${record.name} has no format version`);
  if (from > FORMAT) {
    throw new StoreError(`project ${record.name} was saved by a newer page (format ${from}; this page reads up to ${FORMAT})`);
  }
  while (out.format < FORMAT) {
    const step = migrations[out.format];
    if (!step) throw new StoreError(`project ${record.name}: no migration from format ${out.format}`);
    out = { ...step(out), format: out.format + 1 };
  }
  return out;
}

/**
 * A head model's save artifacts (topology, weight specs, weights as one ArrayBuffer) through a
 * custom tf.io IOHandler, to be written in the save's transaction.
 */
export async function headArtifacts(tf, model) {
  let artifacts = null;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  return { modelTopology: artifacts.modelTopology, weightSpecs: artifacts.weightSpecs, weightData,
    format: artifacts.format, generatedBy: artifacts.generatedBy, convertedBy: artifacts.convertedBy };
}

/** The IOHandler tf.loadLayersModel reads a saved head from. */
export function headLoader(artifacts) {
  return { load: async () => ({ ...artifacts }) };
}

/**
 * A Blob small enough to keep: the same Blob, or a JPEG of it at most HUGE_PIXELS when it is
 * over HUGE_BYTES or HUGE_PIXELS. Browser only (createImageBitmap, OffscreenCanvas).
 */
export async function shrinkHugeImage(blob) {
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') return blob;
  const { sniffImage } = await import('./data.js');
  const kind = sniffImage(new Uint8Array(await blob.slice(0, 65536).arrayBuffer()));
  const pixels = kind && kind.width && kind.height ? kind.width * kind.height : 0;
  if (blob.size <= HUGE_BYTES && pixels <= HUGE_PIXELS) return blob;
  if (!pixels) return blob; // size unknown from the header: kept as is
  const scale = Math.min(1, Math.sqrt(HUGE_PIXELS / pixels));
  const width = Math.max(1, Math.round(kind.width * scale));
  const height = Math.max(1, Math.round(kind.height * scale));
  const bitmap = await createImageBitmap(blob, { resizeWidth: width, resizeHeight: height, resizeQuality: 'high',
    imageOrientation: 'from-image' });
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bitmap, 0, 0);
    return await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.9 });
  } finally {
    bitmap.close();
  }
}

/**
 * What a save writes, from the page's project (web/src/project.js) and its head.
 * @param {object} project {classes, examples: [{id, label, role, name, src}], features: Map, featureSize}
 * @param {{backboneKey: string, head?: {artifacts, labels, hyper}|null}} extra
 */
export function snapshotOf(project, { backboneKey, head = null }) {
  return {
    classes: [...project.classes],
    examples: project.examples.map((e) => ({ id: e.id, label: e.label, role: e.role, name: e.name, src: e.src })),
    features: project.features,
    featureSize: project.featureSize,
    // how the roles were made, for the train summary (project.js)
    flags: { rolesFromBuild: Boolean(project.rolesFromBuild), heldOutInPage: Boolean(project.heldOutInPage) },
    backboneKey,
    head,
  };
}

function describe(error) {
  if (!error) return 'the transaction was aborted';
  if (error.name === 'QuotaExceededError') return 'the browser refused the space (quota exceeded: storage is full)';
  return `${error.name && error.name !== 'Error' ? `${error.name}: ` : ''}${error.message || error}`;
}

export class Store {
  constructor(db, { IDBKeyRange, migrations = MIGRATIONS, prepareImage = shrinkHugeImage } = {}) {
    this.db = db;
    this.IDBKeyRange = IDBKeyRange;
    this.migrations = migrations;
    this.prepareImage = prepareImage;
  }

  /**
   * Runs body(stores) in one transaction and resolves when it has committed; any error
   * aborts it (nothing it wrote is kept) and rejects with that error.
   */
  transaction(mode, names, body) {
    return new Promise((resolve, reject) => {
      let tx;
      try {
        tx = this.db.transaction(names, mode);
      } catch (e) {
        reject(e);
        return;
      }
      let failure = null;
      let result;
      tx.oncomplete = () => resolve(result);
      tx.onabort = () => reject(failure || tx.error || new DOMException('the transaction was aborted', 'AbortError'));
      const stores = Object.fromEntries(names.map((n) => [n, tx.objectStore(n)]));
      Promise.resolve().then(() => body(stores, tx)).then((r) => { result = r; }, (e) => {
        failure = failure || e;
        try { tx.abort(); } catch { /* already finished: onabort has the reason */ }
      });
    });
  }

  /** The saved projects: [{name, savedAt, classes, examples}] by name. */
  async list() {
    const records = await this.transaction('readonly', [PROJECTS], (s) => request(s[PROJECTS].getAll()));
    return records.map((r) => ({ name: r.name, savedAt: r.savedAt, format: r.format,
      classes: (r.classes || r.labels || []).length, examples: (r.examples || []).length }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The name of the project last saved or opened, or null. */
  async lastUsed() {
    return (await this.transaction('readonly', [META], (s) => request(s[META].get('last')))) || null;
  }

  async setLastUsed(name) {
    await this.transaction('readwrite', [META], (s) => { s[META].put(name, 'last'); });
  }

  /**
   * Saves the snapshot (snapshotOf) as project `name` in one transaction: only images and
   * features not saved yet are written, those of removed examples deleted. On failure the
   * previous save of `name` is intact and a StoreError says what failed.
   * @returns {Promise<{images: number, features: number, ms: number}>} what was written
   */
  async save(name, snap) {
    const started = Date.now();
    const range = projectRange(this.IDBKeyRange, name);
    try {
      // Images are prepared (read, re-encoded when huge) before the transaction: it must not
      // wait on anything but its own requests, or it commits early.
      const savedIds = new Set(await this.transaction('readonly', [IMAGES], (s) => request(s[IMAGES].getAllKeys(range)))
        .then((keys) => keys.map((k) => k[1])));
      const fresh = new Map();
      for (const e of snap.examples) {
        if (typeof e.src !== 'string' && !savedIds.has(e.id)) fresh.set(e.id, await this.prepareImage(e.src));
      }
      return await this.transaction('readwrite', ALL, async (s) => {
        const old = await request(s[PROJECTS].get(name));
        const [imageKeys, featureKeys] = await Promise.all([
          request(s[IMAGES].getAllKeys(range)), request(s[FEATURES].getAllKeys(range))]);
        const ids = new Set(snap.examples.map((e) => e.id));
        const haveImage = new Set(imageKeys.map((k) => k[1]));
        for (const key of imageKeys) if (!ids.has(key[1])) s[IMAGES].delete(key);
        let images = 0;
        for (const e of snap.examples) {
          if (typeof e.src === 'string' || haveImage.has(e.id)) continue;
          const blob = fresh.get(e.id);
          if (!blob) throw new Error(`example ${e.id}: its image was saved meanwhile by another save; save again`);
          s[IMAGES].put({ id: e.id, blob }, [name, e.id]);
          images += 1;
        }
        const sameBackbone = old && old.backboneKey === snap.backboneKey;
        const haveFeatures = new Set(sameBackbone ? featureKeys.map((k) => k[1]) : []);
        for (const key of featureKeys) if (!ids.has(key[1]) || !sameBackbone) s[FEATURES].delete(key);
        let features = 0;
        for (const e of snap.examples) {
          const f = snap.features && snap.features.get(e.id);
          if (!f || haveFeatures.has(e.id)) continue;
          const data = f.buffer.byteLength === f.byteLength ? f.buffer : f.slice().buffer;
          s[FEATURES].put({ id: e.id, backboneKey: snap.backboneKey, data }, [name, e.id]);
          features += 1;
        }
        s[PROJECTS].put({
          name, format: FORMAT, savedAt: new Date().toISOString(),
          classes: [...snap.classes],
          examples: snap.examples.map((e) => ({ id: e.id, label: e.label, role: e.role, name: e.name,
            ...(typeof e.src === 'string' ? { src: e.src } : {}) })),
          backboneKey: snap.backboneKey, featureSize: snap.featureSize ?? null, flags: snap.flags || {},
          head: snap.head ? { ...snap.head, backboneKey: snap.backboneKey } : null,
        });
        s[META].put(name, 'last');
        return { images, features, ms: Date.now() - started };
      });
    } catch (e) {
      if (e instanceof StoreError) throw e;
      const error = new StoreError(`Could not save project ${name}: ${describe(e)}. The previous save is kept.`);
      error.cause = e;
      throw error;
    }
  }

  /**
   * The saved project `name`, or null: {name, classes, examples (src a Blob, or the saved URL),
   * features: Map(id -> Float32Array), featureSize, head: {artifacts, labels, hyper}|null,
   * dropped: {features, head}}. Features and head of another backbone than `backboneKey` are
   * left out (counted in dropped).
   */
  async load(name, { backboneKey }) {
    const range = projectRange(this.IDBKeyRange, name);
    const [raw, images, feats] = await this.transaction('readonly', [PROJECTS, IMAGES, FEATURES], (s) => Promise.all([
      request(s[PROJECTS].get(name)), request(s[IMAGES].getAll(range)), request(s[FEATURES].getAll(range))]));
    if (!raw) return null;
    const record = migrate(raw, this.migrations);
    const blobs = new Map(images.map((r) => [r.id, r.blob]));
    const missing = record.examples.filter((e) => e.src == null && !blobs.has(e.id));
    if (missing.length) throw new StoreError(`project ${name} is damaged: no image for ${missing.map((e) => e.id).join(', ')}`);
    const features = new Map();
    let dropped = 0;
    for (const f of feats) {
      if (f.backboneKey === backboneKey) features.set(f.id, new Float32Array(f.data));
      else dropped += 1;
    }
    const head = record.head && record.head.backboneKey === backboneKey ? record.head : null;
    return {
      name,
      classes: record.classes,
      examples: record.examples.map((e) => ({ ...e, src: e.src != null ? e.src : blobs.get(e.id) })),
      features,
      featureSize: features.size ? record.featureSize : null,
      flags: record.flags || {},
      head,
      dropped: { features: dropped, head: Boolean(record.head && !head) },
    };
  }

  /** Deletes project `name` (its record, images and features) in one transaction. */
  async remove(name) {
    const range = projectRange(this.IDBKeyRange, name);
    await this.transaction('readwrite', ALL, async (s) => {
      s[PROJECTS].delete(name);
      s[IMAGES].delete(range);
      s[FEATURES].delete(range);
      if ((await request(s[META].get('last'))) === name) s[META].delete('last');
    });
  }

  /** Renames project `from` to `to` (refused if `to` exists) in one transaction. */
  async rename(from, to) {
    if (from === to) return;
    const src = projectRange(this.IDBKeyRange, from);
    try {
      await this.transaction('readwrite', ALL, async (s) => {
        const [record, taken, images, feats] = await Promise.all([request(s[PROJECTS].get(from)),
          request(s[PROJECTS].get(to)), request(s[IMAGES].getAll(src)), request(s[FEATURES].getAll(src))]);
        if (!record) throw new StoreError(`there is no project ${from}`);
        if (taken) throw new StoreError(`a project named ${to} exists already`);
        s[PROJECTS].put({ ...record, name: to });
        for (const r of images) s[IMAGES].put(r, [to, r.id]);
        for (const r of feats) s[FEATURES].put(r, [to, r.id]);
        s[PROJECTS].delete(from);
        s[IMAGES].delete(src);
        s[FEATURES].delete(src);
        s[META].put(to, 'last');
      });
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError(`Could not rename project ${from}: ${describe(e)}`);
    }
  }

  close() {
    this.db.close();
  }
}

/** Opens (creating on first use) the page's database. */
export async function openStore({ indexedDB = globalThis.indexedDB, IDBKeyRange = globalThis.IDBKeyRange,
  name = DB_NAME, ...options } = {}) {
  if (!indexedDB) throw new StoreError('this browser has no IndexedDB (private mode?): projects cannot be kept');
  const req = indexedDB.open(name, DB_VERSION);
  req.onupgradeneeded = () => {
    const db = req.result;
    if (!db.objectStoreNames.contains(PROJECTS)) db.createObjectStore(PROJECTS, { keyPath: 'name' });
    if (!db.objectStoreNames.contains(IMAGES)) db.createObjectStore(IMAGES);
    if (!db.objectStoreNames.contains(FEATURES)) db.createObjectStore(FEATURES);
    if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
  };
  let db;
  try {
    db = await request(req);
  } catch (e) {
    throw new StoreError(`could not open the page's storage: ${describe(e)}`);
  }
  return new Store(db, { IDBKeyRange, ...options });
}

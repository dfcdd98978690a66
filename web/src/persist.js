// Keeps the page's project across visits and takes it out and back in: restores the last
// used project on start, saves after each change (debounced, one save at a time, none while
// images are being added) and after training, switches, creates, renames and deletes named
// projects, exports the project zip and imports one (or a folder) as a new named project.
// The storage is store.js, the zip projectzip.js, the DOM ui-store.js; main.js hands in the
// app through `app` below.
import { Project } from './project.js';
import { StoreError, backboneKeyOf, headArtifacts, headLoader, openStore, snapshotOf } from './store.js';
import * as view from './ui-store.js';

const SAVE_DELAY_MS = 600; // edits within this time are saved together
const DEFAULT_NAME = 'My project';

/** A name not in `taken`: name, name (2), name (3)… */
function freeName(name, taken) {
  if (!taken.includes(name)) return name;
  for (let n = 2; ; n++) if (!taken.includes(`${name} (${n})`)) return `${name} (${n})`;
}

/**
 * @param {object} app what main.js lends: {tf, manifest, backboneKey (optional: the backbone's
 *   fingerprint; default backboneKeyOf(manifest)), project() -> Project,
 *   setProject(project) (shows it), siteProject() -> Promise<Project|null> (the served dataset's),
 *   head() -> {model, labels, hyper}|null (the head trained in the page for this project),
 *   setHead({model, labels, hyper}|null), busy() -> true while images are being added (the
 *   autosave waits for them), message(text, kind), saveBlob(blob, fileName)}
 */
export async function startPersistence(app) {
  const backboneKey = app.backboneKey || backboneKeyOf(app.manifest);
  const stats = { restoreMs: null, restoredExamples: 0, restoredFeatures: 0, saves: 0, lastSave: null,
    lastError: null, exportBytes: null };
  let store = null;
  let current = null; // the open project's name
  let timer = null;
  let chain = Promise.resolve();
  let dirty = false;

  async function refreshList() {
    view.showProjects(store ? await store.list() : [], current);
  }

  /** Saves the open project now (after any save under way); resolves to true if it was kept. */
  function saveNow() {
    clearTimeout(timer);
    timer = null;
    const run = async () => {
      if (!store || !app.project()) return false;
      dirty = false;
      view.setSaveStatus('saving', `Saving ${current}…`);
      try {
        const project = app.project();
        project.backboneKey = backboneKey;
        const trained = app.head();
        const head = trained ? { artifacts: await headArtifacts(app.tf, trained.model), labels: trained.labels,
          hyper: trained.hyper || null } : null;
        const wrote = await store.save(current, snapshotOf(project, { backboneKey, head }));
        stats.saves += 1;
        stats.lastSave = wrote;
        stats.lastError = null;
        view.setSaveStatus('saved', `Saved ${current} in this browser at ${new Date().toLocaleTimeString()} `
          + `(${project.examples.length} examples, ${project.classes.length} classes).`);
        await refreshList();
        return true;
      } catch (e) {
        dirty = true;
        stats.lastError = e.message;
        view.setSaveStatus('error', e instanceof StoreError ? e.message : `Could not save ${current}: ${e.message}`);
        return false;
      }
    };
    chain = chain.then(run, run);
    return chain;
  }

  /** After any edit or training: save soon. */
  function changed() {
    if (!store) return;
    dirty = true;
    view.setSaveStatus('pending', `Unsaved changes to ${current}…`);
    later();
  }

  /** The autosave, SAVE_DELAY_MS from now; put off while images are being added (half a class is no save). */
  function later() {
    clearTimeout(timer);
    timer = setTimeout(() => (app.busy && app.busy() ? later() : saveNow()), SAVE_DELAY_MS);
  }

  /** Opens saved project `name` in the page; features of this backbone come back with it. */
  async function open(name) {
    const started = performance.now();
    const saved = await store.load(name, { backboneKey });
    if (!saved) throw new StoreError(`there is no saved project ${name}`);
    const project = new Project({ classes: saved.classes, examples: saved.examples,
      rolesFromBuild: Boolean(saved.flags.rolesFromBuild) });
    project.heldOutInPage = Boolean(saved.flags.heldOutInPage);
    project.backboneKey = backboneKey;
    for (const [id, f] of saved.features) project.features.set(id, f);
    project.featureSize = saved.featureSize;
    let head = null;
    if (saved.head) {
      const model = await app.tf.loadLayersModel(headLoader(saved.head.artifacts));
      head = { model, labels: saved.head.labels, hyper: saved.head.hyper };
    }
    current = name;
    app.setProject(project);
    app.setHead(head);
    await store.setLastUsed(name);
    stats.restoreMs = performance.now() - started;
    stats.restoredExamples = project.examples.length;
    stats.restoredFeatures = saved.features.size;
    const redo = saved.dropped.features ? ` (${saved.dropped.features} features were made by another backbone and will be recomputed)` : '';
    view.setSaveStatus('saved', `Opened ${name}: ${project.examples.length} examples in ${project.classes.length} classes${redo}.`);
    await refreshList();
  }

  /** Runs an action from the section, reporting its failure in the page. */
  const guarded = (what, action) => async (...args) => {
    if (dirty) await saveNow();
    view.setEnabled(false);
    try {
      await action(...args);
    } catch (e) {
      view.setSaveStatus('error', `${what} failed: ${e.message}`);
    } finally {
      view.setEnabled(Boolean(store));
    }
  };

  async function names() {
    return (await store.list()).map((p) => p.name);
  }

  const handlers = {
    onSelect: guarded('Opening the project', async (name) => {
      if (name !== current) await open(name);
    }),
    onNew: guarded('Creating the project', async (wanted) => {
      current = freeName(wanted || DEFAULT_NAME, await names());
      const project = new Project({ classes: [] });
      project.backboneKey = backboneKey;
      app.setProject(project);
      app.setHead(null);
      await saveNow();
    }),
    onRename: guarded('Renaming the project', async (wanted) => {
      if (!wanted) throw new Error('type the new name first');
      const taken = await names();
      if (taken.includes(wanted)) throw new Error(`a project named ${wanted} exists already`);
      if (taken.includes(current)) await store.rename(current, wanted);
      current = wanted;
      await saveNow();
    }),
    onDelete: guarded('Deleting the project', async () => {
      await store.remove(current);
      const left = await names();
      if (left.length) {
        await open(left[0]);
      } else {
        current = DEFAULT_NAME;
        app.setProject(await app.siteProject());
        app.setHead(null);
        view.setSaveStatus('saved', 'Project deleted; the served dataset is open (not saved until you change it).');
        await refreshList();
      }
    }),
    onExport: guarded('Export', async () => {
      const { exportProjectZip } = await import('./projectzip.js');
      const project = app.project();
      view.setSaveStatus('saving', `Writing ${current}.zip…`);
      const { blob } = await exportProjectZip({ name: current, classes: project.classes, examples: project.examples });
      stats.exportBytes = blob.size;
      app.saveBlob(blob, `${current.replace(/[^\w .-]+/g, '_') || 'project'}.zip`);
      view.setSaveStatus('saved', `Exported ${current}: ${project.examples.length} images, ${(blob.size / 1e6).toFixed(1)} MB.`);
    }),
    onImport: guarded('Import', async (files) => {
      const { importProject } = await import('./projectzip.js');
      view.showImportNotes([]);
      view.setSaveStatus('saving', 'Reading the project…');
      const read = await importProject(files);
      current = freeName(read.name || DEFAULT_NAME, await names());
      const project = new Project({ classes: read.classes, examples: read.examples });
      project.backboneKey = backboneKey;
      app.setProject(project);
      app.setHead(null);
      view.showImportNotes(read.messages);
      if (await saveNow()) {
        const skipped = read.messages.length ? `; ${read.messages.length} entries skipped (listed below)` : '';
        view.setSaveStatus('saved', `Imported ${current}: ${project.examples.length} images in ${project.classes.length} classes${skipped}.`);
      }
    }),
  };
  view.bindStore(handlers);

  try {
    store = await openStore();
  } catch (e) {
    view.setSaveStatus('off', `Projects cannot be kept in this browser: ${e.message}`);
    return { changed() {}, saveNow: async () => false, stats, current: () => null };
  }
  const last = await store.lastUsed();
  current = DEFAULT_NAME;
  if (last) {
    try {
      await open(last);
    } catch (e) {
      current = freeName(DEFAULT_NAME, await names());
      view.setSaveStatus('error', `Could not open the saved project ${last}: ${e.message}`);
    }
  } else {
    view.setSaveStatus('saved', 'The served dataset is open; it is saved in this browser once you change it.');
  }
  await refreshList();
  view.setEnabled(true);
  window.addEventListener('pagehide', () => { if (dirty) saveNow(); });
  return { changed, saveNow, stats, current: () => current, open };
}

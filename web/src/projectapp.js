// The project's part of the app: what the project's controls do (ui-project.js hands them
// here), adding examples with their features one class at a time, the backbone fingerprint
// that keys stored features, and the change hook the rest of the app listens to.
import { addWithFeatures, skippedText } from './examples.js';
import { Project, trainSummary } from './project.js';
import * as view from './ui-project.js';

/**
 * Images per backbone call while adding: one, so that each main-thread task is one image's
 * decode and backbone run (the backbone runs on the main thread; two images took twice as long).
 */
export const ADD_BATCH = 1;

/** Images per backbone call in the TF.js worker: its runs block no page task, so a call need not be one image. */
export const WORKER_ADD_BATCH = 4;

/** What predicting says before the project has a head. */
export const NO_HEAD = 'No model yet: add at least 2 classes with examples, then press Train.';

/**
 * A fingerprint of the backbone's weights and of how images are fed to it (input size,
 * preprocessing): features computed under another one are not reused. A fast 64-bit hash
 * (two 32-bit lanes), for telling backbones apart, not for security.
 */
export async function backboneFingerprint(backbone, manifest) {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  const mix = (word) => {
    h1 = Math.imul(h1 ^ word, 0x85ebca6b);
    h2 = Math.imul(h2 ^ word, 0xc2b2ae35) ^ (h1 >>> 13);
  };
  const text = JSON.stringify({ input: manifest.input, preprocessing: manifest.preprocessing, shape: manifest.backbone.output_shape });
  for (let i = 0; i < text.length; i++) mix(text.charCodeAt(i));
  for (const weight of backbone.weights) {
    const values = await weight.read().data(); // a copy: the variable itself stays
    const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < words.length; i++) mix(words[i]);
    mix(words.length);
  }
  const hex = (n) => (n >>> 0).toString(16).padStart(8, '0');
  return `${manifest.backbone.name || 'backbone'}:${hex(h1)}${hex(h2)}`;
}

/**
 * @param {object} opts {tf, app (manifest, backbone, project, training, ready, timings, tfWorker: a
 *   promise of the TF.js worker or null),
 *   ui (showMessage, setTrainSummary), onChanged() (main.js' onProjectChanged), onSelected() (the
 *   class list's selection may have changed: the webcam records to it), loadSiteProject()
 *   (the served dataset as a Project, or null), refreshControls()}
 */
export function createProjectApp({ tf, app, ui, onChanged, onSelected = () => {}, loadSiteProject, refreshControls }) {
  let key = null;
  let queue = Promise.resolve();
  let adding = 0;

  /** After any edit: the class list and train summary say what the project now is. */
  function refresh() {
    view.showClasses(app.project);
    onSelected();
    if (app.project) ui.setTrainSummary(trainSummary(app.project, app.manifest.training.hyperparameters));
  }

  function report(error) {
    ui.showMessage(error.message || String(error));
  }

  /** Makes `project` the page's project (features of another backbone are dropped). */
  function adopt(project) {
    app.project = project;
    if (key != null) project.useBackbone(key);
    view.showProject(project, null);
    refresh();
  }

  async function addNow(label, items) {
    const project = app.project;
    if (!project || !project.classes.includes(label)) throw new Error(`there is no class "${label}" to add images to`);
    adding++;
    refreshControls();
    const started = performance.now();
    try {
      const worker = await app.tfWorker; // the TF.js worker, or null (then here)
      const { added, skipped } = await addWithFeatures({
        tf, manifest: app.manifest, backbone: app.backbone, project, label, items, worker,
        batchSize: worker ? WORKER_ADD_BATCH : ADD_BATCH,
        onProgress: (done, total) => {
          view.setProjectProgress(`Adding images to "${label}": ${done}/${total}`);
          view.showClasses(project);
        },
        shouldStop: () => app.project !== project,
        // thumbnails batch by batch: hundreds at once at the end were a long task of their own
        onAdded: (examples) => { if (app.project === project) view.appendThumbs(project, examples); },
      });
      app.timings.addMs = performance.now() - started;
      app.timings.addCount = added.length;
      // every decode that feeds the backbone is counted (main.js' loadPixels counts the others)
      app.timings.examplesDecoded = (app.timings.examplesDecoded || 0) + added.length;
      view.setProjectProgress(`Added ${added.length} image${added.length === 1 ? '' : 's'} to "${label}" `
        + `in ${(app.timings.addMs / 1000).toFixed(1)} s (features included).`);
      if (skipped.length) ui.showMessage(skippedText(skipped));
      onChanged();
      return { added, skipped };
    } finally {
      adding--;
      refreshControls();
    }
  }

  /**
   * The contract's addExamples(label, [{blob, name}]): adds to an existing class (creating
   * nothing else), features computed on add; one call at a time, in call order.
   * @returns {Promise<{added: object[], skipped: {name, reason}[]}>}
   */
  function addExamples(label, items) {
    const run = queue.then(() => addNow(label, items));
    queue = run.catch(() => {});
    return run;
  }

  /** Files grouped by class (a folder's classes are created first); null: the selected class, none yet. */
  async function onAddGroups(groups, hidden) {
    if (!app.project) return;
    const notes = [];
    const todo = [];
    for (const [label, items] of groups) {
      if (label == null) {
        notes.push(`Add a class first: ${items.length} image${items.length === 1 ? '' : 's'} had no class to go to.`);
        continue;
      }
      try {
        if (!app.project.classes.includes(label)) app.project.addClass(label);
        todo.push([label.trim(), items]);
      } catch (e) {
        notes.push(`Folder "${label}" skipped: ${e.message}.`);
      }
    }
    if (todo.length && view.selectedClass() == null) view.showClasses(app.project, todo[0][0]);
    refresh();
    const skipped = [];
    for (const [label, items] of todo) {
      try {
        skipped.push(...(await addExamples(label, items)).skipped);
      } catch (e) {
        notes.push(e.message);
      }
    }
    if (hidden) notes.push(`${hidden} hidden file${hidden === 1 ? '' : 's'} ignored.`);
    const text = [skippedText(skipped), ...notes].filter(Boolean).join(' ');
    if (text) ui.showMessage(text);
  }

  /**
   * Runs an edit of the project; a refused one is shown, not thrown. Edits of classes wait
   * for images being added (they go to a class by name).
   */
  function edit(fn, { gallery = false, classes = true } = {}) {
    if (!app.project || app.training) return;
    if (classes && adding) {
      ui.showMessage('Images are still being added: edit the classes once they are in.');
      view.showClasses(app.project);
      return;
    }
    try {
      fn(app.project);
    } catch (e) {
      report(e);
      view.showClasses(app.project);
      return;
    }
    if (gallery) view.showGallery(app.project);
    refresh();
    onChanged();
  }

  const handlers = {
    onAddGroups,
    onAddClass: (name) => edit((p) => {
      const added = p.addClass(name);
      view.showClasses(p, added);
      view.clearNewClassName();
      ui.showMessage('');
    }, { classes: false }),
    onSelectClass: (name) => {
      view.showClasses(app.project, name);
      onSelected();
    },
    onRenameClass: (from, to) => edit((p) => {
      const wasSelected = view.selectedClass() === from;
      const renamed = p.renameClass(from, to);
      view.showClasses(p, wasSelected ? renamed : view.selectedClass());
    }, { gallery: true }),
    onDeleteClass: (name) => edit((p) => p.deleteClass(name), { gallery: true }),
    onRemoveExample: (id) => edit((p) => p.removeExample(id), { gallery: true, classes: false }),
    onClear: () => edit((p) => p.clear(), { gallery: true }),
    onStartEmpty: () => {
      if (app.training) return; // an add under way stops: its project is no longer the page's
      adopt(new Project({ backboneKey: key }));
      onChanged();
    },
    onStartFromSite: async () => {
      if (app.training) return;
      try {
        const project = await loadSiteProject();
        if (project) {
          adopt(project);
          onChanged();
        }
      } catch (e) {
        report(e);
      }
    },
  };

  return {
    handlers,
    adopt,
    refresh,
    addExamples,
    selectedClass: view.selectedClass,
    /** Computes the backbone's fingerprint (once the backbone is loaded). */
    async useBackbone(backbone, manifest) {
      key = await backboneFingerprint(backbone, manifest);
      if (app.project) app.project.useBackbone(key);
      return key;
    },
    get backboneKey() {
      return key;
    },
    get adding() {
      return adding > 0;
    },
  };
}

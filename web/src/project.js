// The page's dataset: ordered classes, examples (where each one's pixels come from and
// its role) and the backbone features computed for them, so that every training run
// reuses them. Plain data, no DOM and no tensors: Node tests it, the page edits it (classes
// added, renamed, deleted; examples added and removed) and persists it. It starts from the
// served dataset (projectFromSite) or empty.

import { packSlices } from './packs.js';

/** train: the head learns from it; valid: scored after each epoch; test: never trained on. */
export const ROLES = ['train', 'valid', 'test'];

/** The longest class name: a class name is also a folder name in an exported project. */
export const MAX_CLASS_NAME = 100;

/** The share of each class's page-added examples held out (role 'valid'). */
export const HELD_OUT = 0.15;

/**
 * A class name as the project keeps it: trimmed, non-empty, at most MAX_CLASS_NAME characters.
 * @throws {Error} naming what is wrong with it
 */
export function className(name) {
  const trimmed = String(name == null ? '' : name).trim();
  if (!trimmed) throw new Error('a class name cannot be empty');
  if (trimmed.length > MAX_CLASS_NAME) {
    throw new Error(`class name "${trimmed.slice(0, 20)}…" is ${trimmed.length} characters; at most ${MAX_CLASS_NAME}`);
  }
  return trimmed;
}

/**
 * The role of the n-th example (0-based) added to a class in the page: about HELD_OUT of
 * each class is held out, always the same ones, the first as soon as a class has 4 (so a
 * class of 2 or 3 still trains on every example).
 */
export function heldOutRole(n) {
  return Math.floor((n + 4) * HELD_OUT) > Math.floor((n + 3) * HELD_OUT) ? 'valid' : 'train';
}

/**
 * @typedef {object} Example
 * @property {string} id unique within the project (a served image's path)
 * @property {string} label its class name
 * @property {string|Blob} src where its pixels come from: a URL, or a Blob
 * @property {'train'|'valid'|'test'} role
 * @property {string} name what to call it in the page (the original file name)
 * @property {object} [pack] a served image's slice of a packed shard (packs.js packSlices)
 */

export class Project {
  /**
   * @param {{classes: string[], examples?: Example[], rolesFromBuild?: boolean}} init
   *   rolesFromBuild: the roles are the split the Python build trained with (else the folders')
   *   backboneKey: the fingerprint of the backbone whose features the project keeps
   */
  constructor({ classes = [], examples = [], rolesFromBuild = false, backboneKey = null } = {}) {
    if (new Set(classes).size !== classes.length) throw new Error(`duplicate class names: ${classes.join(', ')}`);
    this.classes = [...classes];
    this.examples = [];
    this.byId = new Map(); // example id -> example
    this.rolesFromBuild = rolesFromBuild;
    this.heldOutInPage = false; // some examples were added in the page, held out by heldOutRole
    this.features = new Map(); // example id -> Float32Array, computed once
    this.featureSize = null;
    this.backboneKey = backboneKey;
    this.nextId = 1;
    for (const example of examples) this.addExample(example);
  }

  addExample(example) {
    if (!this.classes.includes(example.label)) throw new Error(`example ${example.id}: unknown class ${JSON.stringify(example.label)}`);
    if (!ROLES.includes(example.role)) throw new Error(`example ${example.id}: role ${JSON.stringify(example.role)}, expected ${ROLES.join(', ')}`);
    if (this.byId.has(example.id)) throw new Error(`example ${example.id} is already in the project`);
    const kept = { ...example };
    this.examples.push(kept);
    this.byId.set(kept.id, kept);
    return kept;
  }

  /**
   * An example added in the page (a file, a pasted or recorded image): a fresh id, and the
   * role heldOutRole gives the class's next example.
   * @param {string} label an existing class
   * @param {{src: string|Blob, name: string}} item
   * @returns {Example} the example as the project keeps it
   */
  addNew(label, { src, name }) {
    if (!this.classes.includes(label)) throw new Error(`there is no class "${label}" to add ${name} to`);
    let n = this.examples.filter((e) => e.label === label).length;
    while (this.byId.has(`page-${this.nextId}`)) this.nextId++;
    this.heldOutInPage = true;
    return this.addExample({ id: `page-${this.nextId++}`, label, src, role: heldOutRole(n++), name });
  }

  /** Adds a class at the end of the class order; returns its (trimmed) name. */
  addClass(name) {
    const kept = className(name);
    if (this.classes.includes(kept)) throw new Error(`there is already a class "${kept}"`);
    this.classes.push(kept);
    return kept;
  }

  /** Renames a class in place (same position, same examples); returns the new name. */
  renameClass(from, to) {
    const i = this.classIndex(from);
    const kept = className(to);
    if (kept === from) return kept;
    if (this.classes.includes(kept)) throw new Error(`there is already a class "${kept}"`);
    this.classes[i] = kept;
    for (const e of this.examples) if (e.label === from) e.label = kept;
    return kept;
  }

  /** Deletes a class with its examples and their features; returns the examples removed. */
  deleteClass(name) {
    const i = this.classIndex(name);
    this.classes.splice(i, 1);
    const removed = this.examples.filter((e) => e.label === name);
    this.examples = this.examples.filter((e) => e.label !== name);
    for (const e of removed) this.forget(e.id);
    return removed;
  }

  /** Removes one example and its features; returns it. */
  removeExample(id) {
    const example = this.byId.get(id);
    if (!example) throw new Error(`there is no example ${id} in the project`);
    this.examples.splice(this.examples.indexOf(example), 1);
    this.forget(id);
    return example;
  }

  /** Removes every class and example (the backbone key stays: it is the page's). */
  clear() {
    const removed = this.examples;
    this.classes = [];
    this.examples = [];
    this.byId.clear();
    this.features.clear();
    this.featureSize = null;
    this.rolesFromBuild = false;
    this.heldOutInPage = false;
    return removed;
  }

  /** The example with this id, or undefined. */
  example(id) {
    return this.byId.get(id);
  }

  classIndex(name) {
    const i = this.classes.indexOf(name);
    if (i < 0) throw new Error(`there is no class "${name}"`);
    return i;
  }

  forget(id) {
    this.byId.delete(id);
    this.features.delete(id);
  }

  /**
   * Why the project cannot train yet, as the page says it (naming the class), or null.
   * Each class needs at least 2 examples, at least one of them a training one.
   */
  trainingProblems() {
    if (this.classes.length < 2) {
      const have = this.classes.length ? ` (it has only "${this.classes[0]}")` : '';
      return `Add at least 2 classes to train${have}.`;
    }
    for (const [label, examples] of this.byClass()) {
      if (examples.length < 2) {
        return `Class "${label}" has ${examples.length} example${examples.length === 1 ? '' : 's'}: `
          + 'each class needs at least 2.';
      }
      if (!examples.some((e) => e.role === 'train')) return `Class "${label}" has no training examples (all are held out).`;
    }
    return null;
  }

  /**
   * Sets the fingerprint of the backbone the features are computed with. Features kept
   * under another (or no) fingerprint are dropped: they are recomputed when needed.
   * @returns {number} how many examples' features were dropped
   */
  useBackbone(key) {
    if (key === this.backboneKey) return 0;
    const dropped = this.features.size;
    this.features.clear();
    this.featureSize = null;
    this.backboneKey = key;
    return dropped;
  }

  /** Examples with this role, in project order. */
  withRole(role) {
    return this.examples.filter((e) => e.role === role);
  }

  /** Map(class name -> its examples), in class order. */
  byClass() {
    const groups = new Map(this.classes.map((c) => [c, []]));
    for (const e of this.examples) groups.get(e.label).push(e);
    return groups;
  }

  /** How many examples of each class have this role: [[class, count], ...] in class order. */
  countsOf(role) {
    return [...this.byClass()].map(([c, examples]) => [c, examples.filter((e) => e.role === role).length]);
  }

  /**
   * What training needs: the train examples then the valid ones (test never), the class
   * index of each, and which of these rows train and which validate.
   * @returns {{items: Example[], labelIndex: number[], split: {train: number[], valid: number[]}}}
   */
  trainingSet() {
    const train = this.withRole('train');
    const valid = this.withRole('valid');
    const items = [...train, ...valid];
    return {
      items,
      labelIndex: items.map((e) => this.classes.indexOf(e.label)),
      split: { train: train.map((_, i) => i), valid: valid.map((_, i) => train.length + i) },
    };
  }

  /** The examples whose features are not computed yet. */
  withoutFeatures(examples) {
    return examples.filter((e) => !this.features.has(e.id));
  }

  /**
   * Keeps each example's features: row i of feats ({data, count, size}) belongs to examples[i].
   * Examples removed meanwhile (features arrive after an await) are skipped.
   */
  storeFeatures(examples, feats) {
    if (feats.count !== examples.length) throw new Error(`${feats.count} feature rows for ${examples.length} examples`);
    if (this.featureSize != null && feats.size !== this.featureSize) {
      throw new Error(`features of size ${feats.size}, the project's are ${this.featureSize}`);
    }
    this.featureSize = feats.size;
    examples.forEach((e, i) => {
      if (this.byId.get(e.id) === e) this.features.set(e.id, feats.data.slice(i * feats.size, (i + 1) * feats.size));
    });
  }

  /** The stored features of these examples as one block, row i = examples[i], as trainHead takes them. */
  featureRows(examples) {
    const size = this.featureSize;
    const data = new Float32Array(examples.length * (size || 0));
    examples.forEach((e, i) => {
      const f = this.features.get(e.id);
      if (!f) throw new Error(`example ${e.id} has no features yet`);
      data.set(f, i * size);
    });
    return { data, count: examples.length, size };
  }
}

/** The role of a served image: the build's when images.json records it, else its folder's. */
function roleOf(entry) {
  if (entry.role != null) return entry.role;
  return entry.split === 'valid' || entry.split === 'test' ? entry.split : 'train';
}

/**
 * The project of the served dataset: the manifest's classes and the images.json entries of
 * those classes, each image's src its URL resolved against the page and, when the site packs
 * its images, its `pack` slice (packs.js: what the feature extraction reads).
 * @param {string[]} classes manifest.labels
 * @param {{path: string, label: string, split?: string, role?: string, source?: string}[]} images images.json's "images"
 * @param {string} pageUrl
 * @param {string} file the index's name, for error messages
 * @param {string[]|null} packs images.json's "packs" (null: a site without them)
 */
export function projectFromSite(classes, images, pageUrl, file = 'images.json', packs = null) {
  const known = new Set(classes);
  const served = images.filter((entry) => known.has(entry.label));
  const bad = served.find((entry) => !ROLES.includes(roleOf(entry)));
  if (bad) throw new Error(`${file}: ${bad.path} has role ${JSON.stringify(bad.role)}, expected one of ${ROLES.join(', ')}`);
  const slices = packSlices(served, packs, pageUrl, file);
  return new Project({
    classes,
    rolesFromBuild: served.length > 0 && served.every((entry) => entry.role != null),
    examples: served.map((entry, i) => ({
      id: entry.path, label: entry.label, src: new URL(entry.path, pageUrl).href, role: roleOf(entry),
      name: entry.source || entry.path, ...(slices ? { pack: slices[i] } : {}),
    })),
  });
}

/** The train summary: how many examples train and validate, per class, and how they were split. */
export function trainSummary(project, hp) {
  const train = project.withRole('train').length;
  const valid = project.withRole('valid').length;
  const test = project.withRole('test').length;
  const counts = project.countsOf('train').map(([c, n]) => `${c} ${n}`).join(', ');
  let note = 'no validation';
  if (valid && project.heldOutInPage) note = `about ${Math.round(HELD_OUT * 100)}% of each class held out`;
  else if (valid) note = project.rolesFromBuild ? "the Python build's hold-out" : 'valid/ images';
  const unused = test ? `, ${test} test images not used` : '';
  return `${train} training images (${counts}), ${valid} for validation (${note})${unused}; `
    + `optimizer ${hp.optimizer}, loss ${hp.loss}.`;
}

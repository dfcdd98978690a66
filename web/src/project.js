// The page's dataset: ordered classes, examples (where each one's pixels come from and
// its role) and the backbone features computed for them, so that every training run
// reuses them. Plain data, no DOM and no tensors: Node tests it, and the page can later
// edit and persist it. Today it is made from the served dataset (projectFromSite).

/** train: the head learns from it; valid: scored after each epoch; test: never trained on. */
export const ROLES = ['train', 'valid', 'test'];

/**
 * @typedef {object} Example
 * @property {string} id unique within the project (a served image's path)
 * @property {string} label its class name
 * @property {string|Blob} src where its pixels come from: a URL, or a Blob
 * @property {'train'|'valid'|'test'} role
 * @property {string} name what to call it in the page (the original file name)
 */

export class Project {
  /**
   * @param {{classes: string[], examples?: Example[], rolesFromBuild?: boolean}} init
   *   rolesFromBuild: the roles are the split the Python build trained with (else the folders')
   */
  constructor({ classes, examples = [], rolesFromBuild = false }) {
    if (new Set(classes).size !== classes.length) throw new Error(`duplicate class names: ${classes.join(', ')}`);
    this.classes = [...classes];
    this.examples = [];
    this.rolesFromBuild = rolesFromBuild;
    this.features = new Map(); // example id -> Float32Array, computed once
    this.featureSize = null;
    for (const example of examples) this.addExample(example);
  }

  addExample(example) {
    if (!this.classes.includes(example.label)) throw new Error(`example ${example.id}: unknown class ${JSON.stringify(example.label)}`);
    if (!ROLES.includes(example.role)) throw new Error(`example ${example.id}: role ${JSON.stringify(example.role)}, expected ${ROLES.join(', ')}`);
    if (this.examples.some((e) => e.id === example.id)) throw new Error(`example ${example.id} is already in the project`);
    this.examples.push({ ...example });
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

  /** Keeps each example's features: row i of feats ({data, count, size}) belongs to examples[i]. */
  storeFeatures(examples, feats) {
    if (feats.count !== examples.length) throw new Error(`${feats.count} feature rows for ${examples.length} examples`);
    if (this.featureSize != null && feats.size !== this.featureSize) {
      throw new Error(`features of size ${feats.size}, the project's are ${this.featureSize}`);
    }
    this.featureSize = feats.size;
    examples.forEach((e, i) => this.features.set(e.id, feats.data.slice(i * feats.size, (i + 1) * feats.size)));
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
 * those classes, each image's src its URL resolved against the page.
 * @param {string[]} classes manifest.labels
 * @param {{path: string, label: string, split?: string, role?: string, source?: string}[]} images images.json's "images"
 * @param {string} pageUrl
 * @param {string} file the index's name, for error messages
 */
export function projectFromSite(classes, images, pageUrl, file = 'images.json') {
  const known = new Set(classes);
  const served = images.filter((entry) => known.has(entry.label));
  const bad = served.find((entry) => !ROLES.includes(roleOf(entry)));
  if (bad) throw new Error(`${file}: ${bad.path} has role ${JSON.stringify(bad.role)}, expected one of ${ROLES.join(', ')}`);
  return new Project({
    classes,
    rolesFromBuild: served.length > 0 && served.every((entry) => entry.role != null),
    examples: served.map((entry) => ({
      id: entry.path, label: entry.label, src: new URL(entry.path, pageUrl).href, role: roleOf(entry),
      name: entry.source || entry.path,
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
  if (valid) note = project.rolesFromBuild ? "the Python build's hold-out" : 'valid/ images';
  const unused = test ? `, ${test} test images not used` : '';
  return `${train} training images (${counts}), ${valid} for validation (${note})${unused}; `
    + `optimizer ${hp.optimizer}, loss ${hp.loss}.`;
}

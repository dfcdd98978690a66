// web/src/project.js in Node: the served dataset as a project (classes, examples, roles),
// the rows training takes from it, and the features it keeps per example.
//   cd web && node --test test/
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HELD_OUT, MAX_CLASS_NAME, Project, heldOutRole, projectFromSite, trainSummary } from '../src/project.js';

const PAGE = 'http://example.test/site/';
const CLASSES = ['apple', 'windows'];

/** images.json entries: per class 3 train, 1 valid (hold-out), 1 test, in the build's order. */
function served({ roles = true } = {}) {
  const images = [];
  for (const label of CLASSES) {
    const k = CLASSES.indexOf(label);
    ['train', 'valid', 'train', 'test', 'train'].forEach((role, n) => {
      const split = role === 'test' ? 'test' : 'train'; // the hold-out comes from train/
      images.push({ path: `images/${k}/${split}-${n}.png`, label, split, source: `${label}${n}.jpg`,
        ...(roles ? { role } : {}) });
    });
  }
  return images;
}

describe('a project from the served dataset', () => {
  test("classes are the manifest's, examples keep images.json's order, src is the URL", () => {
    const p = projectFromSite(CLASSES, served(), PAGE);
    assert.deepEqual(p.classes, CLASSES);
    assert.equal(p.examples.length, 10);
    assert.deepEqual(p.examples[0], { id: 'images/0/train-0.png', label: 'apple', role: 'train',
      src: 'http://example.test/site/images/0/train-0.png', name: 'apple0.jpg' });
    assert.equal(p.rolesFromBuild, true);
  });

  test('roles are taken as images.json gives them', () => {
    const p = projectFromSite(CLASSES, served(), PAGE);
    assert.deepEqual(p.withRole('valid').map((e) => e.id), ['images/0/train-1.png', 'images/1/train-1.png']);
    assert.deepEqual(p.withRole('test').map((e) => e.id), ['images/0/test-3.png', 'images/1/test-3.png']);
    assert.deepEqual(p.countsOf('train'), [['apple', 3], ['windows', 3]]);
  });

  test('training rows: train then valid examples, never test, with their class index', () => {
    const set = projectFromSite(CLASSES, served(), PAGE).trainingSet();
    assert.deepEqual(set.items.map((e) => e.id), [
      'images/0/train-0.png', 'images/0/train-2.png', 'images/0/train-4.png',
      'images/1/train-0.png', 'images/1/train-2.png', 'images/1/train-4.png',
      'images/0/train-1.png', 'images/1/train-1.png']);
    assert.deepEqual(set.labelIndex, [0, 0, 0, 1, 1, 1, 0, 1]);
    assert.deepEqual(set.split, { train: [0, 1, 2, 3, 4, 5], valid: [6, 7] });
  });

  test('without roles (an older site): the folder split decides, no hold-out is made up', () => {
    const p = projectFromSite(CLASSES, served({ roles: false }), PAGE);
    assert.equal(p.rolesFromBuild, false);
    assert.equal(p.withRole('valid').length, 0);
    assert.equal(p.withRole('test').length, 2);
    assert.equal(p.withRole('train').length, 8);
    const withValid = served({ roles: false }).map((e, i) => (i === 0 ? { ...e, split: 'valid' } : e));
    const q = projectFromSite(CLASSES, withValid, PAGE);
    assert.deepEqual(q.withRole('valid').map((e) => e.id), ['images/0/train-0.png']);
    assert.deepEqual(q.trainingSet().split.valid, [7]);
    // no split at all: train
    assert.equal(projectFromSite(CLASSES, [{ path: 'a.png', label: 'apple' }], PAGE).examples[0].role, 'train');
  });

  test('images of classes the manifest does not list are left out', () => {
    const p = projectFromSite(CLASSES, [...served(), { path: 'x.png', label: 'linux', role: 'train' }], PAGE);
    assert.equal(p.examples.length, 10);
  });

  test('an unknown role is an error naming the file and the image', () => {
    const images = served().map((e, i) => (i === 2 ? { ...e, role: 'holdout' } : e));
    assert.throws(() => projectFromSite(CLASSES, images, PAGE, 'images.json'),
      /images\.json: images\/0\/train-2\.png has role "holdout", expected one of train, valid, test/);
  });
});

describe('features kept per example', () => {
  const project = () => projectFromSite(CLASSES, served(), PAGE);

  test('stored once, then no example lacks them; rows come back in the order asked', () => {
    const p = project();
    const { items } = p.trainingSet();
    assert.equal(p.withoutFeatures(items).length, 8);
    const size = 3;
    const data = Float32Array.from({ length: items.length * size }, (_, i) => i);
    p.storeFeatures(items, { data, count: items.length, size });
    assert.equal(p.withoutFeatures(items).length, 0);
    assert.ok(p.features.get(items[1].id) instanceof Float32Array);
    data.fill(-1); // the project keeps its own copies
    const rows = p.featureRows([items[2], items[0]]);
    assert.deepEqual(rows, { data: Float32Array.from([6, 7, 8, 0, 1, 2]), count: 2, size: 3 });
  });

  test('only the missing ones are left to compute', () => {
    const p = project();
    const { items } = p.trainingSet();
    p.storeFeatures(items.slice(0, 3), { data: new Float32Array(9), count: 3, size: 3 });
    assert.deepEqual(p.withoutFeatures(items), items.slice(3));
    assert.throws(() => p.featureRows(items), /example images\/1\/train-0\.png has no features yet/);
    assert.throws(() => p.storeFeatures(items.slice(3, 4), { data: new Float32Array(4), count: 1, size: 4 }),
      /features of size 4, the project's are 3/);
  });
});

describe('a project built by hand', () => {
  test('refuses duplicate classes, unknown classes and roles, duplicate ids', () => {
    assert.throws(() => new Project({ classes: ['a', 'a'] }), /duplicate class names/);
    const p = new Project({ classes: ['a', 'b'] });
    assert.throws(() => p.addExample({ id: '1', label: 'c', role: 'train', src: 'u' }), /unknown class "c"/);
    assert.throws(() => p.addExample({ id: '1', label: 'a', role: 'other', src: 'u' }), /role "other"/);
    p.addExample({ id: '1', label: 'a', role: 'train', src: 'u' });
    assert.throws(() => p.addExample({ id: '1', label: 'b', role: 'train', src: 'v' }), /already in the project/);
    assert.deepEqual([...p.byClass()].map(([c, e]) => [c, e.length]), [['a', 1], ['b', 0]]);
  });
});

describe('editing a project in the page', () => {
  const feats = (n, size = 2) => ({ data: new Float32Array(n * size).fill(1), count: n, size });

  test('an empty project; classes are added trimmed, in order, unique (case-sensitive)', () => {
    const p = new Project();
    assert.deepEqual(p.classes, []);
    assert.equal(p.examples.length, 0);
    assert.equal(p.addClass('  cats '), 'cats');
    p.addClass('Cats');
    assert.deepEqual(p.classes, ['cats', 'Cats']);
    assert.throws(() => p.addClass('cats'), /there is already a class "cats"/);
    assert.throws(() => p.addClass('   '), /a class name cannot be empty/);
    assert.throws(() => p.addClass('x'.repeat(MAX_CLASS_NAME + 1)), /is 101 characters; at most 100/);
    p.addClass('x'.repeat(MAX_CLASS_NAME));
    assert.equal(p.classes.length, 3);
  });

  test('rename keeps the position and the examples; the new name is checked', () => {
    const p = new Project({ classes: ['a', 'b'] });
    const e = p.addNew('a', { src: 'u', name: 'one.png' });
    assert.equal(p.renameClass('a', ' c '), 'c');
    assert.deepEqual(p.classes, ['c', 'b']);
    assert.equal(p.example(e.id).label, 'c');
    assert.deepEqual(p.countsOf('train'), [['c', 1], ['b', 0]]);
    assert.throws(() => p.renameClass('c', 'b'), /there is already a class "b"/);
    assert.throws(() => p.renameClass('nope', 'd'), /there is no class "nope"/);
    assert.throws(() => p.renameClass('c', ''), /cannot be empty/);
    assert.equal(p.renameClass('c', 'c'), 'c');
  });

  test('delete a class drops its examples and their features; remove one example', () => {
    const p = new Project({ classes: ['a', 'b'] });
    const a = [0, 1, 2].map((i) => p.addNew('a', { src: `a${i}`, name: `a${i}.png` }));
    const b = [0, 1].map((i) => p.addNew('b', { src: `b${i}`, name: `b${i}.png` }));
    p.storeFeatures([...a, ...b], feats(5));
    assert.equal(p.deleteClass('a').length, 3);
    assert.deepEqual(p.classes, ['b']);
    assert.equal(p.examples.length, 2);
    assert.equal(p.features.size, 2);
    assert.equal(p.example(a[0].id), undefined);
    assert.equal(p.removeExample(b[0].id).name, 'b0.png');
    assert.deepEqual(p.examples.map((e) => e.id), [b[1].id]);
    assert.equal(p.features.has(b[0].id), false);
    assert.throws(() => p.removeExample(b[0].id), /there is no example page-4/);
    assert.throws(() => p.deleteClass('a'), /there is no class "a"/);
  });

  test('clear empties it; ids stay unique after removals and restored examples', () => {
    const p = new Project({ classes: ['a'], examples: [{ id: 'page-1', label: 'a', src: 'u', role: 'train', name: 'x' }] });
    const e = p.addNew('a', { src: 'v', name: 'y' });
    assert.equal(e.id, 'page-2');
    p.removeExample('page-1');
    assert.equal(p.addNew('a', { src: 'w', name: 'z' }).id, 'page-3');
    p.storeFeatures([e], feats(1));
    assert.equal(p.clear().length, 2);
    assert.deepEqual([p.classes, p.examples, p.features.size, p.featureSize], [[], [], 0, null]);
    assert.throws(() => p.addNew('a', { src: 'v', name: 'y.png' }), /there is no class "a" to add y\.png to/);
  });

  test('features that arrive for an example removed meanwhile are not kept', () => {
    const p = new Project({ classes: ['a'] });
    const [x, y] = [p.addNew('a', { src: 'x', name: 'x' }), p.addNew('a', { src: 'y', name: 'y' })];
    p.removeExample(x.id);
    p.storeFeatures([x, y], feats(2));
    assert.deepEqual([...p.features.keys()], [y.id]);
  });

  test('about 15% of each class is held out (valid), the same examples every time', () => {
    const roles = Array.from({ length: 40 }, (_, n) => heldOutRole(n));
    assert.deepEqual(roles.slice(0, 4), ['train', 'train', 'train', 'valid']);
    const held = roles.filter((r) => r === 'valid').length;
    assert.equal(held, Math.floor(43 * HELD_OUT)); // 6 of 40
    const p = new Project({ classes: ['a', 'b'] });
    for (let i = 0; i < 40; i++) p.addNew(i % 2 ? 'b' : 'a', { src: `${i}`, name: `${i}.png` });
    assert.deepEqual(p.countsOf('valid'), [['a', 3], ['b', 3]]);
    assert.deepEqual(p.countsOf('train'), [['a', 17], ['b', 17]]);
    assert.match(trainSummary(p, { optimizer: 'adam', loss: 'categorical_crossentropy' }),
      /34 training images \(a 17, b 17\), 6 for validation \(about 15% of each class held out\)/);
    // held out = every role but train: never trained on
    assert.equal(p.trainingSet().split.valid.length, 6);
  });

  test('training is refused with a message naming the class', () => {
    const p = new Project();
    assert.equal(p.trainingProblems(), 'Add at least 2 classes to train.');
    p.addClass('cats');
    assert.equal(p.trainingProblems(), 'Add at least 2 classes to train (it has only "cats").');
    p.addClass('dogs');
    p.addNew('cats', { src: '1', name: '1' });
    p.addNew('cats', { src: '2', name: '2' });
    p.addNew('dogs', { src: '3', name: '3' });
    assert.equal(p.trainingProblems(), 'Class "dogs" has 1 example: each class needs at least 2.');
    p.addNew('dogs', { src: '4', name: '4' });
    assert.equal(p.trainingProblems(), null);
    p.addClass('birds');
    assert.equal(p.trainingProblems(), 'Class "birds" has 0 examples: each class needs at least 2.');
    p.addExample({ id: 't1', label: 'birds', src: '5', role: 'test', name: '5' });
    p.addExample({ id: 't2', label: 'birds', src: '6', role: 'valid', name: '6' });
    assert.equal(p.trainingProblems(), 'Class "birds" has no training examples (all are held out).');
  });

  test("features of another backbone are dropped; the same backbone's are kept", () => {
    const p = new Project({ classes: ['a'], backboneKey: 'k1' });
    const e = p.addNew('a', { src: 'x', name: 'x' });
    p.storeFeatures([e], feats(1));
    assert.equal(p.useBackbone('k1'), 0);
    assert.equal(p.features.size, 1);
    assert.equal(p.useBackbone('k2'), 1);
    assert.equal(p.backboneKey, 'k2');
    assert.deepEqual([p.features.size, p.featureSize], [0, null]);
    assert.deepEqual(p.withoutFeatures(p.examples), [e]);
  });
});

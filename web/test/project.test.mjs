// web/src/project.js in Node: the served dataset as a project (classes, examples, roles),
// the rows training takes from it, and the features it keeps per example.
//   cd web && node --test test/
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Project, projectFromSite } from '../src/project.js';

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

// web/src/tm.js in Node: which sites Teachable Machine can feed, the topology TF.js 1.3.1
// reads, metadata.json's fields, and the zip checks of loading an export (before TF.js).
//   cd web && node --test test/
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { strToU8, zipSync } from 'fflate';
import { forTfjs13, loadTmExport, metadata, notExpressible } from '../src/tm.js';

const MOBILENET = {
  input: { height: 224, width: 224, channels: 3 },
  preprocessing: { channel_order: 'RGB', mean: [0, 0, 0], scale: 1 / 127.5, offset: -1 },
  backbone: { name: 'mobilenet_0.25' },
  head: { recipe: 'default' },
  versions: { 'tfjs-transfer': '0.1.0' },
  fingerprint: 'abc',
};

describe('notExpressible', () => {
  test('MobileNet (224, [-1, 1]) can be a TM model', () => assert.equal(notExpressible(MOBILENET), ''));
  test('InceptionV3 (299 px) is refused with the reason', () => {
    const why = notExpressible({ ...MOBILENET, input: { height: 299, width: 299, channels: 3 }, backbone: { name: 'inception_v3' } });
    assert.match(why, /inception_v3.*299x299.*always feed 224x224/);
  });
  test('VGG16 (caffe: BGR, mean) is refused with the reason', () => {
    const why = notExpressible({ ...MOBILENET, backbone: { name: 'vgg16' },
      preprocessing: { channel_order: 'BGR', mean: [103.939, 116.779, 123.68], scale: 1, offset: 0 } });
    assert.match(why, /vgg16.*BGR.*\[-1, 1\]/);
  });
});

test('forTfjs13 renames every nested "Functional" and nothing else', () => {
  const topology = { class_name: 'Functional', config: { layers: [{ class_name: 'Functional', config: {} },
    { class_name: 'Dense', config: { name: 'Functional' } }] } };
  assert.deepEqual(forTfjs13(topology), { class_name: 'Model', config: { layers: [{ class_name: 'Model', config: {} },
    { class_name: 'Dense', config: { name: 'Functional' } }] } });
});

test('metadata has Teachable Machine\'s nine fields', () => {
  const m = metadata(MOBILENET, ['a', 'b'], 'trained in Python');
  assert.deepEqual(Object.keys(m).sort(), ['imageSize', 'labels', 'modelName', 'packageName', 'packageVersion',
    'tfjsVersion', 'timeStamp', 'tmVersion', 'userMetadata']);
  assert.equal(m.tfjsVersion, '1.3.1');
  assert.equal(m.imageSize, 224);
  assert.deepEqual(m.labels, ['a', 'b']);
});

describe('loadTmExport refuses a broken zip before loading anything', () => {
  const noTf = {}; // never reached: each zip fails its checks first
  const zipFile = (entries, name = 'x.zip') => new File([zipSync(Object.fromEntries(
    Object.entries(entries).map(([k, v]) => [k, strToU8(v)])))], name);
  const modelJson = JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['weights.bin'], weights: [] }] });
  const meta = JSON.stringify({ labels: ['a', 'b'] });
  test('an entry climbing out with ../', async () => {
    await assert.rejects(loadTmExport(noTf, [zipFile({ '../model.json': modelJson })]), /x\.zip: the entry \.\.\/model\.json points outside/);
  });
  test('no model.json', async () => {
    await assert.rejects(loadTmExport(noTf, [zipFile({ 'metadata.json': meta })]), /x\.zip has no model\.json/);
  });
  test('no weights.bin', async () => {
    await assert.rejects(loadTmExport(noTf, [zipFile({ 'model.json': modelJson, 'metadata.json': meta })]),
      /x\.zip has no weights\.bin, which model\.json names/);
  });
  test('no labels', async () => {
    await assert.rejects(loadTmExport(noTf, [zipFile({ 'model.json': modelJson, 'weights.bin': '', 'metadata.json': '{}' })]),
      /metadata\.json has no labels/);
  });
});

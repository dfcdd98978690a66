// web/src/projectzip.js in Node: the project zip round trip (class order, roles, unsafe
// class names mapped to safe folders) and hostile zips and folders built here: escaping
// entries, zip bombs (declared and lying sizes), nested zips, symlinks, non-images, a
// project.json naming missing files or unknown roles.
//   cd web && node --test test/projectzip.test.mjs
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { strToU8, unzipSync, zipSync } from 'fflate';
import { PROJECT_FORMAT, ProjectFileError, exportProjectZip, importProject, isSafeFolder } from '../src/projectzip.js';

/** A tiny PNG header (what the page sniffs), different per n. */
function png(n, extra = 8) {
  const b = new Uint8Array(33 + extra);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 4, 0, 0, 0, 4]);
  b.fill(n & 255, 33);
  return b;
}
const zipBlob = (files, name = 'p.zip') => new File([zipSync(files, { level: 6 })], name, { type: 'application/zip' });
const bytes = async (blob) => Array.from(new Uint8Array(await blob.arrayBuffer()));
const projectJson = (p) => strToU8(JSON.stringify({ format: PROJECT_FORMAT, created_by: 'test', ...p }));

function folderFile(path, data) {
  const f = new File([data], path.split('/').pop());
  Object.defineProperty(f, 'webkitRelativePath', { value: path });
  return f;
}

describe('project zip', () => {
  test('export then import: class order and names, roles, image bytes; unsafe names get safe folders', async () => {
    const classes = ['zebra', 'a/b: "c"?', 'Cat', 'cat', '..', '.hidden'];
    const examples = [];
    classes.forEach((label, k) => {
      for (let i = 0; i < 3; i++) {
        examples.push({ id: `${k}-${i}`, label, role: i === 2 ? 'valid' : 'train', name: i < 2 ? 'same.png' : `pic${i}`,
          src: new Blob([png(k * 10 + i)]) });
      }
    });
    const { blob, project } = await exportProjectZip({ name: 'My pets', classes, examples });
    const folders = project.classes.map((c) => c.folder);
    assert.ok(folders.every(isSafeFolder), folders.join(' | '));
    assert.equal(new Set(folders.map((f) => f.toLowerCase())).size, classes.length);
    assert.deepEqual(folders.slice(0, 3), ['zebra', 'a_b_ _c___1', 'Cat']);
    const entries = unzipSync(new Uint8Array(await blob.arrayBuffer()));
    assert.ok(entries['project.json']);
    assert.equal(Object.keys(entries).length, examples.length + 1); // same.png twice per class: unique names
    const back = await importProject(new File([blob], 'export.zip'));
    assert.deepEqual(back.messages, []);
    assert.equal(back.name, 'My pets');
    assert.deepEqual(back.classes, classes);
    assert.deepEqual(back.examples.map((e) => [e.label, e.role]), examples.map((e) => [e.label, e.role]));
    for (const [i, e] of back.examples.entries()) assert.deepEqual(await bytes(e.src), await bytes(examples[i].src));
  });

  test('a zip without project.json: class folders in name order, a wrapping folder stripped, some held out', async () => {
    const files = {};
    for (const label of ['b', 'a']) for (let i = 0; i < 7; i++) files[`photos/${label}/${i}.png`] = png(i);
    const back = await importProject(zipBlob(files, 'photos.zip'));
    assert.deepEqual(back.classes, ['a', 'b']);
    assert.equal(back.examples.length, 14);
    assert.deepEqual(back.examples.filter((e) => e.role === 'valid').map((e) => e.id), ['a/3.png', 'b/3.png']);
    assert.equal(back.name, 'photos');
  });

  test('entries escaping the project refuse the zip, naming the entry', async () => {
    for (const evil of ['../evil.png', 'cat/../../evil.png', '/etc/evil.png', 'C:/evil.png', 'cat\\..\\..\\evil.png']) {
      await assert.rejects(importProject(zipBlob({ 'cat/ok.png': png(1), [evil]: png(2) })), (e) => {
        assert.ok(e instanceof ProjectFileError);
        assert.ok(e.message.includes(evil) && /outside the project; refused/.test(e.message), e.message);
        return true;
      });
    }
  });

  test('nested zips, symlinks, non-images and files outside class folders are skipped with a message', async () => {
    const files = {
      'cat/1.png': png(1), 'cat/2.png': png(2), 'dog/1.png': png(3),
      'dog/inner.zip': zipSync({ 'x.png': png(4) }),
      'dog/notes.txt': strToU8('hello'),
      'dog/fake.png': strToU8('not really a png, just text'),
      'dog/link.png': [png(5), { os: 3, attrs: (0o120777 << 16) >>> 0 }],
      'loose.png': png(6),
    };
    const back = await importProject(zipBlob(files));
    assert.deepEqual(back.classes, ['cat', 'dog']);
    assert.deepEqual(back.examples.map((e) => e.id), ['cat/1.png', 'cat/2.png', 'dog/1.png']);
    const text = back.messages.join('\n');
    for (const [name, why] of [['dog/inner.zip', 'nested archive'], ['dog/notes.txt', 'not an image'],
      ['dog/fake.png', 'not an image'], ['dog/link.png', 'symbolic link'], ['loose.png', 'not inside a class folder']]) {
      assert.match(text, new RegExp(`${name.replace('.', '\\.')}: [^\\n]*${why}`), text);
    }
  });

  test('a zip bomb is refused from its declared sizes before inflating, naming the entry', async () => {
    const bomb = new Uint8Array(30 * 1024 * 1024); // zeros deflate about 1000:1
    const zip = zipBlob({ 'cat/1.png': png(1), 'cat/bomb.png': bomb });
    assert.ok(zip.size < 200_000);
    await assert.rejects(importProject(zip), /cat\/bomb\.png is compressed \d+:1 \(limit 100:1\), a zip bomb; refused/);
    await assert.rejects(importProject(zipBlob({ 'cat/1.png': png(1, 5000), 'cat/2.png': png(2, 5000) }),
      { limits: { totalBytes: 8000 } }), /inflates to \d+ bytes \(limit 8000\); refused/);
    await assert.rejects(importProject(zipBlob({ 'cat/1.png': png(1, 5000) }), { limits: { entryBytes: 1000 } }),
      /cat\/1\.png inflates to \d+ bytes \(limit 1000\); refused/);
  });

  test('an entry that inflates past the size its central directory declares refuses the zip', async () => {
    const raw = zipSync({ 'cat/1.png': png(1), 'cat/2.png': png(2, 4000) }, { level: 6 });
    // Lower cat/2.png's declared (uncompressed) size in the central directory to 100 bytes.
    const view = new DataView(raw.buffer);
    let eocd = raw.length - 22;
    while (view.getUint32(eocd, true) !== 0x06054b50) eocd--;
    let at = view.getUint32(eocd + 16, true);
    for (;;) {
      const nameLength = view.getUint16(at + 28, true);
      const name = new TextDecoder().decode(raw.subarray(at + 46, at + 46 + nameLength));
      if (name === 'cat/2.png') break;
      at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
    }
    view.setUint32(at + 24, 100, true);
    await assert.rejects(importProject(new File([raw], 'lying.zip')), /cat\/2\.png inflates past its declared 100 bytes/);
  });

  test('project.json rows naming missing files, unknown roles or unlisted folders are skipped with a message', async () => {
    const zip = zipBlob({
      'project.json': projectJson({
        name: 'p',
        classes: [{ name: 'Dog?', folder: 'Dog_1' }, { name: 'cat', folder: 'cat' }],
        examples: [{ path: 'cat/1.png', role: 'test' }, { path: 'cat/gone.png', role: 'train' },
          { path: 'Dog_1/1.png', role: 'holdout' }, { path: 'bird/1.png', role: 'train' }, { path: 'Dog_1/2.png', role: 'valid' }],
      }),
      'cat/1.png': png(1), 'Dog_1/1.png': png(2), 'Dog_1/2.png': png(3), 'Dog_1/3.png': png(4), 'bird/1.png': png(5),
    });
    const back = await importProject(zip);
    assert.deepEqual(back.classes, ['Dog?', 'cat']);
    assert.deepEqual(back.examples.map((e) => [e.id, e.label, e.role]),
      [['cat/1.png', 'cat', 'test'], ['Dog_1/2.png', 'Dog?', 'valid'], ['Dog_1/3.png', 'Dog?', 'train']]);
    const text = back.messages.join('\n');
    assert.match(text, /project\.json names cat\/gone\.png, which is not in p\.zip; skipped/);
    assert.match(text, /Dog_1\/1\.png has role "holdout", expected train, valid, test; skipped/);
    assert.match(text, /bird\/1\.png is not in a class folder it lists; skipped/);
    await assert.rejects(importProject(zipBlob({ 'project.json': strToU8('{"format": "other/2"}'), 'a/1.png': png(1) })),
      /project\.json has format "other\/2"/);
    await assert.rejects(importProject(zipBlob({ 'project.json': projectJson({ classes: [{ name: 'x', folder: '../x' }], examples: [] }) })),
      /class x has folder \.\.\/x; refused/);
  });

  test('a picked folder (webkitRelativePath) reads like the zip; junk is skipped', async () => {
    const { blob } = await exportProjectZip({ name: 'f', classes: ['b', 'a'],
      examples: [{ id: '1', label: 'b', role: 'train', name: 'x.png', src: new Blob([png(1)]) },
        { id: '2', label: 'a', role: 'valid', name: 'y.png', src: new Blob([png(2)]) }] });
    const entries = unzipSync(new Uint8Array(await blob.arrayBuffer()));
    const files = Object.entries(entries).map(([p, d]) => folderFile(`export/${p}`, d));
    files.push(folderFile('export/a/readme.md', strToU8('hi')), folderFile('export/.DS_Store', strToU8('x')));
    const back = await importProject(files);
    assert.deepEqual(back.classes, ['b', 'a']);
    assert.deepEqual(back.examples.map((e) => [e.label, e.role, e.name]), [['b', 'train', 'x.png'], ['a', 'valid', 'y.png']]);
    assert.deepEqual(back.messages, ['export/a/readme.md: not an image (PNG, JPEG, GIF, WebP, BMP); skipped']);
  });

  test('not a zip at all: one clear message', async () => {
    await assert.rejects(importProject(new File([strToU8('hello')], 'x.zip')), /x\.zip is not a zip \(no central directory\)/);
  });
});

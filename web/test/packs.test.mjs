// web/src/packs.js in Node: the served images' pack slices from images.json, each shard
// fetched once (a fake fetch counts the requests), slices as the bytes, errors naming the shard.
//   cd web && node --test test/packs.test.mjs
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PackCache, packSlices } from '../src/packs.js';
import { projectFromSite } from '../src/project.js';

const PAGE = 'http://example.test/site/';
const SHARDS = { 'images/pack-0.bin': Uint8Array.from([1, 2, 3, 4, 5, 6]), 'images/pack-1.bin': Uint8Array.from([7, 8, 9]) };
const IMAGES = [
  { path: 'images/0/train-0.png', label: 'a', role: 'train', pack: [0, 0, 2] },
  { path: 'images/0/train-1.png', label: 'a', role: 'train', pack: [0, 2, 4] },
  { path: 'images/1/train-0.png', label: 'b', role: 'valid', pack: [1, 0, 3] },
];
const PACKS = Object.keys(SHARDS);

/** A fetch of SHARDS under PAGE that records each URL asked; `status` overrides the answer. */
function fakeFetch(status = {}) {
  const asked = [];
  const fetchImpl = async (url) => {
    asked.push(url);
    const file = url.slice(PAGE.length);
    const code = status[file] || (SHARDS[file] ? 200 : 404);
    return { ok: code === 200, status: code, arrayBuffer: async () => SHARDS[file].slice().buffer };
  };
  return { asked, fetchImpl };
}

describe('packSlices', () => {
  test('each entry gets its shard URL, file, offset, length and the shard image count', () => {
    const slices = packSlices(IMAGES, PACKS, PAGE);
    assert.deepEqual(slices[1], { url: `${PAGE}images/pack-0.bin`, file: 'images/pack-0.bin', offset: 2, length: 4, count: 2 });
    assert.equal(slices[2].count, 1);
  });

  test('a site without packs has none', () => {
    assert.equal(packSlices(IMAGES, null, PAGE), null);
    assert.equal(packSlices(IMAGES, [], PAGE), null);
  });

  test('a bad pack entry is an error naming images.json and the image', () => {
    assert.throws(() => packSlices([{ path: 'images/x.png', pack: [2, 0, 1] }], PACKS, PAGE),
      /images\.json: images\/x\.png has pack \[2,0,1\]: there are 2 packs/);
    assert.throws(() => packSlices([{ path: 'images/x.png' }], PACKS, PAGE), /images\/x\.png .*expected \[shard, offset, length\]/);
  });

  test('projectFromSite keeps the URL and adds the slice; without packs, the URL alone', () => {
    const packed = projectFromSite(['a', 'b'], IMAGES, PAGE, 'images.json', PACKS);
    assert.equal(packed.examples[0].src, `${PAGE}images/0/train-0.png`);
    assert.equal(packed.examples[2].pack.file, 'images/pack-1.bin');
    const plain = projectFromSite(['a', 'b'], IMAGES.map(({ pack, ...e }) => e), PAGE);
    assert.ok(plain.examples.every((e) => !('pack' in e)));
  });
});

describe('PackCache', () => {
  test('one fetch per shard however many images read it; the slices are the bytes', async () => {
    const { asked, fetchImpl } = fakeFetch();
    const cache = new PackCache(fetchImpl);
    const slices = packSlices(IMAGES, PACKS, PAGE);
    const bytes = await Promise.all(slices.map((s, i) => cache.bytes(s, IMAGES[i].path)));
    assert.deepEqual(bytes.map((b) => [...b]), [[1, 2], [3, 4, 5, 6], [7, 8, 9]]);
    assert.deepEqual(asked, [`${PAGE}images/pack-0.bin`, `${PAGE}images/pack-1.bin`]);
    assert.equal(cache.shards.size, 0, 'every image of each shard read: the shards are let go');
  });

  test('a shard shorter than an image slice: the error names the shard and the image', async () => {
    const cache = new PackCache(fakeFetch().fetchImpl);
    const slice = { ...packSlices(IMAGES, PACKS, PAGE)[2], length: 9 };
    await assert.rejects(cache.bytes(slice, 'logo.png'), /^Error: images\/pack-1\.bin: 3 bytes, but logo\.png is at bytes 0-9/);
  });

  test('a missing shard names the file; a later read fetches it again', async () => {
    const { asked, fetchImpl } = fakeFetch({ 'images/pack-0.bin': 404 });
    const cache = new PackCache(fetchImpl);
    const [first] = packSlices(IMAGES, PACKS, PAGE);
    await assert.rejects(cache.bytes(first, 'a.png'), /could not fetch images\/pack-0\.bin: HTTP 404/);
    await assert.rejects(cache.bytes(first, 'a.png'), /HTTP 404/);
    assert.equal(asked.length, 2);
  });
});

test('PackCache: a slice with a range fetches only those bytes (206), or reads the whole file a server sends (200)', async () => {
  const shard = Uint8Array.from([10, 11, 12, 13, 14, 15, 16, 17]);
  const asked = [];
  const serve = (partial) => async (url, init = {}) => {
    const range = init.headers && init.headers.Range;
    asked.push(range || null);
    if (!partial || !range) return new Response(shard, { status: 200 });
    const [a, b] = range.replace('bytes=', '').split('-').map(Number);
    return new Response(shard.slice(a, b + 1), { status: 206 });
  };
  const slice = (offset, length) => ({ url: 'u', file: 'pack-0.bin', offset, length, count: 2, range: [4, 8] });
  for (const partial of [true, false]) {
    asked.length = 0;
    const cache = new PackCache(serve(partial));
    assert.deepEqual(Array.from(await cache.bytes(slice(4, 2), 'x')), [14, 15]);
    assert.deepEqual(Array.from(await cache.bytes(slice(6, 2), 'y')), [16, 17]);
    assert.deepEqual(asked, ['bytes=4-7']); // once for both: the span's two images
  }
  const cache = new PackCache(serve(true));
  await assert.rejects(cache.bytes({ ...slice(2, 2), range: [2, 4] }, 'z').then(() => cache.bytes(slice(4, 9), 'w')),
    /pack-0.bin: 4 bytes from byte 4, but w is at bytes 4-13/);
});

test('PackCache: a partial answer starts where its Content-Range says, asked for or not', async () => {
  const shard = Uint8Array.from([10, 11, 12, 13, 14, 15, 16, 17]);
  // an HTTP cache answering a whole-file request with 206 (whole or from byte 2), and without the header
  const answer = (from, header = true) => async () => new Response(shard.slice(from), { status: 206,
    headers: header ? { 'Content-Range': `bytes ${from}-7/8` } : {} });
  const whole = { url: 'u', file: 'pack-0.bin', offset: 4, length: 2, count: 1 };
  assert.deepEqual(Array.from(await new PackCache(answer(0)).bytes(whole, 'x')), [14, 15]);
  assert.deepEqual(Array.from(await new PackCache(answer(2)).bytes(whole, 'x')), [14, 15]);
  await assert.rejects(new PackCache(answer(0, false)).bytes(whole, 'x'),
    /could not fetch pack-0.bin: a partial answer \(HTTP 206\) without its Content-Range/);
  // a ranged request answered without the header: the span asked for
  assert.deepEqual(Array.from(await new PackCache(answer(4, false)).bytes({ ...whole, range: [4, 8] }, 'x')), [14, 15]);
});

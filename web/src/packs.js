// The served images packed into a few shards (site.py writes images/pack-<i>.bin; images.json
// lists them in "packs" and gives each image "pack": [shard, offset, length]): the page's
// feature extraction fetches each shard once instead of one request per image (browsers
// keep 6 connections a host, and every request costs the server), then decodes each image
// from its slice. A site without packs, and examples added in the page, load by their src.
import { bytesToPixels, canvasToPixels, srcToCanvas } from './data.js';

/**
 * The pack slice of each images.json entry, or null for all of them when the site has none.
 * @param {{path: string, pack?: number[]}[]} images images.json's "images"
 * @param {string[]|null} packs images.json's "packs" (paths relative to the page)
 * @param {string} pageUrl
 * @param {string} file the index's name, for error messages
 * @returns {({url, file, offset, length, count}|null)[]|null} count: how many images the shard holds
 */
export function packSlices(images, packs, pageUrl, file = 'images.json') {
  if (!packs || !packs.length) return null;
  const counts = new Array(packs.length).fill(0);
  const bad = (entry, why) => new Error(`${file}: ${entry.path} has pack ${JSON.stringify(entry.pack)}: ${why}`);
  for (const entry of images) {
    const p = entry.pack;
    if (!Array.isArray(p) || p.length !== 3 || !p.every((v) => Number.isInteger(v) && v >= 0)) {
      throw bad(entry, 'expected [shard, offset, length]');
    }
    if (p[0] >= packs.length) throw bad(entry, `there are ${packs.length} packs`);
    counts[p[0]]++;
  }
  return images.map(({ pack: [shard, offset, length] }) => ({
    url: new URL(packs[shard], pageUrl).href, file: packs[shard], offset, length, count: counts[shard],
  }));
}

/**
 * Shards fetched once each (a promise per URL, shared by every image in it) and let go once
 * all of a shard's images were read (a later read fetches it again); a failed fetch is not
 * kept, so a later run tries again. Errors name the shard file and the image.
 */
export class PackCache {
  constructor(fetchImpl = (url, init) => fetch(url, init)) {
    this.fetch = fetchImpl;
    this.shards = new Map(); // url (#range) -> {data: Promise<{bytes, base}>, read: number}
  }

  /**
   * The bytes of one image: its slice {url, file, offset, length, count, range?} of a shard.
   * `range` [start, end): only those bytes of the shard are fetched (an HTTP Range request; a
   * server that answers with the whole file is read the same), by a reader that needs no more
   * (a lane of tfworker.js); `count` is then the reader's own images in that span.
   */
  async bytes(slice, name) {
    const key = slice.range ? `${slice.url}#${slice.range[0]}-${slice.range[1]}` : slice.url;
    let shard = this.shards.get(key);
    if (!shard) {
      shard = { data: this.load(slice), read: 0 };
      this.shards.set(key, shard);
      shard.data.catch(() => this.shards.get(key) === shard && this.shards.delete(key));
    }
    if (++shard.read >= slice.count && this.shards.get(key) === shard) this.shards.delete(key);
    const { bytes, base } = await shard.data;
    const end = slice.offset + slice.length;
    if (slice.offset < base || end - base > bytes.length) {
      throw new Error(`${slice.file}: ${bytes.length} bytes${base ? ` from byte ${base}` : ''}, but ${name} is at `
        + `bytes ${slice.offset}-${end} (the site is half updated or damaged: rebuild it)`);
    }
    return bytes.subarray(slice.offset - base, end - base);
  }

  /**
   * {bytes, base}: the shard's bytes from byte `base`. A partial answer (206) starts where its
   * Content-Range says, and not only ranged requests get one: once lanes fetched a file's spans,
   * Chromium answers a request for the whole file from its cache as a 206 of all its bytes.
   */
  async load({ url, file, range }) {
    let response;
    try {
      response = await (range ? this.fetch(url, { headers: { Range: `bytes=${range[0]}-${range[1] - 1}` } })
        : this.fetch(url));
    } catch (e) {
      throw new Error(`could not fetch ${file}: ${e.message}`);
    }
    if (!response.ok) throw new Error(`could not fetch ${file}: HTTP ${response.status}`);
    return { bytes: new Uint8Array(await response.arrayBuffer()), base: baseOf(response, file, range) };
  }
}

/** The first byte of the shard a response holds: 0, or a partial answer's start. */
function baseOf(response, file, range) {
  if (response.status !== 206) return 0;
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('Content-Range') || '');
  if (match) return Number(match[1]);
  if (range) return range[0]; // the span asked for (a cross-origin host may not expose the header)
  throw new Error(`could not fetch ${file}: a partial answer (HTTP 206) without its Content-Range`);
}

const cache = new PackCache(); // one per realm: the page's, and its worker's own

/**
 * An example's RGB pixels (a tf.Tensor3D [H, W, channels] float32, as over a white canvas):
 * from its pack slice when it has one, else its src.
 */
export async function exampleToPixels(tf, { src, name, pack }, channels = 3) {
  if (!pack) return canvasToPixels(tf, await srcToCanvas(src, name), channels);
  return bytesToPixels(tf, await cache.bytes(pack, name), /\.png$/i.test(src) ? 'image/png' : '', name, channels);
}

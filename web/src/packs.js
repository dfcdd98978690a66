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
  constructor(fetchImpl = (url) => fetch(url)) {
    this.fetch = fetchImpl;
    this.shards = new Map(); // url -> {bytes: Promise<Uint8Array>, read: number}
  }

  /** The bytes of one image: its slice {url, file, offset, length, count} of a shard. */
  async bytes(slice, name) {
    let shard = this.shards.get(slice.url);
    if (!shard) {
      shard = { bytes: this.load(slice), read: 0 };
      this.shards.set(slice.url, shard);
      shard.bytes.catch(() => this.shards.get(slice.url) === shard && this.shards.delete(slice.url));
    }
    if (++shard.read >= slice.count && this.shards.get(slice.url) === shard) this.shards.delete(slice.url);
    const bytes = await shard.bytes;
    const end = slice.offset + slice.length;
    if (end > bytes.length) {
      throw new Error(`${slice.file}: ${bytes.length} bytes, but ${name} is at bytes ${slice.offset}-${end} `
        + '(the site is half updated or damaged: rebuild it)');
    }
    return bytes.subarray(slice.offset, end);
  }

  async load({ url, file }) {
    let response;
    try {
      response = await this.fetch(url);
    } catch (e) {
      throw new Error(`could not fetch ${file}: ${e.message}`);
    }
    if (!response.ok) throw new Error(`could not fetch ${file}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }
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

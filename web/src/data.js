// Images -> pixels: the served training images (images.json) and user uploads.
// Every image goes through one path: sniff the header (type, size), decode with
// createImageBitmap (EXIF orientation applied, no colour-profile conversion), draw it
// onto a canvas pre-filled white (alpha composites over white), read RGB uint8.

export const MAX_PIXELS = 50e6;

/** An error about the user's input: shown in the page, the app stays ready. */
export class InputError extends Error {}

/** A successful response for `url`; the error names `what` (the file) and the problem. */
async function fetchOk(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`could not fetch ${what}: ${e.message}`);
  }
  if (!response.ok) throw new Error(`could not fetch ${what}: HTTP ${response.status}`);
  return response;
}

/** Fetches JSON relative to the page; the message names the file on failure. */
export async function fetchJson(url, what) {
  const response = await fetchOk(url, what);
  try {
    return await response.json();
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${e.message}`);
  }
}

/**
 * The served dataset's index (images.json): {file, images: [{path, label, split, role, source,
 * pack}], packs: the shard paths (null for a site built before packs)}.
 */
export async function fetchImageIndex(manifest, pageUrl) {
  const file = manifest.images && manifest.images.path ? manifest.images.path : 'images.json';
  const index = await fetchJson(new URL(file, pageUrl).href, file);
  if (!index || !Array.isArray(index.images)) throw new Error(`${file} has no "images" array`);
  return { file, images: index.images, packs: Array.isArray(index.packs) ? index.packs : null };
}

function u32be(b, i) { return ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3]; }
function u16be(b, i) { return (b[i] << 8) + b[i + 1]; }
function u16le(b, i) { return b[i] + (b[i + 1] << 8); }
function u24le(b, i) { return b[i] + (b[i + 1] << 8) + (b[i + 2] << 16); }

/**
 * Reads the type and pixel size from an image header without decoding it.
 * @param {Uint8Array} b the first bytes of the file (64 KiB is plenty for JPEG)
 * @returns {{type: string, width: number|null, height: number|null}|null} null if not an image
 */
export function sniffImage(b) {
  const ascii = (i, n) => String.fromCharCode(...b.subarray(i, i + n));
  if (b.length >= 24 && b[0] === 0x89 && ascii(1, 3) === 'PNG') {
    return { type: 'png', width: u32be(b, 16), height: u32be(b, 20) };
  }
  if (b.length >= 10 && ascii(0, 3) === 'GIF') {
    return { type: 'gif', width: u16le(b, 6), height: u16le(b, 8) };
  }
  if (b.length >= 26 && ascii(0, 2) === 'BM') {
    const w = b[18] | (b[19] << 8) | (b[20] << 16) | (b[21] << 24);
    const h = b[22] | (b[23] << 8) | (b[24] << 16) | (b[25] << 24);
    return { type: 'bmp', width: Math.abs(w), height: Math.abs(h) };
  }
  if (b.length >= 30 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') {
    const chunk = ascii(12, 4);
    if (chunk === 'VP8X') return { type: 'webp', width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
    if (chunk === 'VP8L') {
      const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
      return { type: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8 ') return { type: 'webp', width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
    return { type: 'webp', width: null, height: null };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) { i++; continue; }
      const marker = b[i + 1];
      if (marker === 0xff) { i++; continue; }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; }
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) return { type: 'jpeg', width: u16be(b, i + 7), height: u16be(b, i + 5) };
      i += 2 + u16be(b, i + 2);
    }
    return { type: 'jpeg', width: null, height: null };
  }
  if (b.length >= 12 && ascii(4, 4) === 'ftyp' && /avif|avis/.test(ascii(8, 4))) {
    return { type: 'avif', width: null, height: null };
  }
  return null;
}

/** A canvas to draw on: the page's own element, or an OffscreenCanvas in a worker (no document). */
function newCanvas(width, height) {
  if (typeof document === 'undefined') return new OffscreenCanvas(width, height);
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

/**
 * Decodes an image Blob onto a white canvas (the same code in the page and in its feature worker).
 * @returns {Promise<HTMLCanvasElement|OffscreenCanvas>} a canvas of the image's (oriented) size
 * @throws {InputError} not an image, too large, or undecodable
 */
export async function decodeToCanvas(blob, name = 'the file', maxPixels = MAX_PIXELS) {
  return drawn(await decodeBlob(blob, name, maxPixels));
}

/** A checked picture (decodePicture's) of an image Blob. */
async function decodeBlob(blob, name, maxPixels) {
  const bytes = blob.size > WHOLE_READ_BYTES ? null : new Uint8Array(await blob.arrayBuffer());
  const head = bytes ? bytes.subarray(0, SNIFF_BYTES) : new Uint8Array(await blob.slice(0, SNIFF_BYTES).arrayBuffer());
  return decodePicture({ blob, bytes, type: blob.type }, head, name, maxPixels);
}

/**
 * A file up to this size is read once, its bytes both sniffed and decoded: a slice to sniff
 * is a second Blob to make and a second trip to the browser process for its bytes. A larger
 * one is sniffed from its first bytes before anything more is read.
 */
const WHOLE_READ_BYTES = 16 * 1024 * 1024;

/** The first bytes of a file that sniffImage() reads its type and size from. */
const SNIFF_BYTES = 65536;

/**
 * PNGs go through WebCodecs' ImageDecoder where the browser has it: it decodes the bytes in the
 * page's own process, where createImageBitmap(blob) first hands every Blob to the browser
 * process (tens of ms before the first of a batch of images comes back). Its frames
 * are RGB, drawn with the same pixels as the bitmap's (alpha, 16 bits, palettes, EXIF
 * rotation: tests/browser/test_page_decode.py). JPEG and WebP come out of it as YUV frames
 * whose conversion to RGB differs from the bitmap's, so they keep createImageBitmap.
 */
const DECODER_TYPES = new Set(['png']);

/**
 * A checked picture of an image, given as a Blob, its bytes or both ({blob}, {bytes}, and its
 * MIME `type` if known; createImageBitmap takes the Blob, ImageDecoder the bytes, where given)
 * whose first bytes are `head`: {source (an ImageBitmap or a VideoFrame, to draw), width,
 * height, close()} (the caller closes it).
 */
async function decodePicture(image, head, name, maxPixels) {
  const kind = sniffImage(head);
  if (!kind) {
    const type = image.type ? ` (${image.type})` : '';
    throw new InputError(`${name}${type} is not an image this page can read (PNG, JPEG, GIF, WebP, BMP).`);
  }
  if (kind.width != null && kind.height != null && kind.width * kind.height > maxPixels) {
    throw new InputError(`${name} is too large: ${kind.width}×${kind.height} = `
      + `${(kind.width * kind.height / 1e6).toFixed(1)} megapixels (limit ${maxPixels / 1e6}).`);
  }
  const picture = (DECODER_TYPES.has(kind.type) && await decodeFrame(image, kind.type, name))
    || await decodeBitmap(image, kind.type, name);
  if (picture.width * picture.height > maxPixels) {
    picture.close();
    throw new InputError(`${name} is too large: ${picture.width}×${picture.height} (limit ${maxPixels / 1e6} megapixels).`);
  }
  if (picture.width === 0 || picture.height === 0) {
    picture.close();
    throw new InputError(`${name} has no pixels.`);
  }
  return picture;
}

function decodeFailed(name, type) {
  return new InputError(`${name} could not be decoded as ${type.toUpperCase()}: it may be damaged.`);
}

async function decodeBitmap({ blob, bytes, type: mime }, type, name) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob || new Blob([bytes], { type: mime }), {
      imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none',
    });
  } catch (e) {
    throw decodeFailed(name, type);
  }
  return { source: bitmap, width: bitmap.width, height: bitmap.height, close: () => bitmap.close() };
}

const supported = new Map(); // MIME type -> Promise<boolean>: ImageDecoder asked once a type

function decoderSupports(mime) {
  if (typeof ImageDecoder !== 'function') return false;
  if (!supported.has(mime)) supported.set(mime, ImageDecoder.isTypeSupported(mime).catch(() => false));
  return supported.get(mime);
}

/** The first frame through ImageDecoder, or null where it is missing or gives no RGB frame. */
async function decodeFrame({ blob, bytes }, type, name) {
  const mime = `image/${type}`;
  if (!(await decoderSupports(mime))) return null;
  const data = bytes || await blob.arrayBuffer();
  let decoder = null;
  let frame;
  try {
    decoder = new ImageDecoder({ data, type: mime, colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    frame = (await decoder.decode()).image;
  } catch (e) {
    throw decodeFailed(name, type);
  } finally {
    if (decoder) decoder.close();
  }
  if (!/^(RGB|BGR)[AX]$/.test(frame.format || '')) { // a YUV frame: the bitmap's way instead
    frame.close();
    return null;
  }
  return { source: frame, width: frame.displayWidth, height: frame.displayHeight, close: () => frame.close() };
}

/** A new canvas holding the picture drawn over white; closes the picture. */
function drawn(picture) {
  try {
    return drawOnWhite(picture);
  } finally {
    picture.close();
  }
}

/** A canvas of the picture's size holding it drawn over white (alpha composites over white). */
function drawOnWhite({ source, width, height }) {
  const canvas = newCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(source, 0, 0);
  return canvas;
}

/** The RGB uint8 pixels of a canvas as a tf.Tensor3D [H, W, channels] float32 (values 0..255). */
export function canvasToPixels(tf, canvas, channels = 3) {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return rgbaToPixels(tf, data, width, height, channels);
}

/**
 * RGBA bytes (a canvas's ImageData.data) as a tf.Tensor3D [height, width, channels] float32:
 * the values tf.browser.fromPixels gives (the first `channels` of each pixel), made float32
 * here in one loop instead of an int32 tensor that preprocess would cast (a second pass over
 * every pixel, in a wasm kernel). 0..255 are exact in float32: the same numbers either way.
 * `layout` {offset, stride (bytes a row), bgr}: a video frame's copy (RGBX or BGRX rows).
 */
export function rgbaToPixels(tf, rgba, width, height, channels = 3, layout = null) {
  if (!(channels >= 1 && channels <= 4)) throw new Error(`pixels have 1 to 4 channels, not ${channels}`);
  const out = new Float32Array(width * height * channels);
  if (layout && channels === 3) { // unrolled: twice the speed of the loop below
    const { offset = 0, stride = 4 * width, bgr = false } = layout;
    const [r, g, b] = bgr ? [2, 1, 0] : [0, 1, 2];
    for (let y = 0, j = 0; y < height; y++) {
      for (let i = offset + y * stride, end = i + 4 * width; i < end; i += 4, j += 3) {
        out[j] = rgba[i + r];
        out[j + 1] = rgba[i + g];
        out[j + 2] = rgba[i + b];
      }
    }
  } else if (layout) {
    const { offset = 0, stride = 4 * width, bgr = false } = layout;
    const order = (bgr ? [2, 1, 0] : [0, 1, 2]).slice(0, channels);
    for (let y = 0, j = 0; y < height; y++) {
      for (let i = offset + y * stride, end = i + 4 * width; i < end; i += 4) {
        for (let c = 0; c < channels; c++) out[j++] = rgba[i + order[c]];
      }
    }
  } else if (channels === 3) {
    for (let i = 0, j = 0; j < out.length; i += 4, j += 3) {
      out[j] = rgba[i];
      out[j + 1] = rgba[i + 1];
      out[j + 2] = rgba[i + 2];
    }
  } else {
    for (let i = 0, j = 0; j < out.length; i += 4) {
      for (let c = 0; c < channels; c++) out[j++] = rgba[i + c];
    }
  }
  return tf.tensor3d(out, [height, width, channels], 'float32');
}

/**
 * An image file's bytes decoded to RGB pixels (as bytesToCanvas + canvasToPixels give them).
 * @returns {Promise<object>} tf.Tensor3D [H, W, channels] float32 (values 0..255)
 * @throws {InputError} not an image, too large, or undecodable (naming `name`)
 */
export async function bytesToPixels(tf, bytes, type, name, channels = 3) {
  return pictureToPixels(tf, await decodePicture({ bytes, type }, bytes.subarray(0, SNIFF_BYTES), name, MAX_PIXELS),
    channels);
}

/**
 * An image Blob (a dropped, pasted or chosen File) decoded to RGB pixels, as decodeToCanvas +
 * canvasToPixels give them: a new file's prediction needs no canvas (the preview is the file's
 * own <img>, which the browser decodes off the page's thread).
 * @returns {Promise<object>} tf.Tensor3D [H, W, channels] float32 (values 0..255)
 * @throws {InputError} not an image, too large, or undecodable (naming `name`)
 */
export async function decodeToPixels(tf, blob, name = 'the file', channels = 3) {
  return pictureToPixels(tf, await decodeBlob(blob, name, MAX_PIXELS), channels);
}

/**
 * A picture's RGB pixels; closes it. An opaque frame from ImageDecoder is copied out as it
 * is, with no canvas to draw on and read back (over white an opaque image is itself);
 * anything else goes through the canvas.
 */
async function pictureToPixels(tf, picture, channels) {
  try {
    const frame = channels <= 3 ? await opaqueRows(picture) : null;
    if (frame) return rgbaToPixels(tf, frame.rows, picture.width, picture.height, channels, frame.layout);
    return canvasToPixels(tf, drawOnWhite(picture), channels);
  } finally {
    picture.close();
  }
}

/** An opaque, unrotated video frame's rows ({rows, layout}), or null for any other picture. */
async function opaqueRows({ source, width, height }) {
  if (typeof VideoFrame !== 'function' || !(source instanceof VideoFrame)) return null;
  const { format, visibleRect, rotation = 0, flip = false } = source;
  if (!/^(RGB|BGR)X$/.test(format) || rotation || flip || visibleRect.width !== width || visibleRect.height !== height) {
    return null;
  }
  const rows = new Uint8Array(source.allocationSize());
  const [plane] = await source.copyTo(rows);
  return { rows, layout: { offset: plane.offset, stride: plane.stride, bgr: format.startsWith('BGR') } };
}

/**
 * Fetches an image URL and decodes it onto a white canvas. The response's bytes are read once,
 * sniffed in memory and decoded from a Blob of them: reading the head of the response's own
 * Blob (decodeToCanvas) would be one more round trip to the browser process per image.
 */
export async function fetchToCanvas(url) {
  const response = await fetchOk(url, url);
  const base = typeof document === 'undefined' ? globalThis.location.href : document.baseURI;
  const name = decodeURIComponent(new URL(url, base).pathname.split('/').pop() || url);
  return bytesToCanvas(new Uint8Array(await response.arrayBuffer()), response.headers.get('content-type') || '', name);
}

/**
 * An image file's bytes (a fetched response's, or a slice of a packed shard: packs.js)
 * decoded onto a white canvas, sniffed in memory; `type` the MIME type if known, for messages.
 * @throws {InputError} not an image, too large, or undecodable (naming `name`)
 */
export async function bytesToCanvas(bytes, type, name) {
  return drawn(await decodePicture({ bytes, type }, bytes.subarray(0, SNIFF_BYTES), name, MAX_PIXELS));
}

/** An example's pixels source (a URL or a Blob) decoded onto a white canvas. */
export function srcToCanvas(src, name) {
  return typeof src === 'string' ? fetchToCanvas(src) : decodeToCanvas(src, name);
}

/** The first image File in a DataTransfer or ClipboardData, or the first file at all. */
export function firstFile(transfer) {
  if (!transfer) return null;
  const files = Array.from(transfer.files || []);
  if (files.length === 0 && transfer.items) {
    for (const item of transfer.items) {
      if (item.kind === 'file') {
        const f = item.getAsFile();
        if (f) files.push(f);
      }
    }
  }
  return files.find((f) => f.type.startsWith('image/')) || files[0] || null;
}

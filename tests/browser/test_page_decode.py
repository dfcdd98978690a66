"""The page's decode of an example's pixels (main.js loadPixels -> packs.js exampleToPixels; a
URL's bytes read once and sniffed in memory, fetchToCanvas; a packed image's slice decoded by
ImageDecoder when it is a PNG, an opaque frame's rows copied out with no canvas) in Chromium:
the same bytes as the path it replaces (the response's Blob, its head read to sniff,
createImageBitmap of that Blob, a canvas drawn over white), for every served logo and PNGs
with alpha, 16 bits, grey, a palette with a transparent entry and an EXIF rotation, and a
JPEG rotated by its EXIF orientation, as URLs, as Blobs and as slices of a pack, loaded one by
one and all at once; bad input keeps its messages."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from .conftest import open_app

pytestmark = pytest.mark.browser

# In the page: per source (served URLs, then object URLs and Blobs of the extra images), the
# pixels of the page's loadPixels serially and all at once, and of the canvas
# path as it was (the response's Blob), as FNV-1a digests of the float32 values.
PIXELS = """async (extra) => {
  const T = window.tfjsTransfer, tf = T.tf, m = T.manifest;
  const index = await (await fetch(m.images.path || 'images.json')).json();
  const list = index.images;
  const blobs = extra.map(([b64, type]) => new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type }));
  const srcs = [...list.map((it) => new URL(it.path, location.href).href),
    ...blobs.map((b) => URL.createObjectURL(b)), ...blobs];
  const digest = (t) => {
    const v = t.dataSync(); t.dispose();
    const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
    let h = 0x811c9dc5;
    for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193);
    return `${h >>> 0}:${v.length}`;
  };
  const canvasWay = async (src) => {
    const blob = typeof src === 'string' ? await (await fetch(src)).blob() : src;
    const bitmap = await createImageBitmap(blob,
      { imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const px = new Float32Array(width * height * 3);
    for (let i = 0, j = 0; j < px.length; i += 4, j += 3) { px[j] = data[i]; px[j + 1] = data[i + 1]; px[j + 2] = data[i + 2]; }
    return tf.tensor3d(px, [height, width, 3]);
  };
  const load = (src, i) => T.steps.loadPixels({ src, name: `image ${i}` });
  // the same images as slices of packs: the served ones of their shards, each extra one a pack of its own
  const counts = {};
  list.forEach((it) => { counts[it.pack[0]] = (counts[it.pack[0]] || 0) + 1; });
  const packed = [...list.map((it) => ({ src: it.path, name: it.path, pack: {
    url: new URL(index.packs[it.pack[0]], location.href).href, file: index.packs[it.pack[0]],
    offset: it.pack[1], length: it.pack[2], count: counts[it.pack[0]] } })),
  ...blobs.map((b, i) => ({ src: `extra-${i}.${b.type.split('/')[1]}`, name: `extra ${i}`, pack: {
    url: URL.createObjectURL(b), file: `extra ${i}`, offset: 0, length: b.size, count: 1 } }))];
  const before = tf.memory().numTensors;
  const serial = [];
  for (const [i, src] of srcs.entries()) serial.push(digest(await load(src, i)));
  const together = (await Promise.all(srcs.map(load))).map(digest);
  const packedSerial = [];
  for (const item of packed) packedSerial.push(digest(await T.steps.loadPixels(item)));
  const packedTogether = (await Promise.all(packed.map((item) => T.steps.loadPixels(item)))).map(digest);
  const reference = [];
  for (const src of srcs) reference.push(digest(await canvasWay(src)));
  const sizes = new Set(reference.map((d) => d.split(':')[1]));
  const packedReference = [...reference.slice(0, list.length), ...reference.slice(list.length + blobs.length)];
  return { serial, together, reference, packedSerial, packedTogether, packedReference, sizes: sizes.size,
    leaked: tf.memory().numTensors - before };
}"""


def _png_with_alpha() -> bytes:
    img = Image.new("RGBA", (37, 23), (200, 30, 90, 0))
    for x in range(37):
        for y in range(23):
            img.putpixel((x, y), (x * 7 % 256, y * 11 % 256, (x * y) % 256, (x * 13 + y * 5) % 256))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _rotated_jpeg() -> bytes:
    img = Image.new("RGB", (48, 20), (10, 120, 240))
    for x in range(24):
        for y in range(20):
            img.putpixel((x, y), (250, x * 10, y * 12))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def _png(mode: str, size: tuple[int, int], **save) -> bytes:
    """A PNG of seeded noise in `mode` (PIL's), saved with `save`."""
    w, h = size
    channels = {"L": 1, "LA": 2, "RGB": 3, "I;16": 1}[mode]
    rng = np.random.default_rng(len(mode) * 1000 + w)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 256, (h, w, channels), dtype=np.uint8).squeeze(), mode)
    out = io.BytesIO()
    img.save(out, "PNG", **save)
    return out.getvalue()


def _png_palette_transparent() -> bytes:
    img = Image.fromarray(np.random.default_rng(3).integers(0, 256, (21, 19, 3), dtype=np.uint8)).convert("P")
    out = io.BytesIO()
    img.save(out, "PNG", transparency=5)
    return out.getvalue()


def _png_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    return _png("RGB", (31, 17), exif=exif.tobytes())


def test_example_pixels_are_the_blob_paths_bytes(page, site_url):
    open_app(page, site_url)
    pngs = [_png_with_alpha(), _png("RGB", (45, 33)), _png("L", (25, 35)), _png("LA", (40, 50)),
            _png("I;16", (30, 20)), _png_palette_transparent(), _png_rotated()]
    extra = [[base64.b64encode(b).decode(), "image/png"] for b in pngs]
    extra.append([base64.b64encode(_rotated_jpeg()).decode(), "image/jpeg"])
    got = page.evaluate(PIXELS, extra)
    assert len(got["reference"]) >= 90 + 2 * len(extra)
    assert got["sizes"] > 1, "the images should have different sizes"
    assert got["serial"] == got["reference"]
    assert got["together"] == got["reference"]
    assert got["packedSerial"] == got["packedReference"]
    assert got["packedTogether"] == got["packedReference"]
    assert got["reference"][-1].endswith(f":{20 * 48 * 3}")
    assert got["reference"][-2].endswith(f":{31 * 17 * 3}")
    assert got["leaked"] == 0


def test_example_decode_keeps_its_messages(page, site_url):
    open_app(page, site_url)
    messages = page.evaluate("""async () => {
      const T = window.tfjsTransfer;
      const out = [];
      for (const [bytes, type] of [[new TextEncoder().encode('not an image'), 'text/plain'],
                                   [new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8]), 'image/jpeg'],
                                   [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52,
                                     0, 0, 0, 10, 0, 0, 0, 10, 8, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]), 'image/png']]) {
        for (const src of [new Blob([bytes], { type }), URL.createObjectURL(new Blob([bytes], { type }))]) {
          try {
            await T.steps.loadPixels({ src, name: 'bad.file' });
            out.push('decoded');
          } catch (e) {
            out.push(e.message);
          }
        }
      }
      // the damaged PNG as a pack's slice too (ImageDecoder's path from bytes)
      const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52,
        0, 0, 0, 10, 0, 0, 0, 10, 8, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]);
      const url = URL.createObjectURL(new Blob([png]));
      try {
        await T.steps.loadPixels({ src: 'bad.png', name: 'bad.png',
          pack: { url, file: 'pack', offset: 0, length: png.length, count: 1 } });
        out.push('decoded');
      } catch (e) {
        out.push(e.message);
      }
      return out;
    }""")
    assert "not an image" in messages[0] and "bad.file" in messages[0]
    assert "not an image" in messages[1]
    assert all("could not be decoded" in m for m in messages[2:]), messages
    assert all("as PNG" in m for m in messages[4:]), messages
    assert "bad.png" in messages[-1]

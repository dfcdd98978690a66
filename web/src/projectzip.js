// A project out of the page and back in: a zip of <class folder>/<image> plus project.json
// (format, class order, each example's role, class names that are not safe folder names
// mapped to safe folders), the layout `tfjs-transfer build --data project.zip` reads. Import
// takes such a zip or a picked folder, and treats both as hostile: an entry escaping its
// folder or a zip bomb (declared sizes from the central directory, checked before anything is
// inflated, and again while inflating) refuses the zip; nested zips, symlinks, non-images and
// project.json rows naming missing files or unknown roles are skipped with a message naming
// them. Entries are inflated one at a time as the zip streams through fflate's Unzip, and
// kept as Blobs. No DOM here: Node tests it.
import { Unzip, UnzipInflate, Zip, ZipPassThrough, strToU8 } from 'fflate';
import { sniffImage } from './data.js';

export const PROJECT_FILE = 'project.json';
export const PROJECT_FORMAT = 'tfjs-transfer-project/1';
const ROLES = ['train', 'valid', 'test'];
const IMAGE_EXT = /\.(jpe?g|png|gif|webp|bmp)$/i;

export const LIMITS = {
  entryBytes: 256 * 1024 * 1024, // one image (a 200 MP phone photo is well under)
  totalBytes: 2 * 1024 * 1024 * 1024, // everything inflated
  ratio: 100, // uncompressed / compressed, for entries over ratioFloor
  ratioFloor: 1024 * 1024,
  entries: 50_000,
  projectFileBytes: 16 * 1024 * 1024,
};

/** A zip or folder the page refuses as a whole; the message names the entry and the problem. */
export class ProjectFileError extends Error {}

const UNSAFE = /[/\\:*?"<>|\u0000-\u001f\u007f]/;

/** Whether a class name can be its own folder name, as the project file's contract says. */
export function isSafeFolder(name) {
  return typeof name === 'string' && name.length > 0 && name.length <= 100 && !UNSAFE.test(name)
    && !name.startsWith('.') && name.trim() === name;
}

function slug(name, fallback) {
  const s = String(name).replace(/[/\\:*?"<>|\u0000-\u001f\u007f]/g, '_').replace(/^[.\s]+/, '').trim().slice(0, 90);
  return s || fallback;
}

/** Unique safe names (case-insensitively, for Windows and macOS): unsafe or taken ones get a slug and _N. */
function uniqueNamer() {
  const used = new Set();
  return (wanted, fallback) => {
    let name = isSafeFolder(wanted) ? wanted : null;
    if (!name || used.has(name.toLowerCase())) {
      const dot = wanted.lastIndexOf('.');
      const [stem, ext] = IMAGE_EXT.test(wanted) && dot > 0 ? [wanted.slice(0, dot), wanted.slice(dot)] : [wanted, ''];
      const base = slug(stem, fallback);
      for (let n = isSafeFolder(wanted) ? 2 : 1; ; n++) {
        name = `${base}_${n}${ext}`;
        if (!used.has(name.toLowerCase())) break;
      }
    }
    used.add(name.toLowerCase());
    return name;
  };
}

const EXT_OF = { jpeg: '.jpg', png: '.png', gif: '.gif', webp: '.webp', bmp: '.bmp', avif: '.avif' };

/** An example's file name in its folder: its own name (base name) with an image extension. */
function fileNameOf(example, head) {
  const base = String(example.name || example.id || 'image').split(/[/\\]/).pop();
  if (IMAGE_EXT.test(base)) return base;
  const kind = sniffImage(head);
  return `${base}${kind ? EXT_OF[kind.type] : '.jpg'}`;
}

async function defaultRead(example) {
  if (typeof example.src !== 'string') return new Uint8Array(await example.src.arrayBuffer());
  const response = await fetch(example.src);
  if (!response.ok) throw new Error(`could not fetch ${example.name}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * The project as a zip Blob: stored entries (images are compressed already), written one
 * example at a time. readBytes(example) -> Uint8Array; the default reads its Blob or URL.
 * @returns {Promise<{blob: Blob, project: object}>} the zip and its project.json
 */
export async function exportProjectZip({ name, classes, examples }, { readBytes = defaultRead, onProgress = () => {} } = {}) {
  const folderName = uniqueNamer();
  const folders = new Map(classes.map((c, i) => [c, folderName(c, `class_${i + 1}`)]));
  const names = new Map(classes.map((c) => [c, uniqueNamer()]));
  const parts = [];
  let failed = null;
  const zip = new Zip((err, chunk) => {
    if (err) failed = err;
    else parts.push(chunk);
  });
  const add = (path, bytes) => {
    const entry = new ZipPassThrough(path);
    entry.mtime = new Date('2020-01-01T00:00:00Z'); // a zip of the same project is the same bytes
    zip.add(entry);
    entry.push(bytes, true);
  };
  const rows = [];
  for (const [i, e] of examples.entries()) {
    const bytes = await readBytes(e);
    const path = `${folders.get(e.label)}/${names.get(e.label)(fileNameOf(e, bytes.subarray(0, 65536)), 'image')}`;
    add(path, bytes);
    rows.push({ path, role: e.role });
    onProgress(i + 1, examples.length);
    if (failed) throw failed;
  }
  const project = {
    format: PROJECT_FORMAT,
    name,
    classes: classes.map((c) => ({ name: c, folder: folders.get(c) })),
    examples: rows,
    created_by: 'tfjs-transfer page',
  };
  add(PROJECT_FILE, strToU8(`${JSON.stringify(project, null, 1)}\n`));
  zip.end();
  if (failed) throw failed;
  return { blob: new Blob(parts, { type: 'application/zip' }), project };
}

// ---------- reading a zip ----------

const u16 = (b, i) => b[i] | (b[i + 1] << 8);
const u32 = (b, i) => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;

/**
 * The central directory of a zip Blob: [{name, compressed, size, method, symlink, encrypted}],
 * read from its end without inflating anything. Zip64 (over 4 GB) is refused.
 */
export async function centralDirectory(blob, where) {
  const tailLength = Math.min(blob.size, 65557);
  const tail = new Uint8Array(await blob.slice(blob.size - tailLength).arrayBuffer());
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (u32(tail, i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new ProjectFileError(`${where} is not a zip (no central directory)`);
  const count = u16(tail, eocd + 10);
  const size = u32(tail, eocd + 12);
  const offset = u32(tail, eocd + 16);
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    throw new ProjectFileError(`${where} is a zip64 archive (over 4 GB or 65,535 entries); refused`);
  }
  if (offset + size > blob.size) throw new ProjectFileError(`${where} is damaged: its central directory lies past its end`);
  const cd = new Uint8Array(await blob.slice(offset, offset + size).arrayBuffer());
  const entries = [];
  const decoder = new TextDecoder();
  for (let i = 0, n = 0; n < count; n++) {
    if (i + 46 > cd.length || u32(cd, i) !== 0x02014b50) throw new ProjectFileError(`${where} is damaged: bad central directory entry ${n + 1}`);
    const nameLength = u16(cd, i + 28);
    const skip = nameLength + u16(cd, i + 30) + u16(cd, i + 32);
    const unixMode = u32(cd, i + 38) >>> 16;
    const madeOnUnix = cd[i + 5] === 3;
    entries.push({
      name: decoder.decode(cd.subarray(i + 46, i + 46 + nameLength)),
      encrypted: (u16(cd, i + 8) & 1) === 1,
      method: u16(cd, i + 10),
      compressed: u32(cd, i + 20),
      size: u32(cd, i + 24),
      symlink: madeOnUnix && (unixMode & 0o170000) === 0o120000,
    });
    i += 46 + skip;
  }
  return entries;
}

/** A path that climbs out of the project (../, absolute, a drive) or is not plain text. */
function escapes(path) {
  const parts = path.split(/[/\\]/);
  return path.startsWith('/') || path.startsWith('\\') || /^[a-zA-Z]:/.test(path) || parts.includes('..')
    || /[\u0000]/.test(path);
}

/** Refuses a zip whose declared sizes make it a bomb (or too big to hold), before inflating it. */
function checkSizes(entries, where, limits) {
  if (entries.length > limits.entries) throw new ProjectFileError(`${where} has ${entries.length} entries (limit ${limits.entries}); refused`);
  let total = 0;
  for (const e of entries) {
    if (escapes(e.name)) throw new ProjectFileError(`${where}: the entry ${e.name} points outside the project; refused`);
    if (e.size > limits.entryBytes) {
      throw new ProjectFileError(`${where}: the entry ${e.name} inflates to ${e.size} bytes (limit ${limits.entryBytes}); refused`);
    }
    if (e.size > limits.ratioFloor && e.size > limits.ratio * Math.max(1, e.compressed)) {
      throw new ProjectFileError(`${where}: the entry ${e.name} is compressed ${Math.round(e.size / Math.max(1, e.compressed))}:1 `
        + `(limit ${limits.ratio}:1), a zip bomb; refused`);
    }
    total += e.size;
  }
  if (total > limits.totalBytes) throw new ProjectFileError(`${where} inflates to ${total} bytes (limit ${limits.totalBytes}); refused`);
}

/**
 * The wanted entries' bytes as Blobs (Map name -> Blob), inflating the zip as it streams in
 * and never more than one entry's data held apart from the Blobs; an entry that inflates past
 * its declared size refuses the zip.
 */
async function inflateEntries(blob, where, declared, wanted, chunkBytes = 1 << 20) {
  const out = new Map();
  let failure = null;
  const unzip = new Unzip((file) => {
    if (!wanted.has(file.name)) return; // not started: its data is skipped
    const limit = declared.get(file.name).size;
    const chunks = [];
    let got = 0;
    file.ondata = (err, data, final) => {
      if (failure) return;
      if (err) {
        failure = new ProjectFileError(`${where}: the entry ${file.name} could not be inflated: ${err.message}`);
        return;
      }
      got += data.length;
      if (got > limit) {
        failure = new ProjectFileError(`${where}: the entry ${file.name} inflates past its declared ${limit} bytes, a zip bomb; refused`);
        file.terminate();
        return;
      }
      chunks.push(data);
      if (final) out.set(file.name, new Blob(chunks));
    };
    file.start();
  });
  unzip.register(UnzipInflate);
  for (let at = 0; at < blob.size && !failure; at += chunkBytes) {
    const chunk = new Uint8Array(await blob.slice(at, at + chunkBytes).arrayBuffer());
    try {
      unzip.push(chunk, at + chunkBytes >= blob.size);
    } catch (e) {
      failure = failure || new ProjectFileError(`${where} is damaged: ${e.message}`);
    }
  }
  if (failure) throw failure;
  return out;
}

/**
 * A zip's entries the project may use, as [{path, blob}], plus messages for what was skipped.
 * Folders, symlinks, encrypted entries, nested zips and entries that are not images or the
 * project file are skipped.
 */
async function zipEntries(blob, where, limits) {
  const entries = await centralDirectory(blob, where);
  checkSizes(entries, where, limits);
  const messages = [];
  const wanted = new Set();
  for (const e of entries) {
    if (e.name.endsWith('/')) continue;
    const base = e.name.split('/').pop();
    if (e.symlink) messages.push(`${e.name}: a symbolic link; skipped`);
    else if (e.encrypted) messages.push(`${e.name}: encrypted; skipped`);
    else if (/\.(zip|jar|7z|rar|tar|gz|tgz)$/i.test(base)) messages.push(`${e.name}: a nested archive; skipped`);
    else if (base === PROJECT_FILE) {
      if (e.size > limits.projectFileBytes) throw new ProjectFileError(`${where}: ${e.name} is ${e.size} bytes; refused`);
      wanted.add(e.name);
    } else if (base.startsWith('.') || e.name.startsWith('__MACOSX/')) continue; // .DS_Store, resource forks
    else if (!IMAGE_EXT.test(base)) messages.push(`${e.name}: not an image (PNG, JPEG, GIF, WebP, BMP); skipped`);
    else if (e.method !== 0 && e.method !== 8) messages.push(`${e.name}: compression method ${e.method} is not supported; skipped`);
    else wanted.add(e.name);
  }
  const declared = new Map(entries.map((e) => [e.name, e]));
  const blobs = await inflateEntries(blob, where, declared, wanted);
  return { files: [...wanted].filter((p) => blobs.has(p)).map((p) => ({ path: p, blob: blobs.get(p) })), messages };
}

/** A picked folder's files (webkitRelativePath) as [{path, blob}], with the same skips as a zip. */
function folderEntries(files, limits) {
  const messages = [];
  const out = [];
  let total = 0;
  for (const f of files) {
    const path = f.webkitRelativePath || f.name;
    const base = path.split('/').pop();
    if (base.startsWith('.')) continue;
    if (base === PROJECT_FILE) {
      if (f.size > limits.projectFileBytes) throw new ProjectFileError(`${path} is ${f.size} bytes; refused`);
    } else if (/\.(zip|jar|7z|rar|tar|gz|tgz)$/i.test(base)) {
      messages.push(`${path}: a nested archive; skipped`);
      continue;
    } else if (!IMAGE_EXT.test(base)) {
      messages.push(`${path}: not an image (PNG, JPEG, GIF, WebP, BMP); skipped`);
      continue;
    } else if (f.size > limits.entryBytes) {
      messages.push(`${path}: ${f.size} bytes (limit ${limits.entryBytes}); skipped`);
      continue;
    }
    total += f.size;
    out.push({ path, blob: f });
  }
  if (total > limits.totalBytes) throw new ProjectFileError(`the folder holds ${total} bytes of images (limit ${limits.totalBytes}); refused`);
  return { files: out, messages };
}

/** The common folder every path starts with (a zipped or picked folder's name), or ''. */
function commonRoot(files) {
  const project = files.find((f) => f.path.split('/').pop() === PROJECT_FILE);
  if (project) return project.path.slice(0, project.path.length - PROJECT_FILE.length);
  const firsts = new Set(files.map((f) => f.path.split('/')[0]));
  const deep = files.every((f) => f.path.split('/').length >= 3);
  return firsts.size === 1 && deep ? `${[...firsts][0]}/` : '';
}

/** The held-out role of an example imported without a project file: about 1 in 7 of each class. */
function defaultRole(indexInClass) {
  return indexInClass % 7 === 3 ? 'valid' : 'train';
}

function parseProjectFile(text, where) {
  let p;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw new ProjectFileError(`${where}: ${PROJECT_FILE} is not valid JSON: ${e.message}`);
  }
  if (!p || typeof p !== 'object' || p.format !== PROJECT_FORMAT) {
    throw new ProjectFileError(`${where}: ${PROJECT_FILE} has format ${JSON.stringify(p && p.format)}, expected "${PROJECT_FORMAT}"`);
  }
  if (!Array.isArray(p.classes) || !p.classes.every((c) => c && typeof c.name === 'string' && typeof c.folder === 'string')) {
    throw new ProjectFileError(`${where}: ${PROJECT_FILE} has no "classes" list of {name, folder}`);
  }
  if (!Array.isArray(p.examples)) throw new ProjectFileError(`${where}: ${PROJECT_FILE} has no "examples" list`);
  const names = p.classes.map((c) => c.name);
  if (new Set(names).size !== names.length) throw new ProjectFileError(`${where}: ${PROJECT_FILE} names a class twice`);
  for (const c of p.classes) {
    if (escapes(c.folder) || c.folder.includes('/')) throw new ProjectFileError(`${where}: ${PROJECT_FILE}: class ${c.name} has folder ${c.folder}; refused`);
  }
  return p;
}

/** A first look at each image's bytes: is it one the page reads? */
async function isImage(blob) {
  return sniffImage(new Uint8Array(await blob.slice(0, 65536).arrayBuffer())) != null;
}

/**
 * Reads a project zip, or a picked folder (Files with webkitRelativePath), as a project:
 * {name, classes, examples: [{id, label, role, name, src: Blob}], messages}. With project.json
 * its class order, names and roles are used; without, class folders in name order and about
 * 1 in 7 of each class held out. Throws ProjectFileError for a zip or folder refused as a whole.
 */
export async function importProject(input, { limits: custom = {}, name: fallbackName } = {}) {
  const limits = { ...LIMITS, ...custom };
  const list = input instanceof Blob ? [input] : Array.from(input);
  const isZip = list.length === 1 && (/\.zip$/i.test(list[0].name || '') || !list[0].webkitRelativePath);
  let where;
  let read;
  if (isZip) {
    where = list[0].name || 'the zip';
    read = await zipEntries(list[0], where, limits);
  } else {
    where = 'the folder';
    read = folderEntries(list, limits);
  }
  const { messages } = read;
  const root = commonRoot(read.files);
  const files = new Map();
  for (const f of read.files) {
    if (!f.path.startsWith(root)) messages.push(`${f.path}: outside the project's folder ${root}; skipped`);
    else files.set(f.path.slice(root.length), f);
  }
  const projectFile = files.get(PROJECT_FILE);
  files.delete(PROJECT_FILE);
  for (const [rel, f] of files) {
    if (rel.split('/').length !== 2) {
      messages.push(`${f.path}: not inside a class folder (<class>/<image>); skipped`);
      files.delete(rel);
    }
  }
  const good = new Map();
  for (const [rel, f] of files) {
    if (await isImage(f.blob)) good.set(rel, f);
    else messages.push(`${f.path}: not an image this page can read; skipped`);
  }
  let classes;
  let examples;
  const folderName = !isZip && list[0] && list[0].webkitRelativePath ? list[0].webkitRelativePath.split('/')[0] : '';
  let name = fallbackName || folderName || String(where).replace(/\.zip$/i, '');
  if (projectFile) {
    const p = parseProjectFile(await projectFile.blob.text(), where);
    if (typeof p.name === 'string' && p.name.trim()) name = p.name.trim();
    classes = p.classes.map((c) => c.name);
    const byFolder = new Map(p.classes.map((c) => [c.folder, c.name]));
    examples = [];
    const listed = new Set();
    const mentioned = new Set(); // rows skipped above are not added back as unlisted images
    for (const row of p.examples) {
      const path = row && typeof row.path === 'string' ? row.path : JSON.stringify(row);
      const folder = path.split('/')[0];
      const twice = mentioned.has(path);
      mentioned.add(path);
      if (!byFolder.has(folder)) messages.push(`${PROJECT_FILE}: ${path} is not in a class folder it lists; skipped`);
      else if (!ROLES.includes(row.role)) messages.push(`${PROJECT_FILE}: ${path} has role ${JSON.stringify(row.role)}, expected ${ROLES.join(', ')}; skipped`);
      else if (twice) messages.push(`${PROJECT_FILE}: ${path} is listed twice; skipped`);
      else if (!good.has(path)) {
        if (!files.has(path)) messages.push(`${PROJECT_FILE} names ${path}, which is not in ${where}; skipped`);
      } else {
        listed.add(path);
        examples.push({ path, label: byFolder.get(folder), role: row.role });
      }
    }
    for (const path of [...good.keys()].sort()) {
      const folder = path.split('/')[0];
      if (mentioned.has(path)) continue;
      if (!byFolder.has(folder)) messages.push(`${path}: its folder is not a class in ${PROJECT_FILE}; skipped`);
      else examples.push({ path, label: byFolder.get(folder), role: 'train' });
    }
  } else {
    classes = [...new Set([...good.keys()].map((p) => p.split('/')[0]))].sort();
    const seen = new Map();
    examples = [...good.keys()].sort().map((path) => {
      const label = path.split('/')[0];
      const k = seen.get(label) || 0;
      seen.set(label, k + 1);
      return { path, label, role: defaultRole(k) };
    });
  }
  if (classes.length === 0) throw new ProjectFileError(`${where} has no class folders with images in them`);
  return {
    name,
    classes,
    examples: examples.map((e) => ({ id: e.path, label: e.label, role: e.role, name: e.path.split('/').pop(), src: good.get(e.path).blob })),
    messages,
  };
}

// Teachable Machine's layout (model.json + weights.bin + metadata.json), both ways: the
// merged model in use written as its zip, and a Teachable Machine export (its three files
// or its zip) loaded as a model the page predicts with. The layout and its rules are
// pipeline/export_tm.py's: one layers model taking 224x224x3 in [-1, 1], float32 weights
// in one file, "Functional" named "Model" for the TF.js 1.3.1 that @teachablemachine/image pins.
import { strToU8, unzipSync, zipSync } from 'fflate';

export const IMAGE_SIZE = 224; // Teachable Machine and ml5 feed every image at this size
const TFJS_VERSION = '1.3.1'; // the TF.js @teachablemachine/image pins
const TM_PACKAGE = ['@teachablemachine/image', '0.8.5'];
const WEIGHTS_FILE = 'weights.bin';
const FILES = ['model.json', WEIGHTS_FILE, 'metadata.json'];

/**
 * What a Teachable Machine model is fed, in the page's manifest terms: the image stretched
 * to 224x224 (as ml5 does; TM crops the centre square first), then x / 127 - 1 as both
 * libraries scale it (the site uses 127.5).
 */
export const TM_INPUT = {
  input: { height: IMAGE_SIZE, width: IMAGE_SIZE, channels: 3 },
  preprocessing: { resize: { method: 'bilinear' }, fit: 'stretch', channel_order: 'RGB', mean: [0, 0, 0],
    scale: 1 / 127, offset: -1 },
  text: '224x224, x / 127 - 1 as Teachable Machine feeds it',
};

/** Why the site's models cannot be a Teachable Machine model, or '' if they can. */
export function notExpressible(manifest) {
  const p = manifest.preprocessing;
  const name = (manifest.backbone && manifest.backbone.name) || 'this backbone';
  const { height, width } = manifest.input;
  if (height !== IMAGE_SIZE || width !== IMAGE_SIZE) {
    return `cannot export ${name} as a Teachable Machine model: it takes ${height}x${width} images, `
      + `and Teachable Machine and ml5 always feed ${IMAGE_SIZE}x${IMAGE_SIZE}`;
  }
  const mean = p.mean || [0, 0, 0];
  if ((p.channel_order || 'RGB') !== 'RGB' || mean.some((m) => m !== 0)
      || Math.abs(p.scale - 1 / 127.5) > 1e-9 || p.offset !== -1) {
    return `cannot export ${name} as a Teachable Machine model: it expects ${p.channel_order} pixels scaled as `
      + `(x - [${mean.join(', ')}]) * ${Number(p.scale).toPrecision(6)} + ${p.offset}, `
      + 'and Teachable Machine and ml5 always feed RGB scaled to [-1, 1]';
  }
  return '';
}

/** The topology as TF.js 1.3.1 reads it: it knows a functional model only as "Model". */
export function forTfjs13(node) {
  if (Array.isArray(node)) return node.map(forTfjs13);
  if (node && typeof node === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(node)) out[k] = forTfjs13(v);
    if (out.class_name === 'Functional') out.class_name = 'Model';
    return out;
  }
  return node;
}

/** metadata.json with Teachable Machine's nine fields; ml5 reads `labels` from it. */
export function metadata(manifest, labels, headText) {
  const version = (manifest.versions && manifest.versions['tfjs-transfer']) || '';
  const backbone = manifest.backbone.name;
  const recipe = manifest.head.recipe;
  return {
    tfjsVersion: TFJS_VERSION,
    tmVersion: `tfjs-transfer ${version}`.trim(),
    packageVersion: TM_PACKAGE[1],
    packageName: TM_PACKAGE[0],
    modelName: `tfjs-transfer ${backbone} ${recipe}`,
    timeStamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    labels: [...labels],
    userMetadata: { fingerprint: manifest.fingerprint || null, backbone, recipe, head: headText },
    imageSize: IMAGE_SIZE,
  };
}

/**
 * The zip (Uint8Array) of a merged model (image in, probabilities out) in Teachable
 * Machine's layout. The weights and topology are TF.js' own save artifacts.
 */
export async function tmZip(tf, model, meta) {
  let artifacts = null;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const bad = artifacts.weightSpecs.filter((s) => s.dtype !== 'float32');
  if (bad.length) throw new Error(`weights ${bad.map((s) => s.name).join(', ')} are not float32`);
  const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  const modelJson = {
    modelTopology: forTfjs13(artifacts.modelTopology),
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
  };
  return zipSync({
    'model.json': strToU8(JSON.stringify(modelJson)),
    [WEIGHTS_FILE]: weights,
    'metadata.json': strToU8(JSON.stringify(meta, null, 2)),
  }, { level: 6 });
}

function baseName(path) {
  return path.split('/').pop();
}

/** The zip's entries by name; a name that climbs out (../, absolute) or repeats is refused. */
function unzipEntries(bytes, zipName) {
  let entries;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new Error(`${zipName} is not a readable zip: ${e.message}`);
  }
  const byName = new Map();
  for (const [path, data] of Object.entries(entries)) {
    const parts = path.replace(/\\/g, '/').split('/');
    if (path.startsWith('/') || /^[a-zA-Z]:/.test(path) || parts.includes('..')) {
      throw new Error(`${zipName}: the entry ${path} points outside the zip; refused`);
    }
    if (path.endsWith('/')) continue; // a folder
    const name = baseName(path.replace(/\\/g, '/'));
    if (byName.has(name)) throw new Error(`${zipName}: two entries named ${name}`);
    byName.set(name, new File([data], name));
  }
  return byName;
}

/** The export's files by name, from the picked files or the one zip among them. */
async function exportFiles(files) {
  const zips = files.filter((f) => f.name.toLowerCase().endsWith('.zip'));
  if (zips.length > 1) throw new Error('pick one Teachable Machine zip at a time');
  if (zips.length === 1) {
    const zip = zips[0];
    return { where: zip.name, files: unzipEntries(new Uint8Array(await zip.arrayBuffer()), zip.name) };
  }
  return { where: 'the picked files', files: new Map(files.map((f) => [f.name, f])) };
}

async function readJson(file, where) {
  try {
    return JSON.parse(await file.text());
  } catch (e) {
    throw new Error(`${where}: ${file.name} is not valid JSON: ${e.message}`);
  }
}

/**
 * Loads a Teachable Machine export (model.json + its weights + metadata.json, or their zip):
 * {model, labels, name, metadata}. Each missing or mismatched part is named.
 */
export async function loadTmExport(tf, fileList) {
  const { where, files } = await exportFiles(Array.from(fileList));
  for (const name of ['model.json', 'metadata.json']) {
    if (!files.has(name)) throw new Error(`${where} has no ${name}; a Teachable Machine export is ${FILES.join(' + ')}`);
  }
  const modelJson = await readJson(files.get('model.json'), where);
  const meta = await readJson(files.get('metadata.json'), where);
  const groups = Array.isArray(modelJson.weightsManifest) ? modelJson.weightsManifest : [];
  const paths = groups.flatMap((g) => g.paths || []);
  if (paths.length === 0) throw new Error(`${where}: model.json names no weight files`);
  const missing = paths.filter((p) => !files.has(baseName(p)));
  if (missing.length) throw new Error(`${where} has no ${missing.map(baseName).join(', ')}, which model.json names`);
  if (!Array.isArray(meta.labels) || meta.labels.length === 0 || !meta.labels.every((l) => typeof l === 'string')) {
    throw new Error(`${where}: metadata.json has no labels (a list of class names)`);
  }
  let model;
  try {
    model = await tf.loadLayersModel(tf.io.browserFiles([files.get('model.json'), ...paths.map((p) => files.get(baseName(p)))]));
  } catch (e) {
    throw new Error(`${where}: could not load model.json: ${e.message}`);
  }
  const inShape = model.inputs[0].shape.slice(1);
  const outShape = model.outputs[0].shape;
  const problem = inShape.join('x') !== `${IMAGE_SIZE}x${IMAGE_SIZE}x3`
    ? `model.json takes [${inShape.join(', ')}], expected a ${IMAGE_SIZE}x${IMAGE_SIZE}x3 image`
    : (outShape.length !== 2 || outShape[1] !== meta.labels.length)
      ? `model.json outputs ${outShape[1]} classes but metadata.json has ${meta.labels.length} labels`
      : '';
  if (problem) {
    model.dispose();
    throw new Error(`${where}: ${problem}`);
  }
  const name = where === 'the picked files' ? (meta.modelName || 'model.json') : where;
  return { model, labels: meta.labels, name, metadata: meta };
}

// Runs a built site's TF.js models in Node with pure-JS @tensorflow/tfjs (cpu backend),
// through the page's own preprocess.js, on pixels decoded by Python. The parity tests
// compare its output with Keras.
//   node web/tools/parity.mjs request.json > response.json
// request:  {"site": DIR, "images": [{"shape": [h, w, 3], "data": base64 uint8 RGB}]}
// response: {"backend", "probabilities": [[...]], "features": [base64 float32], "feature_shape"}
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { preprocess } from '../src/preprocess.js';

function fileHandler(modelJsonPath) {
  return {
    async load() {
      const json = JSON.parse(await readFile(modelJsonPath, 'utf8'));
      const dir = path.dirname(modelJsonPath);
      const weightSpecs = [];
      const buffers = [];
      for (const group of json.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) buffers.push(await readFile(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology,
        weightSpecs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
        format: json.format,
      };
    },
  };
}

const request = JSON.parse(await readFile(process.argv[2], 'utf8'));
await tf.setBackend('cpu');
const manifest = JSON.parse(await readFile(path.join(request.site, 'manifest.json'), 'utf8'));
const backbone = await tf.loadLayersModel(fileHandler(path.join(request.site, manifest.backbone.path)));
const head = await tf.loadLayersModel(fileHandler(path.join(request.site, manifest.head.path)));
const probabilities = [];
const features = [];
for (const image of request.images) {
  const bytes = Buffer.from(image.data, 'base64');
  const [f, p] = tf.tidy(() => {
    const pixels = tf.tensor3d(new Uint8Array(bytes), image.shape, 'int32');
    const feats = backbone.predict(preprocess(tf, pixels, manifest));
    return [feats.dataSync(), head.predict(feats).dataSync()];
  });
  probabilities.push(Array.from(p));
  features.push(Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64'));
}
process.stdout.write(JSON.stringify({
  backend: tf.getBackend(), tfjs: tf.version.tfjs, probabilities, features,
  feature_shape: manifest.backbone.output_shape,
}));

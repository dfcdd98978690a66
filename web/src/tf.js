// The TF.js the page needs: core (ops, engine, io) and layers (models). The
// @tensorflow/tfjs umbrella would add the converter (graph models), tfjs-data and the
// webgl and cpu backends to the first download; the page loads no graph models and no
// datasets, and backend.js imports webgl or cpu only when one is asked for or wasm fails.
export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-layers';

// The webgl backend as a chunk of its own (backend-webgl-*.js), imported by backend.js when first tried.
import '@tensorflow/tfjs-backend-webgl';

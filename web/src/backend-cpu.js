// The cpu backend as a chunk of its own (backend-cpu-*.js), imported by backend.js when first tried.
import '@tensorflow/tfjs-backend-cpu';

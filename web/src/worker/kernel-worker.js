// The helper worker of the page's training kernels (wasm/pool.js, wasm/kernelhelper.js).
import { serve } from '../wasm/kernelhelper.js';

self.onmessage = ({ data }) => serve(data);

// pool.js' helper in Node (worker_threads), for test/pool.test.mjs and tools/bench-pool.mjs.
import { parentPort } from 'node:worker_threads';
import { serve } from '../src/wasm/kernelhelper.js';

parentPort.once('message', (data) => serve(data));

// How many images go through the backbone per run when the page extracts a set's features,
// on the main thread (train.js extractFeatures) and in the TF.js worker (tfworker.js): one
// figure for training, evaluation and a Teachable Machine head's continued training.

/**
 * 32 beat 16 and 8 in every paired round on the main thread (bench/page_pair.py) and in the
 * worker (bench/worker_pair.py): fewer, larger products keep both wasm threads busy.
 */
export const FEATURE_BATCH = 32;

// The page's lazily imported chunks: the training code (training.js, with vega and vega-lite)
// and the evaluation code (evaluating.js, with tfjs-vis), each imported once, on first use or
// in idle time (prepare.js), so that the first visit loads neither.

/**
 * A chunk imported once, on first use; a failed import is tried again next time. `load` is
 * the literal import() for the bundler to split on; `what` names it in the error.
 */
export function lazyChunk(load, what) {
  let chunk = null;
  const get = () => {
    if (!chunk) {
      chunk = load().catch((e) => {
        chunk = null;
        throw new Error(`could not load ${what}: ${e.message}`);
      });
    }
    return chunk;
  };
  get.started = () => chunk != null;
  return get;
}

/** The training chunk (training.js: the training loop and its live curves). */
export const loadTraining = lazyChunk(() => import('./training.js'), 'the training code');

/** The evaluation chunk (evaluating.js: scoring and its tfjs-vis drawings). */
export const loadEvaluation = lazyChunk(() => import('./evaluating.js'), 'the evaluation code');

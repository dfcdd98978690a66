// Idle-time preparation after the page is ready, so that the first Train and evaluation do
// not stall the page: the training and evaluation chunks' imports (vega, vega-lite and tfjs-vis
// evaluate their modules) and the first drawing of a curve, a per-class table and a confusion
// matrix (V8 compiles a function at its first call, so a library's first chart costs several
// times a later one). Each step waits for an idle period; the drawings go to a hidden box.
// ?prepare=0 leaves it all to the first use (the before of `make bench`'s long-task figure).

/** Resolves in an idle period (requestIdleCallback; a plain task where there is none). */
export function whenIdle(timeout = 5000) {
  return new Promise((resolve) => {
    if (typeof requestIdleCallback === 'function') requestIdleCallback(() => resolve(), { timeout });
    else setTimeout(resolve, 0);
  });
}

export function prepareRequested(search) {
  return new URLSearchParams(search).get('prepare') !== '0';
}

/** An element laid out like the page's chart panels but out of sight; remove() it after. */
function hiddenBox() {
  const box = document.createElement('div');
  box.setAttribute('aria-hidden', 'true');
  Object.assign(box.style, { position: 'absolute', left: '-10000px', top: '0', width: '480px', visibility: 'hidden' });
  document.body.appendChild(box);
  return box;
}

/**
 * Runs the preparation once, each step after an idle period; a failure only costs the warm-up
 * (the first real use imports and reports again).
 * @param {{loadTraining(): Promise<object>, loadEvaluation(): Promise<object>}} chunks main.js' lazy chunks
 * @returns {Promise<void>} settled when done (window.tfjsTransfer.prepared, for tests and the bench)
 */
export async function prepareInIdle({ loadTraining, loadEvaluation }) {
  const boxes = [];
  const box = () => {
    boxes.push(hiddenBox());
    return boxes[boxes.length - 1];
  };
  try {
    // vega-lite, then vega, then the rest: the training chunk's libraries evaluate their
    // modules in three tasks, not one (esbuild gives each dynamic import a chunk of its own)
    await whenIdle();
    await import('vega-lite');
    await whenIdle();
    await import('vega');
    await whenIdle();
    const training = await loadTraining();
    await whenIdle();
    const evaluation = await loadEvaluation();
    await whenIdle();
    await training.warmCurves(box());
    await whenIdle();
    await evaluation.warmEvaluationCharts(box(), box());
  } catch (e) {
    console.info(`tfjs-transfer: idle-time preparation skipped (${e.message})`);
  } finally {
    boxes.forEach((b) => b.remove());
  }
}

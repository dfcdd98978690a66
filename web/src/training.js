// Everything only training needs, as one chunk the page imports when Train is first
// pressed (or a benchmark asks for the steps): the training loop, the Train button's work
// and the live curves with tfjs-vis and vega, over half of the page's code by bytes.
export { extractFeatures, trainHead } from './train.js';
export { trainProjectHead } from './trainer.js';
export { trainingCharts, warmCurves } from './charts.js';
export { continueTmHead } from './tmtrain.js';

// The evaluation chunk, imported when the page first evaluates (after training, or the
// Evaluate button): the scoring and its tfjs-vis drawings, so the first visit loads neither.
export { evaluateHead } from './evaluation.js';
export { drawEvaluation, warmEvaluationCharts } from './evaluation-charts.js';

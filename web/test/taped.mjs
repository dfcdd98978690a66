// A dense layer's forward product and kernel gradient under a gradient tape, shared by the
// tests of the page's training products (matmul.test.mjs, sparse.test.mjs).
import * as tf from '@tensorflow/tfjs';

/** relu(x @ w) and the gradient of sum(relu(x @ w)^2) for w, as dataSync arrays. */
export function taped(x, w) {
  const v = tf.variable(w);
  let y = null;
  const { value, grads } = tf.variableGrads(() => {
    const out = tf.relu(tf.matMul(x, v));
    y = tf.keep(out.clone());
    return tf.sum(tf.square(out));
  }, [v]);
  const result = { y: y.dataSync(), grad: grads[v.name].dataSync() };
  tf.dispose([y, value, grads[v.name], v]);
  return result;
}

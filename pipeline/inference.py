"""Running a Keras model over an array in fixed-size batches.

TensorFlow is imported inside the functions, so any module may import this one at its top
without paying for TF until it runs a model.
"""

from __future__ import annotations

import numpy as np


def predict_batches(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Run the model in fixed-size batches, without Keras' per-call predict() overhead."""
    import tensorflow as tf

    one, halves = _compiled(model)
    outs = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        outs.append((halves if len(batch) >= 2 else one)(tf.constant(batch)).numpy())
    return np.concatenate(outs).astype(np.float32)


def _compiled(model):
    """Traced functions kept on the model (so they die with it): the model on a batch, and on
    the batch's two halves as independent branches. TF's inter-op threads run the branches
    side by side, keeping both cores busy through MobileNet's small memory-bound layers, where
    one op's own threads do not."""
    import tensorflow as tf

    fns = getattr(model, "_tfjs_transfer_calls", None)
    if fns is None:
        def halves(x):
            half = tf.shape(x)[0] // 2
            return tf.concat([model(x[:half], training=False), model(x[half:], training=False)], 0)

        fns = (tf.function(lambda x: model(x, training=False), reduce_retracing=True),
               tf.function(halves, reduce_retracing=True))
        model._tfjs_transfer_calls = fns
    return fns

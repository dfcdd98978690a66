"""Phase 2 of the `finetune` recipe: unfreeze the backbone from a layer on and train it
together with the converged head, at a low learning rate, on augmented images.

What keeps a small-data fine-tune from wrecking ImageNet features (a naive 10 + 10 epoch
fine-tune scored 66% where the frozen head scored 92%):
  * the head is trained first on frozen features (phase 1), so early gradients are sane;
  * batch-norm layers stay frozen and run in inference mode: their ImageNet statistics
    are kept, not re-estimated from batches of a few dozen images;
  * a low learning rate decayed to zero and online augmentation (rotation, zoom, shift,
    brightness).
Training the whole backbone this way beat unfreezing only its last layers on sign digits
(about 98% against 90%, 5-fold CV), hence `fine_tune_from` 0 by default.

The pixels come from memory (an array) or, for datasets past memory, from the image files
(PixelFiles: decoded per batch through tf.data, with the same features.decoded).
"""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .heads import HeadTrainer, TrainResult, optimizer
from .inference import predict_batches


class PixelFiles:
    """Resized [0, 255] pixels of samples known to decode, read from their files when used:
    memory holds the sample list. Indexing with an index array gives the subset, as an
    array would."""

    def __init__(self, samples, prep):
        self.samples, self.prep = list(samples), prep

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx) -> "PixelFiles":
        return PixelFiles([self.samples[i] for i in np.asarray(idx, dtype=int)], self.prep)

    def chunks(self, size: int = 256):
        """The pixels `size` images at a time."""
        from .features import decoded

        for start in range(0, len(self), size):
            yield np.stack([decoded(s.path, self.prep) for s in self.samples[start:start + size]])

    def dataset(self, onehot: np.ndarray, batch_size: int, seed: int | None = None):
        """(pixels, one-hot label) batches decoded in parallel; shuffled each epoch when seeded."""
        import tensorflow as tf

        from .features import decoded

        paths = self.samples
        shape = (self.prep.height, self.prep.width, 3)

        def read(i):
            return decoded(paths[int(i)].path, self.prep).astype(np.float32)

        def load(i, label):
            x = tf.numpy_function(read, [i], tf.float32, stateful=False)
            x.set_shape(shape)
            return x, label

        ds = tf.data.Dataset.from_tensor_slices((np.arange(len(self)), onehot.astype(np.float32)))
        if seed is not None:
            ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def predict_pixels(model, pixels, batch_size: int = 32) -> np.ndarray:
    """predict_batches over an array or PixelFiles (a chunk of files at a time)."""
    if isinstance(pixels, PixelFiles):
        outs = [predict_batches(model, chunk, batch_size) for chunk in pixels.chunks()]
        return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
    return predict_batches(model, pixels, batch_size)


def first_trainable(model, fine_tune_from) -> int:
    """Index of the first layer to train: a layer name, an index, or -N for the last N layers."""
    n = len(model.layers)
    if isinstance(fine_tune_from, str) and not fine_tune_from.lstrip("-").isdigit():
        names = [l.name for l in model.layers]
        if fine_tune_from not in names:
            raise UserError(f"--fine-tune-from: no layer named '{fine_tune_from}'; layers are: {', '.join(names)}")
        return names.index(fine_tune_from)
    i = int(fine_tune_from)
    i = n + i if i < 0 else i
    if not 0 <= i < n:
        raise UserError(f"--fine-tune-from {fine_tune_from}: the backbone has {n} layers")
    return i


def set_trainable(model, start: int) -> int:
    """Freeze layers before `start` and every batch-norm layer; return the trainable count."""
    import tf_keras as keras

    model.trainable = True
    count = 0
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
        count += bool(layer.trainable and layer.weights)
    return count


def augmentation_layers(augmentation, seed: int):
    """The Keras layers matching augment.Augmentation, applied to [0, 255] pixels while training."""
    import tf_keras as keras

    layers = [keras.layers.RandomRotation(augmentation.rotation_degrees / 360.0, fill_mode="reflect", seed=seed),
              keras.layers.RandomZoom(augmentation.zoom, fill_mode="reflect", seed=seed + 1),
              keras.layers.RandomTranslation(augmentation.shift, augmentation.shift, fill_mode="reflect", seed=seed + 2),
              keras.layers.RandomBrightness(augmentation.brightness, value_range=(0, 255), seed=seed + 3)]
    if augmentation.flip:
        layers.insert(0, keras.layers.RandomFlip("horizontal", seed=seed + 4))
    return layers


def full_model(backbone, head, augmentation=None, seed: int = 0):
    """[0, 255] pixels -> (augment) -> normalize -> backbone (inference-mode BN) -> head."""
    import tensorflow as tf
    import tf_keras as keras

    prep = backbone.preprocessing
    mean = tf.constant(prep.mean, tf.float32)
    inputs = keras.Input((prep.height, prep.width, 3), name="pixels")
    x = inputs
    for layer in augmentation_layers(augmentation, seed) if augmentation else []:
        x = layer(x)
    if prep.channel_order == "BGR":
        x = keras.layers.Lambda(lambda t: tf.reverse(t, axis=[-1]))(x)
    x = keras.layers.Lambda(lambda t: (t - mean) * prep.scale + prep.offset, name="normalize")(x)
    x = backbone.model(x, training=False)
    return keras.Model(inputs, head(x), name="finetune")


def fine_tune(backbone, head, recipe, augmentation, pixels, y, n_classes, *, pixels_valid=None, y_valid=None,
              seed: int = 0, verbose: int = 1) -> dict:
    """Train backbone (from recipe.fine_tune_from on) and head together; returns the history."""
    import tf_keras as keras

    start = first_trainable(backbone.model, recipe.fine_tune_from)
    trainable = set_trainable(backbone.model, start)
    model = full_model(backbone, head, augmentation, seed)
    steps = recipe.fine_tune_epochs * -(-len(pixels) // recipe.batch_size)
    model.compile(optimizer(recipe, recipe.fine_tune_learning_rate, steps, recipe.fine_tune_lr_schedule), recipe.loss,
                  metrics=["accuracy"])
    has_valid = pixels_valid is not None and len(pixels_valid) > 0
    callbacks = []
    if has_valid and recipe.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=recipe.early_stopping,
                                                       restore_best_weights=True))
    onehot = keras.utils.to_categorical(y, n_classes)
    if isinstance(pixels, PixelFiles):
        valid = pixels_valid.dataset(keras.utils.to_categorical(y_valid, n_classes), 256) if has_valid else None
        hist = model.fit(pixels.dataset(onehot, recipe.batch_size, seed), epochs=recipe.fine_tune_epochs,
                         verbose=verbose, callbacks=callbacks, validation_data=valid)
    else:
        hist = model.fit(pixels, onehot, batch_size=recipe.batch_size,
                         epochs=recipe.fine_tune_epochs, shuffle=True, verbose=verbose, callbacks=callbacks,
                         validation_data=(pixels_valid, keras.utils.to_categorical(y_valid, n_classes)) if has_valid else None)
    backbone.model.trainable = False
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    history["trainable_layers"] = trainable
    history["first_trainable_layer"] = backbone.model.layers[start].name
    return history


def accuracy(backbone, head, pixels, y) -> float:
    model = full_model(backbone, head)
    return float(np.mean(predict_pixels(model, pixels, 32).argmax(1) == y))


class FineTuneTrainer:
    """Trains a fine-tuning recipe (see training.Trainer): phase 1 the head on frozen
    features (HeadTrainer), phase 2 backbone and head together on augmented pixels. Every
    run starts from the pretrained backbone, so cross-validation runs are independent."""

    trains_backbone = True

    def __init__(self, backbone, recipe, augmentation, features: np.ndarray | None, augmented: np.ndarray | None,
                 pixels: "np.ndarray | PixelFiles", y: np.ndarray, n_classes: int, *, head=None):
        """`head`: phase 1's trainer (default: a HeadTrainer on `features`; the build passes a
        streamed.StreamTrainer when the features stay in the cache)."""
        self.backbone, self.recipe, self.augmentation = backbone, recipe, augmentation
        self.pixels, self.y, self.n_classes = pixels, y, n_classes
        self.head = head or HeadTrainer(recipe, features, augmented, y, n_classes)
        self.pretrained = backbone.model.get_weights()

    def train(self, train_idx: np.ndarray, valid_idx: np.ndarray, seed: int, verbose: int) -> TrainResult:
        self.backbone.model.set_weights(self.pretrained)
        result = self.head.train(train_idx, valid_idx, seed, verbose)
        result.fine_tune_history = fine_tune(
            self.backbone, result.model, self.recipe, self.augmentation, self.pixels[train_idx], self.y[train_idx],
            self.n_classes, pixels_valid=self.pixels[valid_idx], y_valid=self.y[valid_idx], seed=seed,
            verbose=verbose)
        # the metrics describe the fine-tuned model; phase 1's stay beside them
        m = result.metrics
        m["head_only_train_accuracy"] = m["train_accuracy"]
        m["train_accuracy"] = self.accuracy(result, train_idx)
        if len(valid_idx):
            m["head_only_val_accuracy"] = m.get("val_accuracy")
            m["val_accuracy"] = self.accuracy(result, valid_idx)
        return result

    def accuracy(self, result: TrainResult, idx: np.ndarray) -> float:
        return accuracy(self.backbone, result.model, self.pixels[idx], self.y[idx])

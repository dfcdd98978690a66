"""Head architectures and training recipes, trained on cached backbone features.

A head is described by a list of layer specs (plain dicts). The same list builds the
Keras head here and the fresh head the page trains in the browser (manifest
`head.layers`), so both sides train the same recipe.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .errors import UserError


@dataclass(frozen=True)
class Recipe:
    name: str
    layers: tuple[dict, ...]      # hidden layers; the softmax output layer is added for the class count
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    loss: str = "categorical_crossentropy"
    label_smoothing: float = 0.0   # Python-side training only (the page trains with plain `loss`)
    lr_schedule: str = "constant"  # "constant" or "cosine" (decay to 0 over the run; Python-side only)
    validation_split: float = 0.2
    early_stopping: int = 0        # patience in epochs on val_loss; 0 = train all epochs
    # fine-tuning (phase 2), used by the `finetune` recipe
    fine_tune_from: str | int | None = None
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float = 1e-4
    fine_tune_lr_schedule: str = "constant"
    augment_copies: int = 0        # augmented views per training image (see augment.py)
    # augmentation strength, for the cached views and for fine-tuning's online augmentation
    rotation_degrees: float = 10.0
    zoom: float = 0.1
    shift: float = 0.05
    description: str = ""

    def hyperparameters(self) -> dict:
        d = asdict(self)
        for k in ("name", "layers", "description"):
            d.pop(k)
        return d


RECIPES: dict[str, Recipe] = {
    "tutorial": Recipe(
        "tutorial",
        ({"type": "flatten"}, {"type": "dense", "units": 10, "activation": "relu"}),
        epochs=20, validation_split=0.0,
        description="the original tutorial: flatten -> dense(10, relu) -> dense(softmax), Adam, 20 epochs"),
    "default": Recipe(
        "default",
        ({"type": "flatten"}, {"type": "dense", "units": 100, "activation": "relu"}, {"type": "dropout", "rate": 0.5}),
        epochs=15, learning_rate=3e-4, augment_copies=4,
        description="flatten -> dense(100, relu) -> dropout(0.5) -> dense(softmax), Adam 3e-4, trained on "
                    "each image and 4 augmented views: wide enough not to collapse"),
    "finetune": Recipe(
        "finetune",
        ({"type": "flatten"}, {"type": "dense", "units": 100, "activation": "relu"}, {"type": "dropout", "rate": 0.5}),
        epochs=15, learning_rate=3e-4, augment_copies=4, rotation_degrees=15.0, zoom=0.15, shift=0.1,
        fine_tune_from=0, fine_tune_epochs=20, fine_tune_learning_rate=2e-4, fine_tune_lr_schedule="cosine",
        description="the default head (stronger augmentation), then the whole backbone fine-tuned with it: "
                    "Adam 2e-4 decayed to 0 (cosine) over 20 epochs, augmented images, batch-norm frozen"),
    "pooled": Recipe(
        "pooled",
        ({"type": "global_average_pooling"}, {"type": "dropout", "rate": 0.2}),
        epochs=40, learning_rate=3e-3, augment_copies=4,
        description="global average pooling -> dropout(0.2) -> dense(softmax): few weights, generalises on small data"),
}


def output_layer(n_classes: int) -> dict:
    return {"type": "dense", "units": n_classes, "activation": "softmax"}


def head_layers(recipe: Recipe, n_classes: int) -> list[dict]:
    return [dict(l) for l in recipe.layers] + [output_layer(n_classes)]


def build_head(layers: list[dict], input_shape: tuple[int, ...], seed: int = 0):
    """Keras Sequential head from layer specs (see the module docstring)."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(name="head")
    model.add(keras.layers.InputLayer(input_shape=input_shape, name="features"))
    for i, spec in enumerate(layers):
        kind = spec["type"]
        name = f"head_{i}_{kind}"  # not Keras' per-process counter: the same head saves the same files
        if kind in ("flatten", "global_average_pooling") and len(input_shape) == 1:
            continue  # already a vector (e.g. InceptionV3's pooled 2048); TF.js' Flatten refuses rank 2
        if kind == "flatten":
            model.add(keras.layers.Flatten(name=name))
        elif kind == "global_average_pooling":
            model.add(keras.layers.GlobalAveragePooling2D(name=name))
        elif kind == "dropout":
            model.add(keras.layers.Dropout(spec["rate"], seed=seed + i, name=name))
        elif kind == "dense":
            reg = keras.regularizers.l2(spec["kernel_regularizer_l2"]) if spec.get("kernel_regularizer_l2") else None
            model.add(keras.layers.Dense(spec["units"], activation=spec.get("activation"), kernel_regularizer=reg,
                                         name=name))
        else:
            raise ValueError(f"unknown head layer type {kind!r}")
    return model


@dataclass
class TrainResult:
    model: object
    history: dict
    metrics: dict
    collapsed: bool
    attempts: int
    seed: int
    epochs_run: int
    notes: list[str] = field(default_factory=list)
    fine_tune_history: dict | None = None


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, valid): `fraction` of each class held out, at least one, never all."""
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * fraction))
        k = min(max(k, 1), len(idx) - 1) if fraction > 0 and len(idx) >= 2 else 0
        valid += list(idx[:k])
        train += list(idx[k:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(valid, dtype=int))


def is_collapsed(accuracy: float, y: np.ndarray, n_classes: int) -> bool:
    """Training accuracy no better than always answering the most common class."""
    majority = np.bincount(y, minlength=n_classes).max() / len(y)
    return bool(accuracy <= max(1.0 / n_classes, majority) + 0.05)


def train_head(recipe: Recipe, x: np.ndarray, y: np.ndarray, n_classes: int, *,
               x_valid: np.ndarray | None = None, y_valid: np.ndarray | None = None,
               seed: int = 0, verbose: int = 1, max_attempts: int = 3, callbacks=()) -> TrainResult:
    """Fit the head; a run stuck at chance is reported and retried with the next seed."""
    import tf_keras as keras

    if len(x) == 0:
        raise UserError("no training features")
    notes = []
    for attempt in range(max_attempts):
        s = seed + attempt
        model = build_head(head_layers(recipe, n_classes), x.shape[1:], s)
        steps = recipe.epochs * -(-len(x) // recipe.batch_size)
        model.compile(optimizer(recipe, recipe.learning_rate, steps), loss(recipe), metrics=["accuracy"])
        cbs = list(callbacks)
        has_valid = x_valid is not None and len(x_valid) > 0
        if recipe.early_stopping and has_valid:
            cbs.append(keras.callbacks.EarlyStopping("val_loss", patience=recipe.early_stopping,
                                                     restore_best_weights=True))
        hist = model.fit(x, keras.utils.to_categorical(y, n_classes), batch_size=recipe.batch_size,
                         epochs=recipe.epochs, shuffle=True, verbose=verbose, callbacks=cbs,
                         validation_data=(x_valid, keras.utils.to_categorical(y_valid, n_classes)) if has_valid else None)
        metrics = evaluate_head(model, x, y, n_classes, "train")
        if has_valid:
            metrics.update(evaluate_head(model, x_valid, y_valid, n_classes, "val"))
        collapsed = is_collapsed(metrics["train_accuracy"], y, n_classes)
        if not collapsed:
            break
        msg = (f"training collapsed (seed {s}: train accuracy {metrics['train_accuracy']:.2f}, "
               f"chance {1 / n_classes:.2f})")
        notes.append(msg)
        print(f"warning: {msg}" + ("; retrying with the next seed" if attempt + 1 < max_attempts else ""),
              file=sys.stderr)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return TrainResult(model, history, metrics, collapsed, attempt + 1, s, len(history.get("loss", [])), notes)


def learning_rate(schedule: str, base: float, steps: int):
    """A constant learning rate, or a cosine decay from `base` to 0 over `steps` batches."""
    import tf_keras as keras

    if schedule == "constant":
        return base
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(base, max(int(steps), 1))
    raise UserError(f"unknown learning-rate schedule {schedule!r}; choose constant or cosine")


def optimizer(recipe: Recipe, base: float, steps: int, schedule: str | None = None):
    import tf_keras as keras

    if recipe.optimizer != "adam":
        raise UserError(f"unsupported optimizer {recipe.optimizer!r}")
    return keras.optimizers.Adam(learning_rate(schedule or recipe.lr_schedule, base, steps))


def loss(recipe: Recipe):
    """The Keras loss: the recipe's loss name, with label smoothing when the recipe asks for it."""
    import tf_keras as keras

    if recipe.label_smoothing and recipe.loss == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
    return recipe.loss


def evaluate_head(model, x, y, n_classes, prefix) -> dict:
    p = np.concatenate([model(x[i:i + 1024], training=False).numpy() for i in range(0, len(x), 1024)])
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], eps, 1))))
    return {f"{prefix}_accuracy": float(np.mean(p.argmax(1) == y)), f"{prefix}_loss": loss, f"{prefix}_count": int(len(y))}


def resolve_recipe(name: str, **overrides) -> Recipe:
    if name not in RECIPES:
        raise UserError(f"unknown recipe '{name}'; choose one of: {', '.join(RECIPES)}")
    return replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None})


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number per sample, each class dealt round-robin after a seeded shuffle."""
    if folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}")
    smallest = np.bincount(y).min()
    if smallest < folds:
        raise UserError(f"{folds}-fold cross-validation needs at least {folds} images per class; "
                        f"the smallest class has {smallest}")
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(y), dtype=int)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % folds
    return fold_of


def with_views(x: np.ndarray, augmented: np.ndarray | None, y: np.ndarray, idx: np.ndarray):
    """Training set of the originals at idx plus their augmented views."""
    if augmented is None or len(augmented) == 0:
        return x[idx], y[idx]
    xs = np.concatenate([x[idx], *augmented[:, idx]])
    return xs, np.tile(y[idx], 1 + len(augmented))


def cross_validate(score_fold, y: np.ndarray, folds: int, seed: int = 0, verbose: int = 0) -> dict:
    """Accuracy on each held-out fold; score_fold(train_idx, test_idx, seed) trains and scores one."""
    import time

    fold_of = stratified_folds(y, folds, seed)
    accuracies, t0 = [], time.perf_counter()
    for k in range(folds):
        accuracies.append(score_fold(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k), seed + k))
        if verbose:
            print(f"fold {k + 1}/{folds}: accuracy {accuracies[-1]:.3f}", flush=True)
    return {"folds": folds, "accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
            "per_fold": [float(a) for a in accuracies], "seconds_per_fold": (time.perf_counter() - t0) / folds}


def head_fold_scorer(recipe: Recipe, x: np.ndarray, augmented: np.ndarray | None, y: np.ndarray, n_classes: int):
    """Fold scorer for frozen-feature recipes: train on the fold's views, score its held-out originals."""
    def score(train_idx, test_idx, seed):
        xt, yt = with_views(x, augmented, y, train_idx)
        result = train_head(recipe, xt, yt, n_classes, seed=seed, verbose=0)
        return evaluate_head(result.model, x[test_idx], y[test_idx], n_classes, "test")["test_accuracy"]
    return score

"""Head architectures and training recipes, trained on cached backbone features.

A head is described by a list of layer specs (plain dicts). The same list builds the
Keras head here and the fresh head the page trains in the browser (manifest
`head.layers`), so both sides train the same recipe.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from . import augment
from .errors import UserError


def _option(default, cli_type, help: str | None = None):
    """A recipe setting that `tfjs-transfer build --kebab-name VALUE` overrides (cli.py adds
    the flag from this field: a new knob is declared here and nowhere else)."""
    return field(default=default, metadata={"cli_type": cli_type, "help": help})


@dataclass(frozen=True)
class Recipe:
    name: str
    layers: tuple[dict, ...]      # hidden layers; the softmax output layer is added for the class count
    epochs: int = _option(20, int)
    batch_size: int = _option(32, int)
    learning_rate: float = _option(1e-3, float)
    optimizer: str = "adam"
    loss: str = "categorical_crossentropy"
    lr_schedule: str = "constant"  # "constant" or "cosine" (decay to 0 over the run; Python-side only)
    validation_split: float = _option(0.2, float, "fraction held out per class (0 disables)")
    early_stopping: int = _option(0, int, "patience in epochs on validation loss (0: off)")
    # fine-tuning (phase 2): 0 layers from the start = the whole backbone, batch-norms frozen
    fine_tune_from: str | int = _option(0, str, "unfreeze the backbone from this layer name or index on "
                                        "(-N: the last N layers); default 0, the whole backbone")
    fine_tune_epochs: int = _option(0, int, "phase-2 epochs (0: head only)")
    fine_tune_learning_rate: float = _option(1e-4, float)
    fine_tune_lr_schedule: str = "constant"
    augment_copies: int = _option(0, int, "augmented views per training image (0 disables)")
    # augmentation strength, for the cached views and for fine-tuning's online augmentation
    rotation_degrees: float = 10.0
    zoom: float = 0.1
    shift: float = 0.05
    description: str = ""

    def augmentation(self, flip: bool) -> augment.Augmentation | None:
        """The augmented views this recipe trains on (cached for the head, online when fine-tuning)."""
        if not (self.augment_copies or self.fine_tune_epochs):
            return None
        return augment.Augmentation(copies=self.augment_copies, rotation_degrees=self.rotation_degrees,
                                    zoom=self.zoom, shift=self.shift, flip=flip)

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
        fine_tune_epochs=20, fine_tune_learning_rate=2e-4, fine_tune_lr_schedule="cosine",
        description="the default head (stronger augmentation), then the whole backbone fine-tuned with it: "
                    "Adam 2e-4 decayed to 0 (cosine) over 20 epochs, augmented images, batch-norm frozen"),
    "pooled": Recipe(
        "pooled",
        ({"type": "global_average_pooling"}, {"type": "dropout", "rate": 0.2}),
        epochs=40, learning_rate=3e-3, augment_copies=4,
        description="global average pooling -> dropout(0.2) -> dense(softmax): few weights, generalises on small data"),
}


def output_layer(n_classes: int | None) -> dict:
    """The softmax over the classes; n_classes None: decided later (a backbone-only site's
    page sizes it to the classes made there)."""
    return {"type": "dense", "units": n_classes, "activation": "softmax"}


def head_layers(recipe: Recipe, n_classes: int | None) -> list[dict]:
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
            model.add(keras.layers.Dense(spec["units"], activation=spec.get("activation"), name=name))
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


def validation_split(y: np.ndarray, split_of: np.ndarray, fraction: float, seed: int):
    """Indices (train, valid) among the non-test images, and a note saying how they were
    chosen: given valid images win (a valid/ folder, a project's "valid" role); else a
    stratified hold-out of `fraction` when every class can spare images (at least 5 each)."""
    train = np.flatnonzero(split_of == "train")
    valid = np.flatnonzero(split_of == "valid")
    if len(valid):
        return train, valid, " (as given: valid/ folder or project roles)"
    if fraction <= 0:
        return train, valid, ""
    counts = np.bincount(y[train])
    if counts.min() < 5:
        return train, valid, " (no validation split: a class has fewer than 5 images)"
    tr, va = stratified_split(y[train], fraction, seed)
    return train[tr], train[va], f" (stratified {fraction:.0%} hold-out)"


def image_roles(split_of: np.ndarray, valid_idx: np.ndarray) -> list[str]:
    """Each image's part in training: "test" (test/ folder), "valid" (held out) or "train"."""
    roles = np.where(split_of == "test", "test", "train").astype(object)
    roles[valid_idx] = "valid"
    return [str(r) for r in roles]


def kfold_assignment(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cross-validation part (0..k-1) per sample, each class dealt round-robin after a seeded shuffle."""
    if k < 2:
        raise UserError(f"--folds must be at least 2, got {k}")
    smallest = np.bincount(y).min()
    if smallest < k:
        raise UserError(f"{k}-fold cross-validation needs at least {k} images per class; "
                        f"the smallest class has {smallest}")
    rng = np.random.default_rng(seed)
    part_of = np.zeros(len(y), dtype=int)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        part_of[idx] = np.arange(len(idx)) % k
    return part_of


def is_collapsed(accuracy: float, y: np.ndarray, n_classes: int) -> bool:
    """Training accuracy no better than always answering the most common class."""
    majority = np.bincount(y, minlength=n_classes).max() / len(y)
    return bool(accuracy <= max(1.0 / n_classes, majority) + 0.05)


def train_head(recipe: Recipe, x: np.ndarray, y: np.ndarray, n_classes: int, *,
               x_valid: np.ndarray | None = None, y_valid: np.ndarray | None = None,
               seed: int = 0, verbose: int = 1, max_attempts: int = 3, callbacks=()) -> TrainResult:
    """Fit the head on features in memory; a run stuck at chance is reported and retried with the next seed."""
    import tf_keras as keras

    if len(x) == 0:
        raise UserError("no training features")
    has_valid = x_valid is not None and len(x_valid) > 0

    def fit(model, seed, cbs):
        return model.fit(x, keras.utils.to_categorical(y, n_classes), batch_size=recipe.batch_size,
                         epochs=recipe.epochs, shuffle=True, verbose=verbose, callbacks=cbs,
                         validation_data=(x_valid, keras.utils.to_categorical(y_valid, n_classes)) if has_valid else None)

    def score(model):
        metrics = evaluate_head(model, x, y, n_classes, "train")
        if has_valid:
            metrics.update(evaluate_head(model, x_valid, y_valid, n_classes, "val"))
        return metrics

    return fit_with_retries(recipe, n_classes, x.shape[1:], y, len(x), fit, score, seed=seed,
                            max_attempts=max_attempts, callbacks=callbacks, has_valid=has_valid)


def fit_with_retries(recipe: Recipe, n_classes: int, feature_shape, train_labels: np.ndarray, n_train: int,
                     fit, score, *, seed: int, max_attempts: int, callbacks, has_valid: bool) -> TrainResult:
    """A fresh head fitted by fit(model, seed, callbacks) and scored by score(model) -> metrics; a
    run whose training accuracy is no better than chance is reported and retried with the next
    seed. Shared by training from memory (train_head) and from the cache (streamed.py)."""
    import tf_keras as keras

    notes = []
    for attempt in range(max_attempts):
        s = seed + attempt
        model = build_head(head_layers(recipe, n_classes), feature_shape, s)
        steps = recipe.epochs * -(-n_train // recipe.batch_size)
        model.compile(optimizer(recipe, recipe.learning_rate, steps), recipe.loss, metrics=["accuracy"])
        cbs = list(callbacks)
        if recipe.early_stopping and has_valid:
            cbs.append(keras.callbacks.EarlyStopping("val_loss", patience=recipe.early_stopping,
                                                     restore_best_weights=True))
        hist = fit(model, s, cbs)
        metrics = score(model)
        collapsed = is_collapsed(metrics["train_accuracy"], train_labels, n_classes)
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


def evaluate_head(model, x, y, n_classes, prefix) -> dict:
    p = np.concatenate([model(x[i:i + 1024], training=False).numpy() for i in range(0, len(x), 1024)])
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], eps, 1))))
    return {f"{prefix}_accuracy": float(np.mean(p.argmax(1) == y)), f"{prefix}_loss": loss, f"{prefix}_count": int(len(y))}


def overridable_fields() -> list:
    """The Recipe fields `tfjs-transfer build` takes as --kebab-name options."""
    return [f for f in fields(Recipe) if "cli_type" in f.metadata]


def resolve_recipe(name: str, **overrides) -> Recipe:
    """The named recipe with the given settings (None: keep the recipe's) replaced."""
    if name not in RECIPES:
        raise UserError(f"unknown recipe '{name}'; choose one of: {', '.join(RECIPES)}")
    known = {f.name for f in overridable_fields()}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UserError(f"recipe settings {', '.join(unknown)} cannot be overridden; these can: {', '.join(sorted(known))}")
    return replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None})


def with_views(x: np.ndarray, augmented: np.ndarray | None, y: np.ndarray, idx: np.ndarray):
    """Training set of the originals at idx plus their augmented views."""
    if augmented is None or len(augmented) == 0:
        return x[idx], y[idx]
    xs = np.concatenate([x[idx], *augmented[:, idx]])
    return xs, np.tile(y[idx], 1 + len(augmented))


class HeadTrainer:
    """Trains a recipe's head on frozen features (see training.Trainer)."""

    trains_backbone = False

    def __init__(self, recipe: Recipe, features: np.ndarray, augmented: np.ndarray | None, y: np.ndarray,
                 n_classes: int):
        self.recipe, self.features, self.augmented, self.y, self.n_classes = recipe, features, augmented, y, n_classes

    def train(self, train_idx: np.ndarray, valid_idx: np.ndarray, seed: int, verbose: int) -> TrainResult:
        x, y = with_views(self.features, self.augmented, self.y, train_idx)
        result = train_head(self.recipe, x, y, self.n_classes, x_valid=self.features[valid_idx],
                            y_valid=self.y[valid_idx], seed=seed, verbose=verbose)
        # report on the original images, not on their augmented views
        result.metrics.update(evaluate_head(result.model, self.features[train_idx], self.y[train_idx],
                                            self.n_classes, "train"))
        return result

    def accuracy(self, result: TrainResult, idx: np.ndarray) -> float:
        return evaluate_head(result.model, self.features[idx], self.y[idx], self.n_classes, "x")["x_accuracy"]

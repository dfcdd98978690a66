"""One interface for training a recipe, whatever it trains: the head on frozen features
(heads.HeadTrainer) or, for fine-tuning recipes, the backbone with it
(finetune.FineTuneTrainer). The build and cross-validation only talk to a Trainer.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from . import features, finetune, heads, streamed
from .heads import Recipe, TrainResult


class Trainer(Protocol):
    recipe: Recipe
    trains_backbone: bool   # True: the backbone's weights change, so the served one is made again after

    def train(self, train_idx: np.ndarray, valid_idx: np.ndarray, seed: int, verbose: int) -> TrainResult:
        """A model trained on the images at train_idx (validated on valid_idx); its metrics
        describe the returned model on those images."""

    def accuracy(self, result: TrainResult, idx: np.ndarray) -> float:
        """The trained model's accuracy on the original images at idx."""


def make_trainer(recipe: Recipe, backbone, feats, y: np.ndarray, n_classes: int, augmentation) -> Trainer:
    """The trainer for `recipe`, over the images of `feats` (features.extract's result; with its
    features left in the cache, streamed.StreamTrainer reads them from there)."""
    head = None if feats.in_memory else streamed.StreamTrainer(recipe, feats.cache, feats.digests, y, n_classes)
    if recipe.fine_tune_epochs:  # pixels as the features: in memory, or read from the files when used
        pixels = (features.load_pixels(feats.samples, backbone.preprocessing) if feats.in_memory
                  else finetune.PixelFiles(feats.samples, backbone.preprocessing))
        return finetune.FineTuneTrainer(backbone, recipe, augmentation, feats.features, feats.augmented, pixels,
                                        y, n_classes, head=head)
    if head is not None:
        return head
    return heads.HeadTrainer(recipe, feats.features, feats.augmented, y, n_classes)


def cross_validate(trainer: Trainer, y: np.ndarray, pool: np.ndarray, k: int, seed: int = 0,
                   verbose: int = 0) -> dict:
    """K-fold cross-validated accuracy of the trainer's recipe over the images at `pool`:
    each part is held out once while the rest trains (with its own early-stopping hold-out
    when the recipe stops early)."""
    recipe = trainer.recipe
    part_of = heads.kfold_assignment(y[pool], k, seed)
    accuracies, t0 = [], time.perf_counter()
    for part in range(k):
        train, held_out, s = pool[part_of != part], pool[part_of == part], seed + part
        valid = train[:0]
        if recipe.early_stopping and recipe.validation_split > 0:
            a, b = heads.stratified_split(y[train], recipe.validation_split, s)
            train, valid = train[a], train[b]
        accuracies.append(trainer.accuracy(trainer.train(train, valid, s, 0), held_out))
        if verbose:
            print(f"fold {part + 1}/{k}: accuracy {accuracies[-1]:.3f}", flush=True)
    return {"folds": k, "accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
            "per_fold": [float(a) for a in accuracies], "seconds_per_fold": (time.perf_counter() - t0) / k}

import numpy as np
import pytest

from tfjs_transfer import heads
from tfjs_transfer.errors import UserError


def test_tutorial_recipe_is_the_original_head():
    r = heads.RECIPES["tutorial"]
    assert heads.head_layers(r, 3) == [
        {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "relu"},
        {"type": "dense", "units": 3, "activation": "softmax"}]
    assert (r.epochs, r.optimizer, r.loss) == (20, "adam", "categorical_crossentropy")


def test_build_head_follows_the_specs():
    m = heads.build_head(heads.head_layers(heads.RECIPES["pooled"], 4), (7, 7, 16))
    assert [type(l).__name__ for l in m.layers] == ["GlobalAveragePooling2D", "Dropout", "Dense"]
    assert m.output_shape == (None, 4)


def test_stratified_split_holds_out_each_class():
    y = np.array([0] * 10 + [1] * 5 + [2] * 2)
    tr, va = heads.stratified_split(y, 0.2, seed=0)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(y)))
    assert np.bincount(y[va]).tolist() == [2, 1, 1]
    assert heads.stratified_split(y, 0.2, 0)[1].tolist() == va.tolist()  # same seed, same split


def test_collapse_is_accuracy_at_chance_or_majority():
    y = np.array([0] * 8 + [1] * 2)
    assert heads.is_collapsed(0.8, y, 2)       # majority class only
    assert not heads.is_collapsed(0.95, y, 2)
    assert heads.is_collapsed(0.1, np.arange(10), 10)


def _blobs(n_classes=3, per=20, dim=(2, 2, 4), seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (n_classes, *dim))
    x = np.concatenate([c + rng.normal(0, 0.5, (per, *dim)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(n_classes), per)


@pytest.mark.parametrize("recipe", ["default", "pooled", "tutorial"])
def test_every_recipe_learns_separable_features(recipe):
    x, y = _blobs()
    r = heads.train_head(heads.resolve_recipe(recipe, epochs=40), x, y, 3, verbose=0)
    assert r.metrics["train_accuracy"] > 0.9 and not r.collapsed


def test_a_collapsed_run_is_detected_and_retried():
    x, y = _blobs()
    dead = heads.Recipe("dead", ({"type": "flatten"},), epochs=1, learning_rate=0.0)
    r = heads.train_head(dead, x * 0, y, 3, verbose=0, max_attempts=2)
    assert r.collapsed and r.attempts == 2 and len(r.notes) == 2


def test_unknown_recipe_lists_the_choices():
    with pytest.raises(UserError, match="tutorial"):
        heads.resolve_recipe("fancy")


def test_vector_features_skip_flatten_and_pooling():
    """InceptionV3's pooled features are already a vector: TF.js' Flatten refuses rank 2."""
    for layers in (heads.head_layers(heads.RECIPES["default"], 3), heads.head_layers(heads.RECIPES["pooled"], 3)):
        model = heads.build_head(layers, (2048,))
        kinds = [type(l).__name__ for l in model.layers]
        assert "Flatten" not in kinds and "GlobalAveragePooling2D" not in kinds
        assert model.output_shape == (None, 3)


def test_fine_tuning_starts_at_layer_0_unless_told_otherwise():
    """One rule for every recipe: --fine-tune-epochs N trains the whole backbone (batch-norms
    frozen), as the finetune recipe does; --fine-tune-from narrows it."""
    assert all(r.fine_tune_from == 0 for r in heads.RECIPES.values())
    assert heads.resolve_recipe("default", fine_tune_epochs=2).fine_tune_from == 0
    assert heads.resolve_recipe("default", fine_tune_epochs=2, fine_tune_from="-12").fine_tune_from == "-12"


def test_only_declared_settings_can_be_overridden():
    with pytest.raises(UserError, match="layers"):
        heads.resolve_recipe("default", layers=())


def test_validation_split_prefers_a_valid_folder_then_a_stratified_hold_out():
    y = np.array([0] * 6 + [1] * 6 + [0, 1])
    split_of = np.array(["train"] * 12 + ["test"] * 2)
    tr, va, note = heads.validation_split(y, split_of, 0.2, seed=0)
    assert "stratified" in note and np.bincount(y[va]).tolist() == [1, 1]
    assert sorted([*tr, *va]) == list(range(12))  # test images are never trained or validated on
    split_of[[0, 6]] = "valid"
    tr, va, note = heads.validation_split(y, split_of, 0.2, seed=0)
    assert va.tolist() == [0, 6] and "valid/" in note
    small = np.array([0] * 4 + [1] * 4)
    assert len(heads.validation_split(small, np.array(["train"] * 8), 0.2, 0)[1]) == 0


def test_image_roles_follow_the_split_used():
    split_of = np.array(["train", "train", "valid", "test", "train"])
    assert heads.image_roles(split_of, np.array([1, 2])) == ["train", "valid", "valid", "test", "train"]


def test_kfold_assignment_deals_each_class_evenly():
    y = np.array([0] * 6 + [1] * 9)
    part = heads.kfold_assignment(y, 3, seed=0)
    for c in (0, 1):
        assert np.bincount(part[y == c]).tolist() == [np.sum(y == c) // 3] * 3
    with pytest.raises(UserError, match="at least 7 images per class"):
        heads.kfold_assignment(y, 7, 0)


def test_head_trainer_reports_on_the_original_images():
    x, y = _blobs()
    trainer = heads.HeadTrainer(heads.resolve_recipe("pooled", epochs=30), x, x[None] + 0.01, y, 3)
    idx = np.arange(len(y))
    result = trainer.train(idx[::2], idx[1::2], seed=0, verbose=0)
    assert result.metrics["train_count"] == len(idx[::2]) and result.metrics["val_count"] == len(idx[1::2])
    assert trainer.accuracy(result, idx[1::2]) == pytest.approx(result.metrics["val_accuracy"])

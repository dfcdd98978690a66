import numpy as np
import pytest

from tfjs_transfer import inference

from .conftest import ROOT


@pytest.fixture(scope="module")
def model():
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)  # inference mode must be used: training=False
    out = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out)


def direct(model, x):
    return model(x, training=False).numpy()


@pytest.mark.parametrize("n, batch_size", [(7, 1), (7, 2), (7, 3), (7, 32), (8, 4), (1, 32), (1, 1)])
def test_batches_of_any_size_equal_the_model_on_the_whole_array(model, n, batch_size):
    x = np.random.default_rng(n * 100 + batch_size).normal(size=(n, 6, 6, 3)).astype(np.float32)
    got = inference.predict_batches(model, x, batch_size)
    assert got.shape == (n, 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, direct(model, x), rtol=1e-5, atol=1e-6)


def test_a_last_batch_of_one_is_kept(model):
    # 5 = 2 + 2 + 1: the lone last image goes through the one-branch call, in its place
    x = np.random.default_rng(5).normal(size=(5, 6, 6, 3)).astype(np.float32)
    got = inference.predict_batches(model, x, 2)
    np.testing.assert_allclose(got[-1:], direct(model, x[-1:]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, direct(model, x), rtol=1e-5, atol=1e-6)


def test_traced_calls_are_kept_on_the_model(model):
    assert inference._compiled(model) is inference._compiled(model)


def test_importing_it_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, tfjs_transfer.inference; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"

"""bench/engines.py: an engine that is not installed is a row that says so, and the TFLite
runner gives the Keras model's outputs (the figures themselves come from `make bench`)."""

import numpy as np
import pytest

from bench import engines
from bench import run


def test_a_missing_engine_is_reported_not_installed(capsys):
    assert not engines.installed("no_such_engine_for_tfjs_transfer")
    ok = {"status": "ok", "images_per_s_batch32": 900.0, "images_per_cpu_s": 480.0, "fraction_of_peak": 0.25,
          "vs_tf": 1.0, "max_abs_diff_vs_keras": 1.5e-3, "prepare_s": 2.0}
    result = {"threads": 2, "tolerance": 5e-3, "matmul_gflops": 300.0, "conversion": {"tflite_convert_s": 5.0},
              "engines": {"TF": ok, "OpenVINO": {"status": "not installed"}}}
    run.print_engines(run._median_engines([result, result]))
    out = capsys.readouterr().out
    assert "OpenVINO" in out and "not installed" in out
    assert "900" in out and "25%" in out and "1.00x" in out


@pytest.mark.slow
def test_tflite_runner_matches_keras():
    import tf_keras as keras

    inp = keras.Input((8, 8, 3))
    out = keras.layers.ReLU(6.0)(keras.layers.DepthwiseConv2D(3, padding="same")(
        keras.layers.Conv2D(4, 3, padding="same")(inp)))
    model = keras.Model(inp, out)
    x = np.random.RandomState(0).uniform(-1, 1, (engines.BATCH, 8, 8, 3)).astype(np.float32)
    run_tflite = engines.tflite_runner(engines.to_tflite(model), threads=1)
    np.testing.assert_allclose(run_tflite(x), model.predict(x, verbose=0), atol=1e-5)

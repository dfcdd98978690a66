"""bench/xnnpack.py: rounds combine as medians, a variant that failed is a row that says so,
and the split runners give the one-interpreter outputs (the figures come from `make bench`)."""

import numpy as np
import pytest

from bench import xnnpack


def test_rounds_are_medians_and_a_failed_variant_says_so():
    def rnd(ips):
        return {"threads": 2, "reps": 3, "matmul_gflops": 300.0, "tflite_convert_s": 5.0, "tolerance": 5e-3,
                "variants": {"TF": {"status": "ok", "images_per_s": ips, "fraction_of_peak": ips / 3000,
                                    "vs_tf": 1.0, "max_abs_diff_vs_keras": 1.5e-3, "batch": 32},
                             "litert": {"status": "failed: ImportError: no module"}}}
    r = xnnpack.median_runs([rnd(600.0), rnd(900.0), rnd(800.0)])
    assert r["variants"]["TF"]["images_per_s"] == 800.0 and r["reps"] == 9
    out = xnnpack.report(r)
    assert "800" in out and "27%" in out and "1.00x" in out and "failed: ImportError" in out


@pytest.mark.slow
def test_split_and_alternate_runners_give_the_whole_batch_outputs():
    import tf_keras as keras

    from tfjs_transfer import tflite_engine

    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.ReLU(6.0)(keras.layers.Conv2D(4, 3, padding="same")(inp)))
    blob = tflite_engine.convert(model)
    x = np.random.RandomState(0).uniform(-1, 1, (32, 8, 8, 3)).astype(np.float32)
    whole = xnnpack.interpreter(blob, 1, 32)(x)
    np.testing.assert_allclose(xnnpack.split_runner(blob, 2, 32, "tensorflow")(x), whole, atol=1e-6)
    np.testing.assert_allclose(xnnpack.alternate_runner(blob, 2, 32, "tensorflow")([x, x])[32:], whole, atol=1e-6)

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


def test_lane_layers_split_a_chain_by_conv_and_the_report_says_where_time_goes():
    import tf_keras as keras

    inp = keras.Input((16, 16, 3))
    t = keras.layers.ReLU(6.0)(keras.layers.Conv2D(8, 3, strides=2, padding="same")(inp))
    t = keras.layers.ReLU(6.0)(keras.layers.DepthwiseConv2D(3, padding="same")(t))
    t = keras.layers.ReLU(6.0)(keras.layers.Conv2D(16, 1)(t))
    model = keras.Model(inp, t)
    x = np.random.RandomState(0).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    ll = xnnpack.lane_layers(model, x, 2)
    assert [r["name"] for r in ll["layers"]] == [model.layers[i].name for i in (1, 3, 5)]  # each conv with its ReLU
    assert set(ll["kinds"]) == {"Conv2D 3x3 (first)", "DepthwiseConv2D 3x3", "Conv2D 1x1 (pointwise)"}
    assert abs(sum(k["time_share"] for k in ll["kinds"].values()) - 1) < 1e-9
    assert ll["core_peak_gflops"] > 0 and all(r["fraction_of_core_peak"] > 0 for r in ll["layers"])
    assert ll["lane_run_ms"] >= ll["invoke_ms"] * 0.5  # the lane's run holds an invoke
    out = xnnpack.lane_report(ll)
    assert "One lane by layer" in out and "DepthwiseConv2D 3x3" in out and "pieces of 2" in out

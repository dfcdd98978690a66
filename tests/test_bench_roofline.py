"""bench/python.py's per-layer roofline: the FLOPs, least bytes and floor it assigns each layer
(the figures themselves come from `make bench`)."""

import numpy as np
import pytest

from bench import python as py


def test_roofline_counts_each_conv_with_its_activation():
    import tf_keras as keras

    inp = keras.Input((8, 8, 3))
    h = keras.layers.ReLU(6.0)(keras.layers.Conv2D(4, 3, padding="same", name="full")(inp))
    out = keras.layers.ReLU(6.0)(keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(h))
    model = keras.Model(inp, out)
    x = np.random.RandomState(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)

    ro = py.layer_roofline(model, x, peak_gflops=100.0, gbps=10.0, reps=1)

    full, dw = ro["layers"]
    assert (full["name"], full["kind"], dw["name"], dw["kind"]) == ("full", "Conv2D 3x3 (first)", "dw",
                                                                     "DepthwiseConv2D 3x3")
    assert full["mflop"] * 1e6 == pytest.approx(2 * 2 * 8 * 8 * 4 * 3 * 3 * 3)  # batch 2, 3x3x3 -> 4 channels
    assert full["mbytes"] * 1e6 == pytest.approx(4 * (2 * 8 * 8 * 3 + 2 * 8 * 8 * 4 + 3 * 3 * 3 * 4 + 4))
    assert dw["mflop"] * 1e6 == pytest.approx(2 * 2 * 8 * 8 * 4 * 3 * 3)
    assert dw["mbytes"] * 1e6 == pytest.approx(4 * (2 * 8 * 8 * 4 * 2 + 3 * 3 * 4 + 4))
    for r in (full, dw):
        compute_ms, memory_ms = r["mflop"] / 100.0, r["mbytes"] / 10.0  # MFLOP / (GFLOP/s) = ms
        assert r["floor_ms"] == pytest.approx(max(compute_ms, memory_ms))
        assert r["bound"] == ("memory" if memory_ms > compute_ms else "compute")
        assert r["vs_floor"] == pytest.approx(r["ms"] / r["floor_ms"])
    assert ro["balance"] == 10.0
    assert dw["bound"] == "memory"  # 18 FLOP per 4-byte output: below 10 FLOP/byte
    assert ro["floor_ms"] == pytest.approx(full["floor_ms"] + dw["floor_ms"])
    flops = (full["mflop"] + dw["mflop"]) * 1e6
    assert ro["best_fraction_of_peak"] == pytest.approx(flops / (ro["floor_ms"] / 1e3) / 100e9)
    assert set(ro["kinds"]) == {"Conv2D 3x3 (first)", "DepthwiseConv2D 3x3"}


def test_copy_bandwidth_on_two_threads_is_a_rate():
    assert py.memory_gbps(mb=4, reps=2, threads=2) > 0

"""The page's own wasm kernels (web/src/kernels.js), run by node with the wasm backend from
web/node_modules: matmul.js's products give the cpu backend's results, transpose.js moves
every value as TF.js does, adam.js's fused update gives tf.train.adam's, identity.js's clones
share data safely."""

import pytest

from .helpers import run_node_tool

pytestmark = pytest.mark.slow


def test_patched_wasm_matmul_matches_cpu_for_every_transpose_and_leaks_nothing():
    result = run_node_tool("matmul-check.mjs")
    assert result["patched"] is True
    assert result["leakedTensors"] == 0
    combos = {(c["transposeA"], c["transposeB"]) for c in result["cases"]}
    assert combos == {(True, False), (False, True), (True, True), (False, False)}
    for case in result["cases"]:
        assert case["size"] == case["expectedSize"], case
        # float32 sums of up to 100 products of N(0, 1) values: differences are ~1e-5
        assert case["maxAbsDiff"] < 1e-3, case
    # under a gradient tape, the dense layer's forward product runs as (w^T @ x^T)^T: the same
    # values and the same kernel gradient as the cpu backend (float32 sums of 12544 products)
    fwd = result["forward"]
    assert fwd["maxAbsDiff"] < 1e-4 * fwd["maxAbs"] and fwd["gradMaxAbsDiff"] < 1e-4 * fwd["gradMaxAbs"], fwd
    # a dense layer's fused product + bias + activation (no tape): inside whileWeightsChange it is
    # split (3 transposes: w, x, y), outside it stays XNNPACK's cached kernel; cpu's values either way
    assert [c["activation"] for c in result["fused"]] == [
        "linear", "relu", "relu6", "sigmoid", "elu", "leakyrelu", "prelu"]
    for c in result["fused"]:
        assert c["split"] == 3 and c["transposesOutside"] == 0, c
        bound = 1e-4 * max(c["maxAbs"], 1)  # float32 sums of 3000 products
        assert c["maxAbsDiff"] < bound and c["plainMaxAbsDiff"] < bound, c
    print(f"kernel gradient x^T @ dy (32x12544, 100 units) in node: {result['gradientMsBefore']:.0f} ms -> "
          f"{result['gradientMsAfter']:.0f} ms")


def test_fused_adam_trains_exactly_as_tfjs_adam_and_falls_back_elsewhere():
    r = run_node_tool("adam-check.mjs")
    assert r["registered"] is True and r["className"] == "Adam"
    # wasm with the kernel: it runs, and 4 steps, a save/restore of the optimizer and 3 more
    # steps end with tf.train.adam's weights and moments: the same float32 ops in the same order
    assert r["wasm"]["fused"] is True
    # without the kernel (wasm before registering, cpu) it is TF.js' own update
    assert r["unregistered"]["fused"] is False and r["cpu"]["fused"] is False
    for where in ("wasm", "unregistered", "cpu"):
        c = r[where]
        assert c["changed"] and c["sameStateNames"], (where, c)
        assert c["weightsMaxAbsDiff"] <= 1e-6 and c["stateMaxAbsDiff"] <= 1e-6, (where, c)
    assert r["leakedTensors"] == 0
    print(f"Adam update of a 12544x100 variable in node: {r['updateMsTfjs']:.1f} ms (tf.train.adam) -> "
          f"{r['updateMsFused']:.1f} ms (fused)")


def test_wasm_clones_share_data_and_stay_correct():
    r = run_node_tool("identity-check.mjs")
    assert r == {"patched": True, "shares": True, "cloneAfterSourceDisposed": True, "cloneAfterAssign": True,
                 "variableAfterAssign": True, "strings": True, "leakedData": 0}


def test_simd_transpose_moves_every_value_as_tfjs_does():
    r = run_node_tool("transpose-check.mjs")
    assert r["patched"] is True and r["leakedTensors"] == 0
    # blocks, edges, batches, empty; other permutations and int32 go to TF.js' kernel
    assert len(r["cases"]) == 11
    for case in r["cases"]:
        assert case["same"], case
    print(f"transpose of a 12544x100 kernel in node: {r['kernelMsBefore']:.2f} ms -> {r['kernelMsAfter']:.2f} ms")

"""web/src/train.js in Node (no browser): the page's feature extraction and training loop,
on the cpu backend and on wasm as the page runs it (web/tools/train-check.mjs)."""

import pytest

from .helpers import run_node_tool

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["cpu", "wasm"])
def test_extract_and_train_in_node(backend):
    r = run_node_tool("train-check.mjs", backend)
    assert r["backend"] == backend
    # on wasm, trained with the page's own kernels, as the page installs them
    assert r["kernels"] == ([] if backend == "cpu" else
                            ["XNNPACK for transposed products", "SIMD transposes", "fused Adam", "shared clones"])
    ex = r["extract"]
    # features in item order, equal to each image run alone; the next batch loads meanwhile
    assert (ex["count"], ex["size"]) == (30, 16) and ex["maxAbsDiff"] < 1e-4
    assert ex["prefetched"] == 22  # every batch after the first started loading early
    assert ex["stoppedIsNull"]
    tr = r["train"]
    assert tr["epochs"] == 25 and not tr["stopped"] and tr["historyLength"] == 25
    assert tr["epochsSeen"] == list(range(1, 26)) and tr["charted"] == 25 and tr["chartsEnded"] == 1
    assert tr["logKeys"] == tr["chartedKeys"] == ["acc", "loss", "val_acc", "val_loss"]
    assert tr["lossLast"] < tr["lossFirst"] / 3
    assert tr["valAccLast"] == 1 and tr["predictedRight"] == 1  # the colours separate the classes
    assert r["early"] == {"epochs": 3, "stopped": True, "historyLength": 3}
    assert r["leakedTensors"] == {"extract": 0, "total": 0}

"""web/src/matmul.js: the page's faster products on the wasm backend (transposed operands,
and a dense layer's forward product while training) give the cpu backend's results (run by
node with the wasm backend from web/node_modules)."""

import json
import shutil
import subprocess

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def test_patched_wasm_matmul_matches_cpu_for_every_transpose_and_leaks_nothing():
    if shutil.which("node") is None or not (ROOT / "web" / "node_modules" / "@tensorflow" / "tfjs-backend-wasm").is_dir():
        pytest.fail("node and web/node_modules are needed (make setup installs them)")
    out = subprocess.run(["node", str(ROOT / "web" / "tools" / "matmul-check.mjs")], capture_output=True, text=True,
                         check=True, timeout=600, cwd=ROOT / "web")
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
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
    print(f"kernel gradient x^T @ dy (32x12544, 100 units) in node: {result['gradientMsBefore']:.0f} ms -> "
          f"{result['gradientMsAfter']:.0f} ms")

"""bench/litert.py without TensorFlow or a browser: a missing @litertjs/core is one `error:`
line and exit 2, and its server sends what LiteRT.js's and TF.js's threads need."""

import subprocess
import sys
import urllib.request

from .harness import ROOT


def test_missing_litert_package_is_one_error_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "litert.py"), "--site", str(tmp_path),
                           "--litert", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(tmp_path / "nowhere") in lines[0], proc.stderr
    assert "npm install @litertjs/core" in lines[0]


def test_bench_server_is_cross_origin_isolated_and_serves_wasm_as_wasm(tmp_path):
    sys.path.insert(0, str(ROOT))
    from bench.litert import _serve

    (tmp_path / "m.wasm").write_bytes(b"\0asm\1\0\0\0")
    server, url = _serve(tmp_path)
    try:
        with urllib.request.urlopen(url + "m.wasm", timeout=10) as response:
            headers = response.headers
            assert response.read() == b"\0asm\1\0\0\0"
    finally:
        server.shutdown()
        server.server_close()
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert headers["Content-Type"] == "application/wasm"


def test_bench_server_serves_the_site_through_its_link(tmp_path):
    """The bench links the built site into its folder as site/: the page and LiteRT.js's
    files come from one isolated origin."""
    sys.path.insert(0, str(ROOT))
    from bench.litert import _serve

    site, folder = tmp_path / "built", tmp_path / "bench"
    site.mkdir()
    folder.mkdir()
    (site / "index.html").write_text("<!doctype html><title>site</title>")
    (folder / "site").symlink_to(site, target_is_directory=True)
    server, url = _serve(folder)
    try:
        with urllib.request.urlopen(url + "site/index.html", timeout=10) as response:
            assert b"<title>site</title>" in response.read()
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    finally:
        server.shutdown()
        server.server_close()

"""tests/harness.py: the loopback servers (a WSGI app, a plain folder) shut down fully, and the shared-data paths follow
TFJS_TRANSFER_SHARED (the bench relies on both)."""

import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from .harness import ROOT, serve_folder, serve_wsgi


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_serve_wsgi_serves_on_loopback_then_stops_its_threads():
    before = set(threading.enumerate())
    with serve_wsgi(_hello, threads=2) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"hello"
    # waitress's workers and the server thread are gone, not just the socket
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_serve_folder_serves_files_then_stops(tmp_path):
    (tmp_path / "a.txt").write_text("plain")
    before = set(threading.enumerate())
    with serve_folder(tmp_path) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url + "a.txt", timeout=10) as response:
            assert response.read() == b"plain"
            assert "Cross-Origin-Opener-Policy" not in response.headers
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url + "missing.txt", timeout=10)
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_shared_paths_honour_the_environment(tmp_path):
    code = "from tests import harness; print(harness.SHARED); print(harness.MOBILENET_H5)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "TFJS_TRANSFER_SHARED": str(tmp_path)}).stdout.split()
    assert out == [str(tmp_path), str(tmp_path / "mobilenet" / "mobilenet_0.25_224_imagenet.h5")]

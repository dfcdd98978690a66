"""SiteFiles on its own, without Flask: which URL paths open a file, and the
responses it makes (conditionals, ranges, gzip) for plain Werkzeug requests."""

import gzip
import json
import os
import time

import pytest
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from tfjs_transfer import sitefiles
from tfjs_transfer.sitefiles import SiteFiles, cache_control, content_type, safe_parts

SHARD = "models/head/group1-shard1of1.bin"


def make_request(path, method="GET", **headers):
    return Request(EnvironBuilder(path="/" + path, method=method, headers=headers).get_environ())


def respond(files, path, method="GET", **headers):
    """(status, headers, body) of SiteFiles' answer, its body read and closed as a server would."""
    request = make_request(path, method, **headers)
    static = files.open(path)
    assert static is not None, path
    response = files.response(static, request)
    app_iter, status, header_list = response.get_wsgi_response(request.environ)
    try:
        body = b"".join(app_iter)
    finally:
        app_iter.close()
    return int(status.split()[0]), dict(header_list), body


# ------------------------------------------------------------------- open


def test_open_a_file(tiny_site):
    static = SiteFiles(tiny_site).open("models/head/model.json")
    try:
        assert static.suffix == ".json"
        assert static.stat.st_size == (tiny_site / "models" / "head" / "model.json").stat().st_size
        assert static.file.read() == (tiny_site / "models" / "head" / "model.json").read_bytes()
    finally:
        static.close()


def test_open_refuses_everything_but_visible_files_below_the_root(tiny_site):
    (tiny_site / ".env").write_text("TOKEN=1")
    (tiny_site / "env.txt").symlink_to(tiny_site / ".env")
    (tiny_site / "leak.txt").symlink_to(tiny_site.parent / "secret.txt")
    (tiny_site / "up").symlink_to(tiny_site.parent, target_is_directory=True)
    (tiny_site / "here").symlink_to(tiny_site, target_is_directory=True)
    files = SiteFiles(tiny_site)
    for subpath in ("", "../secret.txt", "models/../../secret.txt", "%2e%2e/secret.txt", "%252e%252e/secret.txt",
                    ".env", "env.txt", "leak.txt", "up/secret.txt", "here", "models", "models/head/",
                    "missing.js", "/etc/passwd", "C:/secret.txt", "index.html\0", "models\\head\\model.json"):
        assert files.open(subpath) is None, subpath


def test_safe_parts():
    assert safe_parts("models/head/model.json") == ["models", "head", "model.json"]
    assert safe_parts("a%20b.js") == ["a%20b.js"]  # further decoding rounds only check, never rename
    for bad in ("", "a//b", "./a", "a/./b", "..", "a/..", ".git/config", "%2e%2e", "%25252e%25252e/x", "a\\b"):
        assert safe_parts(bad) is None, bad


def test_types_and_cache_policy():
    assert content_type(".wasm") == "application/wasm"
    assert content_type(".js") == "text/javascript; charset=utf-8"
    assert content_type(".no-such-type") == "application/octet-stream"
    assert cache_control(".bin") == "public, no-cache"
    assert cache_control(".json") == "no-cache"


# --------------------------------------------------------------- responses


def test_response_full_and_ranged(tiny_site):
    files = SiteFiles(tiny_site)
    data = (tiny_site / SHARD).read_bytes()
    status, headers, body = respond(files, SHARD)
    assert status == 200 and body == data
    assert headers["Accept-Ranges"] == "bytes" and headers["ETag"].startswith('"')
    status, headers, body = respond(files, SHARD, Range="bytes=10-19")
    assert status == 206 and body == data[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    status, _, body = respond(files, SHARD, If_None_Match=headers["ETag"])
    assert status == 304 and body == b""


def test_unsatisfiable_range_raises_and_closes_the_file(tiny_site):
    files = SiteFiles(tiny_site)
    static = files.open(SHARD)
    with pytest.raises(RequestedRangeNotSatisfiable) as info:
        files.response(static, make_request(SHARD, Range="bytes=99999-"))
    assert static.file.closed
    assert dict(info.value.get_headers())["Content-Range"] == f"bytes */{(tiny_site / SHARD).stat().st_size}"


def test_gzip_computed_once_per_file_version(tiny_site, monkeypatch):
    path = tiny_site / "models" / "head" / "model.json"
    path.write_text(json.dumps([f"layer_{i}/kernel" for i in range(400)]))
    calls = []
    real = gzip.compress

    def counting(data, *args, **kwargs):
        calls.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(sitefiles.gzip, "compress", counting)
    files = SiteFiles(tiny_site)
    for _ in range(5):
        _, headers, body = respond(files, "models/head/model.json", Accept_Encoding="gzip")
        assert headers["Content-Encoding"] == "gzip"
    assert len(calls) == 1
    # a new version of the file (new size and mtime) is compressed afresh
    path.write_text(json.dumps([f"layer_{i}/bias" for i in range(500)]))
    os.utime(path, (time.time() + 5, time.time() + 5))
    _, _, body = respond(files, "models/head/model.json", Accept_Encoding="gzip")
    assert gzip.decompress(body) == path.read_bytes()
    assert len(calls) == 2


def test_compress_false(tiny_site):
    (tiny_site / "big.txt").write_text("x" * 5000)
    _, headers, body = respond(SiteFiles(tiny_site, compress=False), "big.txt", Accept_Encoding="gzip")
    assert "Content-Encoding" not in headers and body == b"x" * 5000

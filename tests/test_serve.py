"""The static server: types, headers, caching, compression and refusing everything
outside the site.  Fast tests use Flask's test client on the `tiny_site` fixture;
two tests put the app behind a real waitress server on a loopback port."""

import gzip
import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tfjs_transfer.serve import CONTENT_SECURITY_POLICY, SECURITY_HEADERS, SiteError, create_app

from .harness import serve_wsgi

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"outside the site"


def big_json(n=400):
    """A compressible JSON document well above the gzip threshold."""
    return json.dumps({"weights": [{"name": f"layer_{i}/kernel", "shape": [3, 3, 8, 8]}
                                   for i in range(n)]})


# ------------------------------------------------------------------ MIME types


@pytest.mark.parametrize("path, mimetype", [
    ("/", "text/html"),
    ("/index.html", "text/html"),
    ("/app.js", "text/javascript"),
    ("/manifest.json", "application/json"),
    ("/models/head/model.json", "application/json"),
    ("/models/head/group1-shard1of1.bin", "application/octet-stream"),
    ("/tfjs-backend-wasm-simd.wasm", "application/wasm"),
    ("/style.css", "text/css"),
    ("/app.js.map", "application/json"),
    ("/images/a/cat.png", "image/png"),
    ("/images/b/dog.jpg", "image/jpeg"),
])
def test_mime_types(client, tiny_site, path, mimetype):
    (tiny_site / "style.css").write_text("body { margin: 0 }")
    (tiny_site / "app.js.map").write_text('{"version": 3}')
    (tiny_site / "images" / "a").mkdir(parents=True)
    (tiny_site / "images" / "b").mkdir(parents=True)
    (tiny_site / "images" / "a" / "cat.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tiny_site / "images" / "b" / "dog.jpg").write_bytes(b"\xff\xd8\xff")
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_bodies_are_the_files(client, tiny_site):
    assert client.get("/").data == (tiny_site / "index.html").read_bytes()
    shard = tiny_site / "models" / "head" / "group1-shard1of1.bin"
    response = client.get("/models/head/group1-shard1of1.bin")
    assert response.data == shard.read_bytes()
    assert int(response.headers["Content-Length"]) == shard.stat().st_size


def test_head_has_headers_but_no_body(client, tiny_site):
    response = client.head("/models/head/group1-shard1of1.bin")
    assert response.status_code == 200
    assert response.data == b""
    assert int(response.headers["Content-Length"]) == 256 * 64
    assert response.headers["ETag"]


# ------------------------------------------------------------- CORS + headers


def test_cors_on_a_cross_origin_fetch(client):
    for path in ("/manifest.json", "/models/head/model.json", "/models/head/group1-shard1of1.bin"):
        response = client.get(path, headers={"Origin": "https://elsewhere.example"})
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"


def test_cors_preflight(client):
    response = client.options("/models/head/model.json", headers={
        "Origin": "https://elsewhere.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "content-type",
    })
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


def test_cors_restricted_to_given_origins(tiny_site):
    client = create_app(tiny_site, cors_origins=["https://ok.example"]).test_client()
    ok = client.get("/manifest.json", headers={"Origin": "https://ok.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://ok.example"
    other = client.get("/manifest.json", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_security_header_values(client):
    headers = client.get("/").headers
    # cross-origin isolation, so the threaded wasm backend gets SharedArrayBuffer
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    # ...while an isolated page elsewhere may still load the models
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    directives = {d.strip() for d in headers["Content-Security-Policy"].split(";")}
    assert "default-src 'self'" in directives and "frame-ancestors 'none'" in directives
    assert "object-src 'none'" in directives


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/", 200),
    ("GET", "/tfjs-backend-wasm-simd.wasm", 200),
    ("GET", "/healthz", 200),
    ("GET", "/missing.js", 404),
    ("GET", "/../secret.txt", 404),
    ("POST", "/", 405),
    ("GET", "/" + "a" * 3000, 414),
])
def test_security_headers_on_every_response(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


def test_security_headers_on_304(client):
    etag = client.get("/").headers["ETag"]
    response = client.get("/", headers={"If-None-Match": etag})
    assert response.status_code == 304
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


def test_csp_is_one_constant():
    assert "'wasm-unsafe-eval'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    source = (ROOT / "pipeline" / "serve.py").read_text()
    assert len(re.findall(r"^CONTENT_SECURITY_POLICY = ", source, re.M)) == 1


# ------------------------------------------------------------------- caching


def test_etag_and_304(client):
    first = client.get("/models/head/group1-shard1of1.bin")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers["Last-Modified"]
    again = client.get("/models/head/group1-shard1of1.bin", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    # a list containing it, and the weak form, match too
    listed = client.get("/models/head/group1-shard1of1.bin", headers={"If-None-Match": f'"nope", W/{etag}'})
    assert listed.status_code == 304
    stale = client.get("/models/head/group1-shard1of1.bin", headers={"If-None-Match": '"nope"'})
    assert stale.status_code == 200 and len(stale.data) == 256 * 64


def test_if_modified_since(client):
    last_modified = client.get("/manifest.json").headers["Last-Modified"]
    assert client.get("/manifest.json", headers={"If-Modified-Since": last_modified}).status_code == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get("/manifest.json", headers={"If-Modified-Since": old}).status_code == 200


def test_etag_follows_content(client, tiny_site):
    before = client.get("/manifest.json").headers["ETag"]
    path = tiny_site / "manifest.json"
    path.write_text('{"labels": ["a", "b", "c"]}')
    os.utime(path, (time.time() + 5, time.time() + 5))
    response = client.get("/manifest.json", headers={"If-None-Match": before})
    assert response.status_code == 200
    assert response.headers["ETag"] != before
    assert json.loads(response.data)["labels"] == ["a", "b", "c"]


@pytest.mark.parametrize("path", ["/", "/index.html", "/manifest.json", "/models/head/model.json"])
def test_documents_and_manifests_are_no_cache(client, path):
    assert client.get(path).headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/models/head/group1-shard1of1.bin", "/tfjs-backend-wasm-simd.wasm", "/app.js"])
def test_assets_have_a_revalidating_cache_policy(client, path):
    directives = {d.strip() for d in client.get(path).headers["Cache-Control"].split(",")}
    assert "public" in directives
    # names are not content-hashed: must never be reused without asking
    assert "no-cache" in directives or "must-revalidate" in directives
    assert "immutable" not in directives


# ------------------------------------------------------------- byte ranges

SHARD = "/models/head/group1-shard1of1.bin"
SHARD_BYTES = bytes(range(256)) * 64


def test_range_on_a_shard(client):
    full = client.get(SHARD)
    assert full.headers["Accept-Ranges"] == "bytes"
    response = client.get(SHARD, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 0-99/{len(SHARD_BYTES)}"
    assert int(response.headers["Content-Length"]) == 100
    assert response.data == SHARD_BYTES[:100]
    assert response.headers["ETag"] == full.headers["ETag"]  # the same representation
    middle = client.get(SHARD, headers={"Range": "bytes=1000-1999"})
    assert middle.status_code == 206 and middle.data == SHARD_BYTES[1000:2000]


def test_suffix_range(client):
    n = len(SHARD_BYTES)
    response = client.get(SHARD, headers={"Range": "bytes=-10"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {n - 10}-{n - 1}/{n}"
    assert response.data == SHARD_BYTES[-10:]
    open_ended = client.get(SHARD, headers={"Range": f"bytes={n - 5}-"})
    assert open_ended.status_code == 206 and open_ended.data == SHARD_BYTES[-5:]


@pytest.mark.parametrize("header", ["bytes=20000-20099", "bytes=16384-"])
def test_unsatisfiable_range_is_416(client, header):
    response = client.get(SHARD, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(SHARD_BYTES)}"
    assert response.is_json and response.get_json()["status"] == 416
    assert SHARD_BYTES[:16] not in response.data
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


def test_if_range(client):
    etag = client.get(SHARD).headers["ETag"]
    stale = client.get(SHARD, headers={"Range": "bytes=0-99", "If-Range": '"stale"'})
    assert stale.status_code == 200 and stale.data == SHARD_BYTES
    assert "Content-Range" not in stale.headers
    current = client.get(SHARD, headers={"Range": "bytes=0-99", "If-Range": etag})
    assert current.status_code == 206 and current.data == SHARD_BYTES[:100]


def test_head_with_range(client):
    response = client.head(SHARD, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert response.data == b""
    assert int(response.headers["Content-Length"]) == 100
    assert response.headers["Content-Range"] == f"bytes 0-99/{len(SHARD_BYTES)}"


def test_range_is_served_uncompressed(gz_site):
    """A range counts bytes of the identity file, even from a client that accepts gzip."""
    client = create_app(gz_site).test_client()
    original = (gz_site / "models" / "head" / "model.json").read_bytes()
    plain_etag = client.get("/models/head/model.json").headers["ETag"]
    response = client.get("/models/head/model.json", headers={"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
    assert response.status_code == 206
    assert "Content-Encoding" not in response.headers
    assert response.headers["Content-Range"] == f"bytes 0-99/{len(original)}"
    assert response.data == original[:100]
    assert response.headers["ETag"] == plain_etag
    assert "Accept-Encoding" in response.headers["Vary"]
    # the gzip ETag names another representation: If-Range with it sends the whole identity file
    gz_etag = client.get("/models/head/model.json", headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    whole = client.get("/models/head/model.json",
                       headers={"Accept-Encoding": "gzip", "Range": "bytes=0-99", "If-Range": gz_etag})
    assert whole.status_code == 200 and whole.data == original


def test_if_match(client):
    etag = client.get(SHARD).headers["ETag"]
    assert client.get(SHARD, headers={"If-Match": etag}).status_code == 200
    failed = client.get(SHARD, headers={"If-Match": '"other"'})
    assert failed.status_code == 412
    assert failed.is_json and SHARD_BYTES[:16] not in failed.data


def test_cross_origin_range(client):
    response = client.get(SHARD, headers={"Origin": "https://elsewhere.example", "Range": "bytes=0-99"})
    assert response.status_code == 206
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert "content-range" in exposed


# --------------------------------------------------------------- compression


@pytest.fixture
def gz_site(tiny_site):
    (tiny_site / "models" / "head" / "model.json").write_text(big_json())
    (tiny_site / "big.wasm").write_bytes(b"\0asm\1\0\0\0" + bytes(4000))
    return tiny_site


def test_gzip_when_accepted(gz_site):
    client = create_app(gz_site).test_client()
    original = (gz_site / "models" / "head" / "model.json").read_bytes()
    response = client.get("/models/head/model.json", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert response.mimetype == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.data) < len(original)
    assert gzip.decompress(response.data) == original

    wasm = client.get("/big.wasm", headers={"Accept-Encoding": "gzip"})
    assert wasm.headers["Content-Encoding"] == "gzip" and wasm.mimetype == "application/wasm"
    assert gzip.decompress(wasm.data) == (gz_site / "big.wasm").read_bytes()


def test_no_gzip_unless_accepted(gz_site):
    client = create_app(gz_site).test_client()
    original = (gz_site / "models" / "head" / "model.json").read_bytes()
    for headers in ({}, {"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0, br"}):
        response = client.get("/models/head/model.json", headers=headers)
        assert "Content-Encoding" not in response.headers
        assert response.data == original
        assert "Accept-Encoding" in response.headers["Vary"]


def test_gzip_has_its_own_etag(gz_site):
    client = create_app(gz_site).test_client()
    plain = client.get("/models/head/model.json").headers["ETag"]
    zipped = client.get("/models/head/model.json", headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    assert plain != zipped
    again = client.get("/models/head/model.json", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped})
    assert again.status_code == 304
    assert again.headers["ETag"] == zipped
    # ...and the identity ETag does not validate the gzip representation
    mixed = client.get("/models/head/model.json", headers={"Accept-Encoding": "gzip", "If-None-Match": plain})
    assert mixed.status_code == 200 and mixed.headers["Content-Encoding"] == "gzip"


def test_shards_and_images_are_never_gzipped(gz_site):
    client = create_app(gz_site).test_client()
    response = client.get("/models/head/group1-shard1of1.bin", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers
    assert response.data == bytes(range(256)) * 64


def test_compress_false_never_gzips(gz_site):
    client = create_app(gz_site, compress=False).test_client()
    response = client.get("/models/head/model.json", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers
    assert response.data == (gz_site / "models" / "head" / "model.json").read_bytes()


# ------------------------------------------------------------------ security


TRAVERSALS = [
    "/../secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/.%2e/secret.txt",
    "/models/head/../../../secret.txt",
    "/models/head/..%2f..%2f..%2fsecret.txt",
    "/./../secret.txt",
    "/%252e%252e/secret.txt",            # double-encoded
    "/%252e%252e%252fsecret.txt",
    "/%25252e%25252e/secret.txt",        # triple-encoded
    "/..%5csecret.txt",                  # encoded backslash
    "/..\\secret.txt",                   # raw backslash
    "/models\\..\\..\\secret.txt",
    "/%c0%ae%c0%ae/secret.txt",          # overlong UTF-8 dots
    "/secret.txt%00.html",               # NUL byte
    "/index.html%00",
    "/%00",
    "/%2fetc%2fpasswd",                  # absolute paths
    "/%2Fetc/passwd",
    "/C:%5cWindows%5cwin.ini",
    "/C:/secret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404, path
    assert SECRET not in response.data
    assert b"root:" not in response.data


def test_absolute_paths_are_404(client, tiny_site):
    secret = tiny_site.parent / "secret.txt"
    # what a server hands the app for "//tmp/.../secret.txt" or "/%2Ftmp%2F...":
    for path_info in (str(secret), "/" + str(secret), "//etc/passwd", "/" + str(secret).replace("/", "\\")):
        response = client.get("/", environ_overrides={"PATH_INFO": path_info})
        assert response.status_code == 404, path_info
        assert SECRET not in response.data
    response = client.get("/" + quote(str(secret), safe=""))
    assert response.status_code == 404 and SECRET not in response.data


def test_symlinks_out_of_the_site_are_404(client, tiny_site):
    outside = tiny_site.parent
    (tiny_site / "leak.txt").symlink_to(outside / "secret.txt")
    (tiny_site / "models" / "up").symlink_to(outside, target_is_directory=True)
    (tiny_site / "abs").symlink_to("/etc", target_is_directory=True)
    for path in ("/leak.txt", "/models/up/secret.txt", "/abs/passwd", "/abs/hostname"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert SECRET not in response.data and b"root:" not in response.data


def test_symlinks_inside_the_site_still_work(client, tiny_site):
    (tiny_site / "current.json").symlink_to(tiny_site / "manifest.json")
    assert client.get("/current.json").data == (tiny_site / "manifest.json").read_bytes()


def test_symlink_onto_a_dotfile_is_404(client, tiny_site):
    (tiny_site / ".env").write_text("TOKEN=1")
    (tiny_site / "env.txt").symlink_to(tiny_site / ".env")
    assert client.get("/env.txt").status_code == 404


@pytest.mark.parametrize("path", [
    "/.env", "/%2eenv", "/.git/config", "/models/.hidden/model.json", "/.htaccess", "/models/head/.DS_Store",
])
def test_dotfiles_are_404(client, tiny_site, path):
    (tiny_site / ".env").write_text("TOKEN=secret")
    (tiny_site / ".htaccess").write_text("deny")
    (tiny_site / ".git").mkdir()
    (tiny_site / ".git" / "config").write_text("[core]")
    (tiny_site / "models" / ".hidden").mkdir()
    (tiny_site / "models" / ".hidden" / "model.json").write_text("{}")
    (tiny_site / "models" / "head" / ".DS_Store").write_bytes(b"x")
    response = client.get(path)
    assert response.status_code == 404
    assert b"TOKEN" not in response.data and b"core" not in response.data


@pytest.mark.parametrize("path", ["/models", "/models/", "/models/head", "/models/head/", "//", "/./"])
def test_directories_are_not_listed(client, path):
    # set PATH_INFO as a server would; the test client reads "//" as a host
    response = client.get("/", environ_overrides={"PATH_INFO": path})
    assert response.status_code == 404
    assert b"model.json" not in response.data and b"head" not in response.data


def test_root_serves_index(client, tiny_site):
    response = client.get("/")
    assert response.status_code == 200
    assert response.data == (tiny_site / "index.html").read_bytes()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE"])
@pytest.mark.parametrize("path", ["/", "/manifest.json", "/models/head/group1-shard1of1.bin", "/healthz"])
def test_other_methods_are_405(client, tiny_site, method, path):
    before = (tiny_site / "manifest.json").read_bytes()
    response = client.open(path, method=method, data=b'{"labels": []}')
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed == {"GET", "HEAD", "OPTIONS"}
    assert (tiny_site / "manifest.json").read_bytes() == before


def test_long_urls_are_414(client):
    assert client.get("/" + "a" * 2100).status_code == 414
    assert client.get("/manifest.json?" + "q=1&" * 600).status_code == 414
    # just under the limit is an ordinary 404
    assert client.get("/" + "a" * 2000).status_code == 404


def test_404_body_is_small_and_reveals_no_paths(client, tiny_site):
    response = client.get("/models/nope/model.json")
    assert response.status_code == 404
    assert len(response.data) < 200
    body = response.data.decode()
    assert str(tiny_site) not in body and str(tiny_site.parent) not in body
    assert "/tmp" not in body and "site" not in body
    assert response.is_json and response.get_json()["status"] == 404


# -------------------------------------------------------------------- health


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["labels"] == 2
    assert response.headers["Cache-Control"] == "no-store"
    assert client.head("/healthz").status_code == 200


def test_healthz_without_manifest(client, tiny_site):
    (tiny_site / "manifest.json").unlink()
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["labels"] is None and body["manifest"] == "missing"


def test_healthz_with_broken_manifest(client, tiny_site):
    (tiny_site / "manifest.json").write_text("{not json")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"
    assert str(tiny_site) not in response.get_data(as_text=True)


# ------------------------------------------------------------- bad site folder


def test_create_app_refuses_a_missing_folder(tmp_path):
    missing = tmp_path / "no-such-site"
    with pytest.raises(ValueError, match=re.escape(str(missing))) as info:
        create_app(missing)
    assert isinstance(info.value, SiteError)
    assert "does not exist" in str(info.value)


def test_create_app_refuses_a_file(tmp_path):
    path = tmp_path / "site.zip"
    path.write_bytes(b"PK")
    with pytest.raises(ValueError, match="not a directory"):
        create_app(path)


def test_create_app_refuses_a_folder_without_index(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="index.html"):
        create_app(tmp_path / "site")


# ------------------------------------------------------ the real WSGI server


def _raw_get(port, target, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_behind_waitress(gz_site):
    with serve_wsgi(create_app(gz_site), threads=4) as base:
        port = urlsplit(base).port
        with urllib.request.urlopen(base, timeout=10) as response:
            assert response.status == 200
            assert response.read() == (gz_site / "index.html").read_bytes()
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        with urllib.request.urlopen(base + "tfjs-backend-wasm-simd.wasm", timeout=10) as response:
            assert response.headers["Content-Type"] == "application/wasm"
            assert response.read() == b"\0asm\1\0\0\0"
        shard = (gz_site / "models" / "head" / "group1-shard1of1.bin").read_bytes()
        with urllib.request.urlopen(base + "models/head/group1-shard1of1.bin", timeout=10) as response:
            assert response.read() == shard
            etag = response.headers["ETag"]
        request = urllib.request.Request(base + "models/head/model.json",
                                         headers={"Accept-Encoding": "gzip", "Origin": "https://x.example"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert gzip.decompress(response.read()) == (gz_site / "models" / "head" / "model.json").read_bytes()
        status, _, body = _raw_get(port, "/models/head/group1-shard1of1.bin", {"If-None-Match": etag})
        assert status == 304 and body == b""
        status, headers, body = _raw_get(port, "/models/head/group1-shard1of1.bin", {"Range": "bytes=1000-1099"})
        assert status == 206 and body == shard[1000:1100]
        assert headers["Content-Range"] == f"bytes 1000-1099/{len(shard)}"
        with urllib.request.urlopen(base + "healthz", timeout=10) as response:
            assert json.loads(response.read())["labels"] == 2

        # traversal as sent on the wire, without any client-side normalisation
        secret = gz_site.parent / "secret.txt"
        for target in TRAVERSALS[:16] + ["//" + str(secret).lstrip("/"), "/%2F" + quote(str(secret).lstrip("/"))]:
            status, _, body = _raw_get(port, target)
            assert status == 404, target
            assert SECRET not in body
        status, headers, _ = _raw_get(port, "/" + "a" * 3000)
        assert status == 414
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("DELETE", "/manifest.json")
        response = conn.getresponse()
        assert response.status == 405 and "GET" in response.getheader("Allow")
        conn.close()


def test_run_prints_the_real_port(tiny_site):
    code = ("import sys; from tfjs_transfer.serve import run; "
            "run(sys.argv[1], host='127.0.0.1', port=0, threads=2)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tiny_site)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"^Serving .*site/ at http://127\.0\.0\.1:(\d+)/ \(Ctrl\+C to stop\)$", line.strip())
        assert match, line
        port = int(match.group(1))
        assert port != 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/manifest.json", timeout=10) as response:
            assert json.loads(response.read()) == {"labels": ["a", "b"]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_load_script_smoke(gz_site):
    """bench/serve_load.py's run_load on the tiny site: short, few clients, no errors."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("serve_load", ROOT / "bench" / "serve_load.py")
    serve_load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve_load)
    result = serve_load.run_load(gz_site, clients=2, seconds=0.5, compress=True,
                                 paths=["index.html", "models/head/model.json", "models/head/group1-shard1of1.bin"])
    assert result["total"]["errors"] == 0 and result["total"]["requests"] > 0
    assert set(result["by_kind"]) == {"html", "model.json", "shard"}
    assert result["by_path"]["models/head/model.json"]["encoding"] == "gzip"
    assert result["by_kind"]["shard"]["p99_ms"] is not None

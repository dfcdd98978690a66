"""Serve a built ``site/`` folder read-only, the way the browser app needs it.

Any static host can serve the site, but most get a few things wrong that matter
here: ``.wasm`` must be ``application/wasm`` for streaming compilation, the
TF.js wasm backend only gets threads when the page is cross-origin isolated
(COOP/COEP headers, so ``SharedArrayBuffer`` exists), another origin's page must
be able to fetch ``manifest.json`` and the models (CORS + CORP), and model
shards are large and re-fetched on every visit unless ETags let the browser
revalidate cheaply.  This module is a small Flask app that does all of that
and nothing else: no listing, no writes, nothing outside the site folder.

``create_app`` is the app factory; ``run`` puts it behind waitress.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import mimetypes
import os
import re
import stat
import threading
from collections import OrderedDict
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote

from flask import Flask, Response, abort, current_app, jsonify, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wsgi import wrap_file

__all__ = ["CONTENT_SECURITY_POLICY", "SiteError", "create_app", "run"]

# The one place the page's Content-Security-Policy lives.
# - 'wasm-unsafe-eval': the TF.js wasm backend compiles its .wasm modules.
# - 'unsafe-eval': tfjs-vis draws its charts with vega, whose expression
#   compiler builds functions with `Function(...)`; without it the charts fail.
# - worker-src blob:: the threaded wasm backend starts its workers from blobs.
# - connect-src data: blob:: TF.js fetches the wasm binary / model weights and
#   tf.io may read from data:/blob: URLs.
CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self' blob: 'wasm-unsafe-eval' 'unsafe-eval'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' data: blob:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"  # noqa: E501

SECURITY_HEADERS = {
    # Cross-origin isolation: makes SharedArrayBuffer available, which the
    # TF.js wasm backend needs for its multi-threaded build.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    # ...and lets an isolated page on another origin still load our files.
    "Cross-Origin-Resource-Policy": "cross-origin",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}

# Explicit types for everything a site contains; the platform's mimetypes
# table varies between machines (.wasm and .js especially), so it is only the
# fallback for anything else.
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".bin": "application/octet-stream",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}

# Types worth gzipping (text, and wasm which shrinks to roughly a third).
# Model shards (.bin, float32 weights) and images barely shrink: not worth it.
COMPRESSIBLE = {".html", ".htm", ".js", ".mjs", ".css", ".json", ".map", ".webmanifest",
                ".wasm", ".svg", ".txt"}
# Below this, gzip's ~20-byte header eats the gain; above the max, serve as is
# rather than hold a huge body in memory.
MIN_COMPRESS_SIZE = 256
MAX_COMPRESS_SIZE = 64 * 1024 * 1024
GZIP_LEVEL = 9  # computed once per file version, so spend the CPU for the smallest body
GZIP_CACHE_BYTES = 128 * 1024 * 1024

# Cache policy.  Nothing in a site has a content-hashed name: a rebuild
# rewrites models/head/group1-shard1of1.bin, app.js and the .wasm files under
# the same names.  A max-age would let a browser pair a fresh model.json with
# stale shards (TF.js then fails on the byte count, or worse loads the wrong
# weights) or a fresh index.html with a stale bundle.  So everything is
# revalidated on every use: "no-cache" means "store, but ask first", and the
# strong content-hash ETag turns that question into a ~300-byte 304 when the
# file has not changed, which for the multi-megabyte shards and wasm is the
# saving that matters.  "public" lets shared caches (a CDN in front) keep the
# big immutable-in-practice assets too.  Images are pure data that no code
# depends on byte-for-byte, so they may be reused for five minutes.
CACHE_CONTROL = {
    ".bin": "public, no-cache",
    ".wasm": "public, no-cache",
    ".js": "public, no-cache",
    ".mjs": "public, no-cache",
    ".css": "public, no-cache",
    ".map": "public, no-cache",
    ".png": "public, max-age=300, must-revalidate",
    ".jpg": "public, max-age=300, must-revalidate",
    ".jpeg": "public, max-age=300, must-revalidate",
}
DEFAULT_CACHE_CONTROL = "no-cache"  # index.html, manifest.json, model.json, images.json, ...

MAX_URL_LENGTH = 2048
ALLOWED_METHODS = ["GET", "HEAD"]  # Flask adds OPTIONS (CORS preflight) itself


class SiteError(ValueError):
    """The folder given to :func:`create_app` cannot be served as a site."""


# ---------------------------------------------------------------- file caches


class _LRU:
    """A small thread-safe LRU keyed by file identity, bounded by total size."""

    def __init__(self, max_cost: int):
        self.max_cost = max_cost
        self.cost = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item[0]
            return None

    def put(self, key, value, cost: int) -> None:
        if cost > self.max_cost:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.cost -= old[1]
            self._items[key] = (value, cost)
            self.cost += cost
            while self.cost > self.max_cost:
                _, (_, c) = self._items.popitem(last=False)
                self.cost -= c


def _read_all(fileobj) -> bytes:
    fileobj.seek(0)
    data = fileobj.read()
    fileobj.seek(0)
    return data


def _digest(fileobj) -> str:
    """Content hash for the ETag, read in chunks so big shards never sit in memory twice."""
    h = hashlib.blake2b(digest_size=12)
    fileobj.seek(0)
    for chunk in iter(lambda: fileobj.read(1 << 20), b""):
        h.update(chunk)
    fileobj.seek(0)
    return h.hexdigest()


class _FileInfo:
    """What the app remembers about one version of one file."""

    __slots__ = ("digest", "gzipped")

    def __init__(self, digest: str):
        self.digest = digest
        self.gzipped: bytes | None = None  # None: not computed yet; b"": not worth it


# ------------------------------------------------------------------ the app


def _check_site(site_dir) -> Path:
    path = Path(site_dir)
    if not path.exists():
        raise SiteError(f"site folder {str(path)!r} does not exist (build the site first)")
    if not path.is_dir():
        raise SiteError(f"site folder {str(path)!r} is not a directory")
    if not (path / "index.html").is_file():
        raise SiteError(f"site folder {str(path)!r} has no index.html (is it a built site?)")
    return path.resolve()


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


_DRIVE = re.compile(r"^[A-Za-z]:")


def _safe_parts(subpath: str) -> list[str] | None:
    """The URL path split into segments, or None if it could point anywhere but
    a visible file below the site root.

    PATH_INFO arrives percent-decoded once.  The checks are also applied after
    further decoding rounds, so double-encoded ``%252e%252e`` is refused too
    even though no filesystem API would decode it again.
    """
    candidate = subpath
    for _ in range(3):
        if (not candidate or "\\" in candidate or "\0" in candidate
                or candidate.startswith("/") or _DRIVE.match(candidate)):
            return None  # empty, Windows separators, NUL, absolute, "C:..."
        for part in candidate.split("/"):
            if part in ("", ".", "..") or part.startswith("."):
                return None
        decoded = unquote(candidate)
        if decoded == candidate:
            break
        candidate = decoded
    else:
        return None
    return subpath.split("/")


def create_app(site_dir, *, cors_origins="*", compress: bool = True) -> Flask:
    """A Flask app serving ``site_dir`` read-only.

    ``cors_origins`` is passed to flask-cors ("*", one origin or a list; None
    or "" turns CORS off).  ``compress`` gzips text-like files (and wasm) for
    clients that accept it.  Raises :class:`SiteError` (a ``ValueError``) if
    ``site_dir`` is not a folder with an ``index.html``.
    """
    root = _check_site(site_dir)
    root_str = str(root)

    app = Flask(__name__, static_folder=None)
    app.config["SITE_DIR"] = root
    app.config["COMPRESS"] = bool(compress)
    app.json.sort_keys = False
    # Keep "//etc/passwd" a 404 instead of a redirect to "/etc/passwd" (the
    # matcher reads merge_slashes when the Map is made, so make a new one).
    app.url_map = Map(merge_slashes=False, strict_slashes=False)

    if cors_origins:
        CORS(app, origins=cors_origins, send_wildcard=cors_origins == "*",
             methods=["GET", "HEAD", "OPTIONS"], max_age=600,
             expose_headers=["ETag", "Content-Length", "Content-Encoding"])

    infos = _LRU(max_cost=GZIP_CACHE_BYTES)

    def file_info(fileobj, key) -> _FileInfo:
        info = infos.get(key)
        if info is None:
            info = _FileInfo(_digest(fileobj))
            infos.put(key, info, 200)
        return info

    def gzipped(fileobj, key, info: _FileInfo) -> bytes:
        if info.gzipped is None:
            data = _read_all(fileobj)
            body = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            info.gzipped = body if len(body) < len(data) else b""
            infos.put(key, info, 200 + len(info.gzipped))  # re-cost the entry
        return info.gzipped

    def open_in_site(subpath: str):
        """An open binary file below the root, with its fstat, or None."""
        parts = _safe_parts(subpath)
        if parts is None:
            return None
        path = os.path.join(root_str, *parts)
        real = os.path.realpath(path)
        if os.path.commonpath([root_str, real]) != root_str:
            return None  # a symlink leading out of the site
        rel = os.path.relpath(real, root_str)
        if rel == "." or any(p.startswith(".") for p in rel.split(os.sep)):
            return None  # a symlink onto a dotfile or the root itself
        try:
            fileobj = open(real, "rb")  # noqa: SIM115 - handed to the WSGI server
        except OSError:
            return None
        st = os.fstat(fileobj.fileno())
        if not stat.S_ISREG(st.st_mode):
            fileobj.close()
            return None  # directories are never listed
        return fileobj, st, os.path.splitext(real)[1].lower()

    @app.before_request
    def limit_url_length():
        uri = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI") or request.full_path
        if len(uri) > MAX_URL_LENGTH:
            abort(414)

    @app.route("/healthz", methods=ALLOWED_METHODS)
    def healthz():
        body = {"status": "ok", "labels": None, "manifest": "missing",
                "compress": current_app.config["COMPRESS"]}
        status = 200
        if not (root / "index.html").is_file():
            body.update(status="error", error="index.html is missing")
            status = 503
        manifest_path = root / "manifest.json"
        if manifest_path.is_file():
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
                labels = manifest.get("labels")
                body["manifest"] = "ok"
                body["labels"] = len(labels) if isinstance(labels, list) else None
                if "format" in manifest:
                    body["format"] = manifest["format"]
            except (OSError, ValueError, AttributeError):
                body.update(status="error", manifest="invalid", error="manifest.json is not valid JSON")
                status = 503
        response = jsonify(body)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.route("/", methods=ALLOWED_METHODS)
    def index():
        if request.environ.get("PATH_INFO", "/") not in ("", "/"):
            abort(404)  # "//", "///": not the root, and not worth a redirect
        return site_file("index.html")

    @app.route("/<path:subpath>", methods=ALLOWED_METHODS)
    def site_file(subpath: str):
        opened = open_in_site(subpath)
        if opened is None:
            abort(404)
        fileobj, st, ext = opened
        try:
            return _file_response(fileobj, st, ext)
        except BaseException:
            fileobj.close()
            raise

    def _file_response(fileobj, st, ext: str) -> Response:
        key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        info = file_info(fileobj, key)

        content_type = MIME_TYPES.get(ext) or mimetypes.guess_type("x" + ext)[0] or "application/octet-stream"
        compressible = current_app.config["COMPRESS"] and ext in COMPRESSIBLE
        body_file, length, etag, encoding = fileobj, st.st_size, info.digest, None
        if (compressible and MIN_COMPRESS_SIZE <= st.st_size <= MAX_COMPRESS_SIZE
                and request.accept_encodings["gzip"] > 0):
            gz = gzipped(fileobj, key, info)
            if gz:
                fileobj.close()
                body_file, length, etag, encoding = io.BytesIO(gz), len(gz), info.digest + "-gz", "gzip"

        response = Response(status=200, content_type=content_type, direct_passthrough=True)
        response.headers["Cache-Control"] = CACHE_CONTROL.get(ext, DEFAULT_CACHE_CONTROL)
        response.set_etag(etag)
        response.headers["Last-Modified"] = formatdate(int(st.st_mtime), usegmt=True)
        if compressible:
            response.vary.add("Accept-Encoding")
        if encoding:
            response.headers["Content-Encoding"] = encoding

        # Conditional GET: If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
        not_modified = False
        if request.if_none_match:
            not_modified = request.if_none_match.contains_weak(etag)
        elif request.if_modified_since is not None:
            not_modified = int(st.st_mtime) <= request.if_modified_since.timestamp()
        if not_modified or request.method == "HEAD":
            body_file.close()
            if not_modified:
                response.status_code = 304
                return response
            response.content_length = length
            return response

        response.content_length = length
        response.response = wrap_file(request.environ, body_file)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Keep the exception's own headers (Allow on 405), replace the HTML body
        # with a small JSON one that never names a filesystem path.
        response = exc.get_response()
        small = _error(exc.code or 500, (exc.name or "error").lower())
        response.set_data(small.get_data())
        response.content_type = small.content_type
        return response

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


def run(site_dir, host: str = "127.0.0.1", port: int = 8000, threads: int = 8) -> None:
    """Serve ``site_dir`` with waitress until interrupted (port 0 picks a free port)."""
    import waitress

    app = create_app(site_dir)
    server = waitress.create_server(
        app, host=host, port=port, threads=threads,
        ident="tfjs-transfer",             # Server: header without a version
        max_request_body_size=64 * 1024,   # nothing here accepts a body
    )
    shown = f"[{host}]" if ":" in host else host
    shown_dir = str(site_dir).rstrip("/\\") + "/"
    print(f"Serving {shown_dir} at http://{shown}:{server.effective_port}/ (Ctrl+C to stop)", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()

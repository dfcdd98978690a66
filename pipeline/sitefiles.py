"""The files of a site folder as HTTP responses: which URL paths may reach a file,
and each file's type, cache policy, ETag and gzip body.

Werkzeug only, no Flask: ``serve.py`` wires a :class:`SiteFiles` into the app, and
the class can be used and tested on its own.  Conditional requests (If-None-Match,
If-Modified-Since, If-Range) and byte ranges are Werkzeug's ``make_conditional``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import mimetypes
import os
import re
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote

from werkzeug.exceptions import PreconditionFailed
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

__all__ = ["SiteFiles", "StaticFile", "cache_control", "content_type", "safe_parts"]

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


def content_type(suffix: str) -> str:
    """The Content-Type for a file name ending in ``suffix`` (lower case, with the dot)."""
    return MIME_TYPES.get(suffix) or mimetypes.guess_type("x" + suffix)[0] or "application/octet-stream"


def cache_control(suffix: str) -> str:
    """The Cache-Control for a file name ending in ``suffix``."""
    return CACHE_CONTROL.get(suffix, DEFAULT_CACHE_CONTROL)


# ------------------------------------------------------------ path checks


_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_parts(subpath: str) -> list[str] | None:
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


# ------------------------------------------------------------ file caches


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


class _FileInfo:
    """What is remembered about one version of one file."""

    __slots__ = ("digest", "gzipped")

    def __init__(self, digest: str):
        self.digest = digest
        self.gzipped: bytes | None = None  # None: not computed yet; b"": not worth it


_INFO_COST = 200  # rough bytes per cache entry without its gzip body


# ------------------------------------------------------------ the files


@dataclass
class StaticFile:
    """A regular file below the site root, open for reading.  Whoever holds it
    closes it, or hands it to :meth:`SiteFiles.response`, which does."""

    file: BinaryIO
    stat: os.stat_result
    suffix: str  # lower case, with the dot: ".json"

    @property
    def version(self) -> tuple:
        """Identifies this version of this file, for the digest and gzip caches."""
        st = self.stat
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def digest(self) -> str:
        """Content hash for the ETag, read in chunks so big shards never sit in memory twice."""
        h = hashlib.blake2b(digest_size=12)
        self.file.seek(0)
        for chunk in iter(lambda: self.file.read(1 << 20), b""):
            h.update(chunk)
        self.file.seek(0)
        return h.hexdigest()

    def read_all(self) -> bytes:
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(0)
        return data

    def close(self) -> None:
        self.file.close()


class SiteFiles:
    """Read-only access to the files below ``root``, and the responses that serve them.

    ``compress`` gzips text-like files (and wasm) for clients that accept it.
    The digests and gzip bodies are cached per file version, so a rebuilt file
    is hashed and compressed afresh and an unchanged one only once.
    """

    def __init__(self, root, compress: bool = True):
        self.root = os.path.realpath(root)
        self.compress = bool(compress)
        self._infos = _LRU(max_cost=GZIP_CACHE_BYTES)

    def open(self, subpath: str) -> StaticFile | None:
        """The regular file at URL path ``subpath`` (no leading slash), or None for
        anything that is not one below the root: traversal, dotfiles, symlinks
        leading out or onto a dotfile, directories, missing files."""
        parts = safe_parts(subpath)
        if parts is None:
            return None
        real = os.path.realpath(os.path.join(self.root, *parts))
        if os.path.commonpath([self.root, real]) != self.root:
            return None  # a symlink leading out of the site
        rel = os.path.relpath(real, self.root)
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
        return StaticFile(fileobj, st, os.path.splitext(real)[1].lower())

    def response(self, static: StaticFile, request: Request) -> Response:
        """``static`` answered for ``request``: 200, 206 for a byte range, 304 when the
        client's copy is current.  Raises Werkzeug's RequestedRangeNotSatisfiable
        (416) for a range outside the file and PreconditionFailed (412) for a failed
        If-Match.  The file is closed with the response (or here, if no response
        comes of it).

        A Range request is answered from the identity bytes, never gzipped: a
        range counts bytes of the representation sent, and the uncompressed file
        is the one whose offsets a client can know in advance.
        """
        try:
            return self._response(static, request)
        except BaseException:
            static.close()
            raise

    def _response(self, static: StaticFile, request: Request) -> Response:
        info = self._info(static)
        compressible = self.compress and static.suffix in COMPRESSIBLE
        body, length, etag, encoding = static.file, static.stat.st_size, info.digest, None
        if (compressible and MIN_COMPRESS_SIZE <= length <= MAX_COMPRESS_SIZE
                and request.accept_encodings["gzip"] > 0 and "Range" not in request.headers):
            gz = self._gzipped(static, info)
            if gz:
                static.close()
                body, length, etag, encoding = io.BytesIO(gz), len(gz), info.digest + "-gz", "gzip"

        response = Response(wrap_file(request.environ, body), content_type=content_type(static.suffix),
                            direct_passthrough=True)
        response.headers["Cache-Control"] = cache_control(static.suffix)
        response.set_etag(etag)  # strong: the bytes of this representation
        response.last_modified = int(static.stat.st_mtime)
        if compressible:
            response.vary.add("Accept-Encoding")
        if encoding:
            response.content_encoding = encoding
        response.content_length = length
        response.make_conditional(request, accept_ranges=True, complete_length=length)
        if response.status_code == 412:
            # Werkzeug sets the status but keeps the file as the body; answer
            # like every other refusal instead (the caller's error handler).
            response.close()
            raise PreconditionFailed()
        return response

    def _info(self, static: StaticFile) -> _FileInfo:
        info = self._infos.get(static.version)
        if info is None:
            info = _FileInfo(static.digest())
            self._infos.put(static.version, info, _INFO_COST)
        return info

    def _gzipped(self, static: StaticFile, info: _FileInfo) -> bytes:
        """The gzip body of ``static``, or b"" if it would not be smaller."""
        if info.gzipped is None:
            data = static.read_all()
            body = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            info.gzipped = body if len(body) < len(data) else b""
            self._infos.put(static.version, info, _INFO_COST + len(info.gzipped))  # re-cost the entry
        return info.gzipped

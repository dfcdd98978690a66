"""Serve a built ``site/`` folder read-only, the way the browser app needs it.

Any static host can serve the site, but most get a few things wrong that matter
here: ``.wasm`` must be ``application/wasm`` for streaming compilation, the
TF.js wasm backend only gets threads when the page is cross-origin isolated
(COOP/COEP headers, so ``SharedArrayBuffer`` exists), another origin's page must
be able to fetch ``manifest.json`` and the models (CORS + CORP), and model
shards are large and re-fetched on every visit unless ETags let the browser
revalidate cheaply.  This module is a small Flask app that does all of that
and nothing else: no listing, no writes, nothing outside the site folder.

``create_app`` is the app factory: it only wires the app (CORS, routes, error
handlers, headers); the files themselves, their types, caching, compression and
byte ranges, are ``sitefiles.SiteFiles``.  ``run`` puts the app behind waitress.
"""

from __future__ import annotations

import errno
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from . import manifest
from .errors import UserError
from .sitefiles import SiteFiles

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "SiteError", "create_app", "run"]

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

MAX_URL_LENGTH = 2048
ALLOWED_METHODS = ["GET", "HEAD"]  # Flask adds OPTIONS (CORS preflight) itself


class SiteError(ValueError):
    """The folder given to :func:`create_app` cannot be served as a site."""


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


def create_app(site_dir, *, cors_origins="*", compress: bool = True) -> Flask:
    """A Flask app serving ``site_dir`` read-only.

    ``cors_origins`` is passed to flask-cors ("*", one origin or a list; None
    or "" turns CORS off).  ``compress`` gzips text-like files (and wasm) for
    clients that accept it.  Raises :class:`SiteError` (a ``ValueError``) if
    ``site_dir`` is not a folder with an ``index.html``.
    """
    root = _check_site(site_dir)

    app = Flask(__name__, static_folder=None)
    app.config["SITE_DIR"] = root
    app.config["COMPRESS"] = bool(compress)
    app.extensions["site_files"] = SiteFiles(root, compress=compress)
    app.json.sort_keys = False
    # Keep "//etc/passwd" a 404 instead of a redirect to "/etc/passwd" (the
    # matcher reads merge_slashes when the Map is made, so make a new one).
    app.url_map = Map(merge_slashes=False, strict_slashes=False)

    if cors_origins:
        CORS(app, origins=cors_origins, send_wildcard=cors_origins == "*",
             methods=["GET", "HEAD", "OPTIONS"], max_age=600,
             expose_headers=["ETag", "Content-Length", "Content-Encoding", "Content-Range", "Accept-Ranges"])

    app.before_request(_limit_url_length)
    app.register_blueprint(routes)
    app.register_error_handler(HTTPException, _json_error)
    app.after_request(_add_security_headers)
    return app


def _limit_url_length() -> None:
    uri = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI") or request.full_path
    if len(uri) > MAX_URL_LENGTH:
        abort(414)


def _json_error(exc: HTTPException) -> Response:
    # Keep the exception's own headers (Allow on 405, Content-Range on 416),
    # replace the HTML body with a small JSON one that never names a filesystem path.
    response = exc.get_response()
    status = exc.code or 500
    small = jsonify({"error": (exc.name or "error").lower(), "status": status})
    response.set_data(small.get_data())
    response.content_type = small.content_type
    return response


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# ---------------------------------------------------------------- the routes


routes = Blueprint("site", __name__)


@routes.route("/healthz", methods=ALLOWED_METHODS)
def healthz() -> Response:
    """Whether the site folder still looks servable, and how many labels its manifest has."""
    root = current_app.config["SITE_DIR"]
    body = {"status": "ok", "labels": None, "manifest": "missing", "compress": current_app.config["COMPRESS"]}
    status = 200
    if not (root / "index.html").is_file():
        body.update(status="error", error="index.html is missing")
        status = 503
    path = root / manifest.FILENAME
    if path.is_file():
        try:
            parsed = manifest.parse(path)
        except manifest.ManifestError:  # its message names the path: not for the response
            body.update(status="error", manifest="invalid", error="manifest.json is not valid JSON")
            status = 503
        else:
            labels = parsed.get("labels")
            body["manifest"] = "ok"
            body["labels"] = len(labels) if isinstance(labels, list) else None
            if "format" in parsed:
                body["format"] = parsed["format"]
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.route("/", methods=ALLOWED_METHODS)
def index() -> Response:
    if request.environ.get("PATH_INFO", "/") not in ("", "/"):
        abort(404)  # "//", "///": not the root, and not worth a redirect
    return site_file("index.html")


@routes.route("/<path:subpath>", methods=ALLOWED_METHODS)
def site_file(subpath: str) -> Response:
    files: SiteFiles = current_app.extensions["site_files"]
    static = files.open(subpath)
    if static is None:
        abort(404)
    return files.response(static, request)

def run(site_dir, host: str = "127.0.0.1", port: int = 8000, threads: int = 8) -> None:
    """Serve ``site_dir`` with waitress until interrupted (port 0 picks a free port).

    A folder that is not a built site, or an address it cannot listen on, is a UserError
    naming it (the CLI's `error:` line), never a traceback.
    """
    import waitress

    hint = f"to build one: tfjs-transfer build --data DATA --weights WEIGHTS --out {site_dir}"
    try:
        app = create_app(site_dir)
    except SiteError as e:
        raise UserError(str(e) if "build" in str(e) else f"{e}; {hint}") from None
    if not (Path(site_dir) / manifest.FILENAME).is_file():
        raise UserError(f"site folder {str(site_dir)!r} has no {manifest.FILENAME} (is it a built site?); {hint}")
    try:
        server = waitress.create_server(
            app, host=host, port=port, threads=threads,
            ident="tfjs-transfer",             # Server: header without a version
            max_request_body_size=64 * 1024,   # nothing here accepts a body
        )
    except OSError as e:  # address in use, no permission for the port, unknown host
        why = e.strerror or str(e)
        if e.errno == errno.EADDRINUSE:
            why += " (another server is listening there: stop it, or pass another --port; --port 0 picks a free one)"
        raise UserError(f"cannot serve on {host}:{port}: {why}") from None
    shown = f"[{host}]" if ":" in host else host
    shown_dir = str(site_dir).rstrip("/\\") + "/"
    print(f"Serving {shown_dir} at http://{shown}:{server.effective_port}/ (Ctrl+C to stop)", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()

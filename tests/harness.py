"""What the tests and the bench both need to drive the site: the shared data's and the
examples' paths, Debian's Chromium launched with one set of flags, a WSGI app or a plain
folder served on a loopback port, and the wait for the page to settle.

Kept free of pytest so that bench/ can import it (`from tests.harness import ...` with the
repository root on sys.path); it is not part of the shipped `tfjs_transfer` package.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The shared data lives beside the checkout unless TFJS_TRANSFER_SHARED says otherwise
# (a git worktree, CI).
SHARED = Path(os.environ.get("TFJS_TRANSFER_SHARED", ROOT.parent / "shared" / "data"))
BRAND_TRAIN = SHARED / "brand" / "train"
BRAND_TEST = SHARED / "brand" / "test"
SIGN_DIGITS = SHARED / "sign-digits"
MOBILENET_H5 = SHARED / "mobilenet" / "mobilenet_0.25_224_imagenet.h5"
# The same MobileNet as Keras's ImageNet download names it in its cache (`<KERAS_HOME>/models/`):
# a cache pre-seeded with MOBILENET_H5 under this name stands in for the download.
KERAS_MOBILENET_NAME = "mobilenet_2_5_224_tf.h5"

# The example logos shipped in the repository (examples/README.md), the embedded default
# where the shared data is absent: copies of BRAND_TRAIN and BRAND_TEST.
EXAMPLE_TRAIN = ROOT / "examples" / "logos" / "train"
EXAMPLE_TEST = ROOT / "examples" / "logos" / "test"

# Debian's Chromium, never a browser downloaded by Playwright (nothing downloads at run time).
CHROMIUM = "/usr/bin/chromium"
# Headless without a GPU or a sandbox (containers), and none of the background traffic
# (QUIC, updates, sync) that would reach for the network or compete for the CPU.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")

STATUS = "[data-testid=status]"


def chromium_missing() -> str | None:
    """Why Chromium cannot be driven here (its binary or the playwright package is missing), or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing: pip install -e '.[test]'"
    return None


def launch_chromium(playwright, extra_args: Sequence[str] = ()):
    """Debian's Chromium through a started Playwright (`sync_playwright()`), with CHROMIUM_ARGS."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


@contextlib.contextmanager
def serve_wsgi(app, threads: int = 8) -> Iterator[str]:
    """`app` under waitress on 127.0.0.1, a free port, in a thread; yields its URL ending in /."""
    import waitress

    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}/"
    finally:
        # close() alone leaves waitress's worker threads alive, writing wake-up bytes into
        # whatever file later reuses the closed descriptor.
        server.task_dispatcher.shutdown()
        server.close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # a browser context closed mid-download: not worth a traceback
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """A plain http.server on `folder` (no Flask, no COOP/COEP headers, like GitHub Pages) on
    127.0.0.1, a free port, in a thread; yields its URL ending in /."""
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def wait_settled(page, timeout_ms: float) -> str:
    """Waits until the page's status is no longer loading; returns the state it settled in
    ('ready' or 'error')."""
    page.wait_for_function(
        f"['ready', 'error'].includes(document.querySelector('{STATUS}')?.dataset.state)", timeout=timeout_ms)
    return page.get_attribute(STATUS, "data-state")


def open_ready(page, url: str, timeout_ms: float) -> float:
    """Opens the page and waits until it is ready; returns the milliseconds that took.
    A page that settles in 'error' raises RuntimeError with its status text."""
    start = time.perf_counter()
    page.goto(url)
    if wait_settled(page, timeout_ms) != "ready":
        raise RuntimeError(f"{url}: the page did not get ready: {page.inner_text(STATUS)}")
    return (time.perf_counter() - start) * 1000

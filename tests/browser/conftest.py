"""Browser fixtures: one headless Debian Chromium per session (driven by Playwright's
sync API, launched by tests/harness.py), pages that fail their test on any console error
or uncaught page error, and the built site served both by the project's Flask app
(`served_site`, from tests/conftest.py) and by a plain static server under a sub-path."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from ..harness import chromium_missing, launch_chromium, serve_folder, wait_settled

SUB_PATH = "some/sub/path/"
READY_TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def browser():
    reason = chromium_missing()
    if reason:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = launch_chromium(pw)
        yield b
        b.close()
    finally:
        pw.stop()


class Watched:
    """A page plus what went wrong on it: console errors and uncaught exceptions."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        self.allowed: list[re.Pattern] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def _console(self, msg):
        if msg.type == "error":
            self.errors.append(f"console.error: {msg.text}")

    def allow(self, pattern: str) -> None:
        """Expected errors of a test that provokes them (e.g. a 404 for a removed model)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def watched(browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    w = Watched(page)
    yield w
    context.close()
    bad = w.unexpected()
    assert not bad, "errors in the page:\n" + "\n".join(bad)


@pytest.fixture
def page(watched):
    return watched.page


def open_app(page, url: str, state: str = "ready"):
    """Opens the page and waits until it is no longer loading; checks the state it settled in."""
    page.goto(url)
    got = wait_settled(page, READY_TIMEOUT_MS)
    assert got == state, f"status {got}: {page.inner_text('[data-testid=status]')}"
    return page


def wait_for_prediction_of(page, before: str | None, name: str) -> None:
    """Waits until the page shows a new prediction (data-seq past `before`) of the file `name`:
    not a re-prediction of the last image that ends meanwhile."""
    page.wait_for_function("([before, name]) => { const e = document.querySelector('[data-testid=prediction]');"
                           " return e.dataset.seq !== before && e.dataset.file === name; }", arg=[before, name])


def chart_epochs(page) -> list[str]:
    """The last epoch each training chart (loss, accuracy) has drawn."""
    return page.eval_on_selector_all("[data-testid=charts] .chart", "els => els.map((e) => e.dataset.epochs)")


@pytest.fixture(scope="session")
def site_url(served_site, built_site):
    """The Flask-served site's URL; the built site must hold the web bundle."""
    missing = [n for n in ("index.html", "app.js", "style.css", "tfjs-backend-wasm-simd.wasm")
               if not (Path(built_site) / n).is_file()]
    assert not missing, (f"the built site lacks {missing}: build the web bundle first "
                         "(cd web && npm ci && npm run build, or make web)")
    return served_site


@pytest.fixture(scope="session")
def static_root(built_site, tmp_path_factory):
    """A plain http.server (no Flask, no special headers) on a folder holding copies of
    the site: the good one under some/sub/path/, broken ones beside it."""
    root = tmp_path_factory.mktemp("static")
    shutil.copytree(built_site, root / SUB_PATH)
    with serve_folder(root) as base:
        yield root, base


@pytest.fixture(scope="session")
def static_site_url(static_root):
    root, base = static_root
    return base + SUB_PATH


@pytest.fixture
def broken_site(static_root, built_site):
    """Makes a copy of the site at <name>/ under the static server, lets the test break it, returns its URL."""
    root, base = static_root

    def make(name: str, breaker) -> str:
        dest = root / name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(built_site, dest, ignore=shutil.ignore_patterns("images", "keras"))
        breaker(dest)
        return f"{base}{name}/"

    return make

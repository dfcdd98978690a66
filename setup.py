"""The one build step pyproject.toml cannot declare: the wheel carries the built page.

`build` copies the page bundle into every site; an installed tfjs-transfer has no
checkout's web/dist to copy it from, so the wheel ships web/dist as the package data
tfjs_transfer/web/ (found by pipeline/page.py). Building the wheel runs the web build
when web/dist is missing or older than its sources, so it may need Node.js and npm;
installing the wheel never does. Editable installs skip this: a checkout uses web/dist.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
WEB = HERE / "web"
DIST = WEB / "dist"
# What the bundle is made from (web/build.mjs); the Makefile's WEB_SOURCES say the same.
SOURCES = ("src", "tools", "index.html", "style.css", "build.mjs", "package-lock.json")


def _newest(paths) -> float:
    times = [0.0]
    for p in paths:
        if p.is_dir():
            times += [f.stat().st_mtime for f in p.rglob("*") if f.is_file()]
        elif p.is_file():
            times.append(p.stat().st_mtime)
    return max(times)


def _npm(*args: str) -> None:
    if shutil.which("npm") is None:
        raise SystemExit("error: building the tfjs-transfer wheel bundles the page from web/, which needs "
                         "Node.js 20 and npm (not found on PATH); install them, or run `make web` first "
                         "where they are. Installing the wheel needs neither.")
    subprocess.run(["npm", *args], cwd=WEB, check=True)


def build_page() -> Path:
    """web/dist, (re)built only when missing or older than its sources (an sdist ships it built)."""
    built = DIST / "index.html"
    if built.is_file() and built.stat().st_mtime >= _newest(WEB / s for s in SOURCES):
        return DIST
    if not (WEB / "package.json").is_file():
        raise SystemExit(f"error: {DIST}: no built page and no web/ sources to build it from")
    installed = WEB / "node_modules" / ".package-lock.json"  # npm writes it on every install
    if not installed.is_file() or installed.stat().st_mtime < (WEB / "package-lock.json").stat().st_mtime:
        _npm("ci", "--no-audit", "--no-fund", "--loglevel=error")
    _npm("run", "--silent", "build")
    return DIST


class build_py_with_page(build_py):
    """build_py, then web/dist copied whole (chunks and all) into the package as web/."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "tfjs_transfer" / "web"
        shutil.rmtree(dest, ignore_errors=True)  # no chunk left over from an earlier bundle
        shutil.copytree(build_page(), dest)


setup(cmdclass={"build_py": build_py_with_page})

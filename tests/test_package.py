"""tfjs-transfer as a package: the wheel carries the built page and, installed into a
fresh venv, builds, predicts and serves from a folder with no checkout; the page is found
in a checkout or an install; `make setup` refuses a Python TensorFlow 2.19 cannot run on.

The wheel is built with `pip wheel --no-deps .` rather than `python -m build --wheel`:
the same PEP 517 backend (setuptools, in an isolated build env) makes the same wheel, and
pip is in every venv, so the test needs no extra tool installed beside the project.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tfjs_transfer import page
from tfjs_transfer.errors import UserError

from .conftest import BRAND_TEST, BRAND_TRAIN, MOBILENET_H5, ROOT

PAGE_FILES = {"index.html", "app.js", "style.css", "favicon.svg", "tfjs-backend-wasm.wasm",
              "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm"}


# --- finding the page -------------------------------------------------------------------

def _bundle(folder: Path, *names: str) -> Path:
    for name in names or ("index.html",):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    return folder


def test_an_explicit_bundle_wins_and_must_be_built(tmp_path):
    assert page.find_web_dist(_bundle(tmp_path / "mine")) == tmp_path / "mine"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty: no built page here \(index.html missing\)"):
        page.find_web_dist(tmp_path / "empty")


def test_a_checkout_uses_its_own_web_dist_before_a_packaged_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(page, "is_checkout", lambda: True)
    monkeypatch.setattr(page, "CHECKOUT_WEB_DIST", _bundle(tmp_path / "checkout"))
    monkeypatch.setattr(page, "packaged_web_dist", lambda: _bundle(tmp_path / "packaged"))
    assert page.find_web_dist() == tmp_path / "checkout"


def test_an_unbuilt_checkout_says_make_web(tmp_path, monkeypatch):
    monkeypatch.setattr(page, "is_checkout", lambda: True)
    monkeypatch.setattr(page, "CHECKOUT_WEB_DIST", tmp_path / "dist")
    monkeypatch.setattr(page, "packaged_web_dist", lambda: tmp_path / "none")
    with pytest.raises(UserError, match=r"dist: the page is not built; run `make web`"):
        page.find_web_dist()


def test_an_install_uses_the_packaged_page_or_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr(page, "is_checkout", lambda: False)
    monkeypatch.setattr(page, "packaged_web_dist", lambda: tmp_path / "web")
    with pytest.raises(UserError, match=r"web: this installation of tfjs-transfer has no built page.*--web-dist"):
        page.find_web_dist()
    _bundle(tmp_path / "web")
    assert page.find_web_dist() == tmp_path / "web"


def test_this_checkout_is_one_and_its_web_dist_is_the_default():
    assert page.is_checkout() and page.CHECKOUT_WEB_DIST == ROOT / "web" / "dist"


def test_bundle_files_include_chunks_in_subfolders(tmp_path):
    _bundle(tmp_path, "index.html", "chunks/train-X.js")
    assert [name for name, _ in page.files(tmp_path)] == ["chunks/train-X.js", "index.html"]


# --- make setup's Python check ------------------------------------------------------------

def _stub_python(tmp_path: Path, version: str) -> Path:
    """An 'interpreter' that prints `version` whatever it is asked."""
    stub = tmp_path / f"python{version}"
    stub.write_text(f"#!/bin/sh\necho {version}\n")
    stub.chmod(0o755)
    return stub


def _make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args],
                          capture_output=True, text=True, timeout=60)


def test_setup_refuses_python_3_13_saying_which_python_to_use_and_how(tmp_path):
    """The venv rule itself, run with a stub 3.13 and a venv path of its own: it stops before
    creating anything, with the versions that work and the ways to get one."""
    venv = tmp_path / "venv"
    r = _make(f"{venv}/.installed", f"VENV={venv}", f"PYTHON={_stub_python(tmp_path, '3.13')}")
    assert r.returncode != 0 and not venv.exists()
    assert "is Python 3.13; tfjs-transfer needs Python 3.10, 3.11 or 3.12" in r.stderr
    for way in ("uv python install 3.12", "deadsnakes", "brew install python@3.12", "make setup PYTHON="):
        assert way in r.stderr


@pytest.mark.parametrize("version", ["3.10", "3.12"])
def test_the_python_check_passes_a_supported_version(tmp_path, version):
    r = _make("check-python", f"PYTHON={_stub_python(tmp_path, version)}")
    assert r.returncode == 0 and r.stderr == ""


def test_the_python_check_names_a_missing_interpreter(tmp_path):
    r = _make("check-python", f"PYTHON={tmp_path / 'python3.12'}")
    assert r.returncode == 2 and "is Python (not found)" in r.stderr


# --- the wheel, installed into a fresh venv --------------------------------------------------

def _clean_env() -> dict:
    """No trace of this checkout or the test venv: only what the fresh venv installed."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--wheel-dir", str(out), str(ROOT)], check=True, timeout=600)
    (whl,) = out.glob("tfjs_transfer-*.whl")
    print(f"\nwheel: {whl.name} {whl.stat().st_size / 1e6:.2f} MB, built in {time.perf_counter() - t:.0f} s")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel and its pinned dependencies; returns its bin/."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    t = time.perf_counter()
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "-c", str(ROOT / "requirements.lock"), str(wheel)],
                       capture_output=True, text=True, timeout=1200, env=_clean_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    print(f"\nfresh venv: pip install of the wheel and its dependencies {time.perf_counter() - t:.0f} s")
    return venv / "bin"


@pytest.mark.slow
def test_the_wheel_holds_the_package_the_page_and_the_labels_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packaged_page = {n.removeprefix("tfjs_transfer/web/") for n in names if n.startswith("tfjs_transfer/web/")}
    assert {name for name, _ in page.files(ROOT / "web" / "dist")} == packaged_page
    assert PAGE_FILES <= packaged_page
    assert "tfjs_transfer/data/imagenet_classes.json" in names
    assert {"tfjs_transfer/cli.py", "tfjs_transfer/page.py", "tfjs_transfer/build.py"} <= set(names)
    assert all(n.startswith(("tfjs_transfer/", "tfjs_transfer-")) for n in names), names
    assert not [n for n in names if "/tests/" in n or "/bench/" in n or n.endswith((".mjs", ".wat", "package.json"))
                or "/src/" in n or "__pycache__" in n]
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "tfjs-transfer = tfjs_transfer.cli:main" in entry_points


@pytest.mark.slow
def test_the_installed_wheel_builds_predicts_and_serves_with_no_checkout(installed, tmp_path):
    work = tmp_path / "elsewhere"  # an unrelated folder: no web/dist, no pipeline/ to import
    work.mkdir()
    env = _clean_env()

    def run(*argv, **kw):
        return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600, **kw)

    where = run(str(installed / "python"), "-c",
                "import tfjs_transfer.page as p; print(p.is_checkout(), p.find_web_dist(), sep='\\n')")
    assert where.returncode == 0, where.stderr
    checkout, web = where.stdout.split()
    assert checkout == "False" and Path(web).is_relative_to(installed.parent) and web.endswith("tfjs_transfer/web")

    t = time.perf_counter()
    b = run(str(installed / "tfjs-transfer"), "build", "--data", str(BRAND_TRAIN), "--weights", str(MOBILENET_H5),
            "--out", "site", "--epochs", "2", "--cache", str(tmp_path / "cache"))
    print(f"\ninstalled `tfjs-transfer build` (logos, --epochs 2): {time.perf_counter() - t:.0f} s")
    assert b.returncode == 0, b.stdout[-2000:] + b.stderr[-2000:]
    site = work / "site"
    assert PAGE_FILES <= {p.name for p in site.iterdir()}
    assert (site / "index.html").read_bytes() == (Path(web) / "index.html").read_bytes()

    images = sorted(BRAND_TEST.iterdir())
    pr = run(str(installed / "tfjs-transfer"), "predict", "site", *map(str, images))
    assert pr.returncode == 0, pr.stderr[-2000:]
    lines = pr.stdout.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == list(map(str, images))
    # the logos' test images are named after their brand; a 2-epoch head gets these right
    assert all(Path(line.split(": ")[0]).name.startswith(line.split(": ")[1].split()[0]) for line in lines), lines

    server = subprocess.Popen([str(installed / "tfjs-transfer"), "serve", "site", "--port", "0"], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(120, server.kill)
    killer.start()
    try:
        banner = server.stdout.readline()
        assert banner.startswith("Serving site/ at http://127.0.0.1:"), banner + server.stderr.read()
        url = banner.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and b"<!doctype html>" in r.read().lower()
        with urllib.request.urlopen(url + "manifest.json", timeout=30) as r:
            assert r.status == 200 and b'"labels"' in r.read()
    finally:
        killer.cancel()
        server.terminate()
        server.wait(timeout=30)

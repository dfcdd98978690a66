"""Shared fixtures: a tiny fake site for server unit tests, one real site built once per
session, and that site served on a loopback port."""

import pytest

# The shared data's paths live in tests/harness.py, which the bench shares; the test
# modules import them from here.
from .harness import BRAND_TEST, BRAND_TRAIN, MOBILENET_H5, ROOT, SHARED, SIGN_DIGITS, serve_wsgi

__all__ = ["BRAND_TEST", "BRAND_TRAIN", "MOBILENET_H5", "ROOT", "SHARED", "SIGN_DIGITS"]


@pytest.fixture
def tiny_site(tmp_path):
    """A hand-made site folder with one file of each kind the server must type right."""
    site = tmp_path / "site"
    (site / "models" / "head").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>t</title><p>hello</p>")
    (site / "manifest.json").write_text('{"labels": ["a", "b"]}')
    (site / "app.js").write_text("console.log('hi');")
    (site / "tfjs-backend-wasm-simd.wasm").write_bytes(b"\0asm\1\0\0\0")
    (site / "models" / "head" / "model.json").write_text('{"format": "layers-model"}')
    (site / "models" / "head" / "group1-shard1of1.bin").write_bytes(bytes(range(256)) * 64)
    (tmp_path / "secret.txt").write_text("outside the site")
    return site


@pytest.fixture
def app(tiny_site):
    from tfjs_transfer.serve import create_app

    app = create_app(tiny_site)
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory):
    """One feature cache for the whole session, so builds after the first are warm."""
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def built_site(tmp_path_factory, feature_cache):
    """The logos built once with the shared MobileNet, as `make build` would."""
    from tfjs_transfer.build import BuildConfig, build

    out = tmp_path_factory.mktemp("built") / "site"
    build(BuildConfig(data=BRAND_TRAIN, weights=str(MOBILENET_H5), out=out,
                      cache_dir=feature_cache, seed=0, verbose=0))
    return out


@pytest.fixture(scope="session")
def served_site(built_site):
    """The built site behind the real app and WSGI server on a loopback port; yields its URL."""
    from tfjs_transfer.serve import create_app

    with serve_wsgi(create_app(built_site), threads=8) as url:
        yield url

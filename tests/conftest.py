"""Shared fixtures: paths to the shared data, a tiny fake site for server unit tests,
one real site built once per session, and that site served on a loopback port."""

import os
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TFJS_TRANSFER_SHARED", ROOT.parent / "shared" / "data"))
BRAND_TRAIN = SHARED / "brand" / "train"
BRAND_TEST = SHARED / "brand" / "test"
SIGN_DIGITS = SHARED / "sign-digits"
MOBILENET_H5 = SHARED / "mobilenet" / "mobilenet_0.25_224_imagenet.h5"


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
    from pipeline.serve import create_app

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
    from pipeline.build import BuildConfig, build

    out = tmp_path_factory.mktemp("built") / "site"
    build(BuildConfig(data=BRAND_TRAIN, weights=str(MOBILENET_H5), out=out,
                      cache_dir=feature_cache, seed=0, verbose=0))
    return out


@pytest.fixture(scope="session")
def served_site(built_site):
    """The built site behind the real app and WSGI server on a loopback port; yields its URL."""
    import waitress

    from pipeline.serve import create_app

    server = waitress.create_server(create_app(built_site), host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}/"
    # close() alone leaves waitress's worker threads alive, writing wake-up bytes into
    # whatever file later reuses the closed descriptor.
    server.task_dispatcher.shutdown()
    server.close()
    thread.join(timeout=10)

"""Every way a newcomer can get the command wrong ends in one `error:` line and exit code 2,
never a traceback: run through the real command in a fresh process, as a user would."""

import socket
import subprocess
import sys

import pytest

from .conftest import BRAND_TEST, ROOT


def tfjs_transfer(*args, timeout=60):
    proc = subprocess.run([sys.executable, "-m", "tfjs_transfer.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def assert_refused(code, out, err, *words):
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err, err
    last = err.strip().splitlines()[-1]
    assert "error: " in last, err  # argparse's is "tfjs-transfer build: error: ...", ours "error: ..."
    for w in words:
        assert w in last, (w, last)
    return last


# --- serve: the folder ------------------------------------------------------------------------

def test_serve_a_missing_folder(tmp_path):
    last = assert_refused(*tfjs_transfer("serve", tmp_path / "site"), str(tmp_path / "site"), "does not exist")
    assert last.startswith("error: ")


def test_serve_an_empty_folder(tmp_path):
    assert_refused(*tfjs_transfer("serve", tmp_path), str(tmp_path), "no index.html", "tfjs-transfer build")


def test_serve_an_unbuilt_folder(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"not a site")
    assert_refused(*tfjs_transfer("serve", tmp_path), str(tmp_path), "no index.html")
    (tmp_path / "index.html").write_text("<p>hello")  # a page, but no manifest: not a built site
    assert_refused(*tfjs_transfer("serve", tmp_path), str(tmp_path), "no manifest.json", "tfjs-transfer build")


def test_serve_a_file(tmp_path):
    (tmp_path / "site").write_text("x")
    assert_refused(*tfjs_transfer("serve", tmp_path / "site"), "not a directory")


def test_serve_on_a_port_in_use(tiny_site):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_refused(*tfjs_transfer("serve", tiny_site, "--port", port),
                       f"cannot serve on 127.0.0.1:{port}", "in use", "--port 0")


def test_serve_never_imports_tensorflow(tmp_path):
    code = ("import sys; from tfjs_transfer import cli; code = cli.main(['serve', sys.argv[1]]); "
            "print(code, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "nope")], cwd=ROOT, capture_output=True,
                         text=True, timeout=60).stdout
    assert out.split() == ["2", "False"]


# --- arguments --------------------------------------------------------------------------------

BUILD = ("build", "--data", "d", "--weights", "none")


@pytest.mark.parametrize("args,words", [
    ((), ["required: command"]),
    (("frobnicate",), ["invalid choice: 'frobnicate'"]),
    (("build", "--data", "d"), ["required: --weights"]),
    ((*BUILD, "--bogus"), ["unrecognized arguments: --bogus"]),
    ((*BUILD, "--epochs", "-1"), ["--epochs", "at least 0, got -1"]),
    ((*BUILD, "--epochs", "many"), ["--epochs", "whole number"]),
    ((*BUILD, "--batch-size", "0"), ["--batch-size", "at least 1"]),
    ((*BUILD, "--learning-rate", "-0.1"), ["--learning-rate", "at least 0"]),
    ((*BUILD, "--validation-split", "1"), ["--validation-split", "below 1"]),
    ((*BUILD, "--folds", "1"), ["--folds", "0 or at least 2, got 1"]),
    ((*BUILD, "--backbone", "resnet"), ["--backbone", "invalid choice: 'resnet'"]),
    (("predict", "site"), ["required: images"]),
    (("predict", "site", "x.jpg", "--top-k", "0"), ["--top-k", "at least 1, got 0"]),
    (("predict", "--imagenet", "imagenet", "x.jpg", "--backbone", "resnet"), ["invalid choice"]),
    (("evaluate", "site"), ["required: data"]),
    (("compare", "d", "--weights", "none", "--folds", "1"), ["--folds", "at least 2"]),
    (("serve", "--port", "70000"), ["--port", "at most 65535"]),
    (("serve", "--port", "http"), ["--port", "whole number"]),
])
def test_argparse_refuses_with_usage_and_an_error_line(args, words):
    code, out, err = tfjs_transfer(*args)
    assert_refused(code, out, err, *words)
    assert err.startswith("usage: tfjs-transfer")


def test_a_missing_data_folder(tmp_path):
    for args in ((*BUILD[:2], tmp_path / "nope", *BUILD[3:], "--out", tmp_path / "site"),
                 ("compare", tmp_path / "nope", "--weights", "none"),
                 ("evaluate", tmp_path, tmp_path / "nope")):
        assert_refused(*tfjs_transfer(*args), f"error: {tmp_path / 'nope'}: no such folder")


def test_predict_a_missing_image_or_site(tmp_path):
    good = BRAND_TEST / "windows.png"
    assert_refused(*tfjs_transfer("predict", tmp_path, good, tmp_path / "nope.jpg"),
                   f"error: {tmp_path / 'nope.jpg'}: no such image")
    assert_refused(*tfjs_transfer("predict", tmp_path / "site", good), f"{tmp_path / 'site'}: no such site folder")
    assert_refused(*tfjs_transfer("predict", "--imagenet", tmp_path / "w.h5", good), "no such weights file")


def test_predict_with_a_folder_that_is_not_a_site(tmp_path):
    """The one case here that pays TensorFlow's import: the folder exists, its manifest does not."""
    assert_refused(*tfjs_transfer("predict", tmp_path, BRAND_TEST / "windows.png"),
                   f"{tmp_path}: not a built site (no manifest.json)")

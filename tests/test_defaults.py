"""The embedded default: the example logos shipped in examples/, and the Makefile's choice
between them (with Keras's ImageNet download) and ../shared/data beside the checkout."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tfjs_transfer import cli, dataset

from .harness import BRAND_TEST, BRAND_TRAIN, EXAMPLE_TEST, EXAMPLE_TRAIN, ROOT
from .test_backbones import keras_home, refusing_proxy  # noqa: F401 (fixtures: a seeded Keras cache)

SHARED_TRAIN = "../shared/data/brand/train"
SHARED_WEIGHTS = "../shared/data/mobilenet/mobilenet_0.25_224_imagenet.h5"


@pytest.mark.parametrize("example,shared", [(EXAMPLE_TRAIN, BRAND_TRAIN), (EXAMPLE_TEST, BRAND_TEST)])
def test_examples_are_byte_identical_copies_of_the_shared_logos(example, shared):
    names = sorted(p.name for p in example.iterdir())
    assert names == sorted(p.name for p in shared.iterdir())
    changed = [n for n in names if (example / n).read_bytes() != (shared / n).read_bytes()]
    assert not changed


def test_example_logos_are_a_usable_dataset_and_documented():
    ds = dataset.scan(EXAMPLE_TRAIN)
    assert ds.labels == ["android", "apple", "windows"] and len(ds.samples) == 90 and not ds.skipped
    readme = (ROOT / "examples" / "README.md").read_text()
    assert "trademarks of their owners" in readme and "tutorial" in readme
    for image in EXAMPLE_TEST.iterdir():  # each test image is listed with its expected label
        assert f"`{image.name}`" in readme


def make_build_command(tmp_path: Path, shared_data: bool, shared_weights: bool, *overrides: str) -> str:
    """The command `make build` would run from a copy of the Makefile in tmp/repo, with
    tmp/shared/data laid out as asked (setup and the web bundle taken as done)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "Makefile", repo)
    if shared_data:
        (tmp_path / "shared/data/brand/train").mkdir(parents=True)
    if shared_weights:
        (tmp_path / "shared/data/mobilenet").mkdir(parents=True)
        (tmp_path / SHARED_WEIGHTS[3:]).write_bytes(b"h5")
    # as a newcomer runs it: not as a sub-make of `make test`, whose MAKEFLAGS and variables
    # would leak in (and make prints "Entering directory" lines for sub-makes)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DATA", "WEIGHTS", "OUT", "ARGS")}
    r = subprocess.run(["make", "--no-print-directory", "-n", "-o", "web", "-o", ".venv/.installed", "build",
                        *overrides], cwd=repo, capture_output=True, text=True, check=True, timeout=30, env=env)
    return r.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("shared_data,shared_weights,data,weights", [
    (True, True, SHARED_TRAIN, SHARED_WEIGHTS),             # this project's machines and CI
    (False, False, "examples/logos/train", "imagenet"),     # any other machine
    (True, False, SHARED_TRAIN, "imagenet"),                # each default on its own
    (False, True, "examples/logos/train", SHARED_WEIGHTS),
])
def test_make_build_defaults_follow_whether_shared_data_is_beside_the_checkout(
        tmp_path, shared_data, shared_weights, data, weights):
    command = make_build_command(tmp_path, shared_data, shared_weights)
    assert command == f".venv/bin/tfjs-transfer build --data {data} --weights {weights} --out site"


def test_make_build_arguments_override_the_defaults(tmp_path):
    command = make_build_command(tmp_path, True, True, "DATA=mine", "WEIGHTS=none")
    assert command == ".venv/bin/tfjs-transfer build --data mine --weights none --out site"


@pytest.mark.slow
def test_the_default_elsewhere_builds_the_examples_with_keras_imagenet_weights(tmp_path, keras_home, feature_cache,
                                                                               capsys):
    """What `make build` runs without ../shared (the download stood in for by a seeded cache),
    then the README's prediction of the 4 example test images."""
    site = tmp_path / "site"
    assert cli.main(["build", "--data", str(EXAMPLE_TRAIN), "--weights", "imagenet", "--out", str(site),
                     "--cache", str(feature_cache), "--quiet"]) == 0
    built = json.loads((site / "manifest.json").read_text())
    assert built["backbone"]["weights"] == "imagenet" and built["labels"] == ["android", "apple", "windows"]
    capsys.readouterr()
    assert cli.main(["predict", str(site), *sorted(map(str, EXAMPLE_TEST.iterdir())), "--json"]) == 0
    top = {Path(r["image"]).name: r["top"][0]["label"] for r in json.loads(capsys.readouterr().out)}
    assert top == {"android.jpg": "android", "apple-reverse.jpg": "apple", "apple8.0.jpeg": "apple",
                   "windows.png": "windows"}

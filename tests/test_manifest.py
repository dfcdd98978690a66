"""pipeline/manifest.py: the one reader and writer of manifest.json, and its errors."""

import json

import numpy as np
import pytest

from tfjs_transfer import manifest
from tfjs_transfer.manifest import ManifestError


def test_round_trip_tags_the_format(tmp_path):
    m = {"labels": ["a", "b"], "training": {"metrics": {"val_accuracy": 0.5}}, "note": "é"}
    manifest.write(tmp_path, m)
    back = manifest.load(tmp_path)
    assert back == {"format": manifest.FORMAT, **m}
    assert manifest.read(tmp_path) == back
    text = (tmp_path / manifest.FILENAME).read_text(encoding="utf-8")
    assert text.endswith("\n") and "é" in text  # indented UTF-8, as the page and people read it


def test_missing_manifest_says_not_a_built_site(tmp_path):
    with pytest.raises(ManifestError, match="not a built site") as e:
        manifest.load(tmp_path)
    assert str(tmp_path) in str(e.value)
    assert manifest.read(tmp_path) is None


@pytest.mark.parametrize("text,problem", [("{not json", "corrupt manifest"), ("[1, 2]", "not a JSON object")])
def test_corrupt_manifest_names_the_file(tmp_path, text, problem):
    (tmp_path / manifest.FILENAME).write_text(text)
    with pytest.raises(ManifestError, match=problem) as e:
        manifest.load(tmp_path)
    assert str(tmp_path / manifest.FILENAME) in str(e.value)
    assert manifest.read(tmp_path) is None


def test_another_format_is_refused_with_the_expected_one(tmp_path):
    (tmp_path / manifest.FILENAME).write_text(json.dumps({"format": "someone-else/2", "labels": []}))
    with pytest.raises(ManifestError, match="someone-else/2") as e:
        manifest.load(tmp_path)
    assert str(tmp_path / manifest.FILENAME) in str(e.value) and manifest.FORMAT in str(e.value)
    assert manifest.read(tmp_path) is None


def test_manifest_error_is_a_user_error():
    """The CLI prints user errors as one line with exit code 2."""
    from tfjs_transfer.errors import UserError

    assert issubclass(ManifestError, UserError)


def test_dataset_section_counts_each_folder():
    class Ds:
        layout, skipped = "splits", []

        def counts(self):
            return {"a": 3}

    d = manifest.dataset_section("data", Ds(), 3, np.array(["train", "valid", "test"]))
    assert d["per_split"] == {"train": 1, "valid": 1, "test": 1} and d["count"] == 3 and d["source"] == "data"


def test_python_folder_marker_round_trip_and_refusals(tmp_path):
    """models.json names the build (fingerprint) the Python-side models came from."""
    manifest.write_python(tmp_path, "abc", ["backbone.h5", "head.h5"])
    assert manifest.read_python(tmp_path) == {"format": manifest.PYTHON_FORMAT, "fingerprint": "abc",
                                             "files": ["backbone.h5", "head.h5"]}
    (tmp_path / manifest.PYTHON_FILENAME).write_text("{broken")
    assert manifest.read_python(tmp_path) is None
    (tmp_path / manifest.PYTHON_FILENAME).write_text(json.dumps({"format": manifest.FORMAT, "fingerprint": "abc"}))
    assert manifest.read_python(tmp_path) is None  # a site's manifest is not a Python folder's marker
    assert manifest.read_python(tmp_path / "missing") is None


@pytest.mark.parametrize("text, problem", [("{", "corrupt TF.js model"), ("[1]", r"corrupt TF.js model \(not a JSON object\)")])
def test_read_object_names_the_file_and_what_it_should_be(tmp_path, text, problem):
    path = tmp_path / "model.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=f"{path}: {problem}"):
        manifest.read_object(path, "TF.js model", "unused")
    with pytest.raises(ManifestError, match="^no model here$"):
        manifest.read_object(tmp_path / "absent.json", "TF.js model", "no model here")

"""`predict` and `evaluate` on a built site, through the CLI, as scripts use them."""

import json
import shutil

import pytest

from tfjs_transfer import cli
from tfjs_transfer.evaluate import metrics_from

from .conftest import BRAND_TEST, BRAND_TRAIN

pytestmark = pytest.mark.slow

EXPECTED = {"android.jpg": "android", "apple-reverse.jpg": "apple", "apple8.0.jpeg": "apple", "windows.png": "windows"}


def test_predict_json_lists_top_k_best_first(built_site, capsys):
    paths = sorted(str(p) for p in BRAND_TEST.iterdir())
    assert cli.main(["predict", str(built_site), *paths, "--json", "--top-k", "2"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == paths
    for r in results:
        assert len(r["top"]) == 2 and r["top"][0]["probability"] >= r["top"][1]["probability"]
        assert {t["label"] for t in r["top"]} <= {"android", "apple", "windows"}
    correct = sum(r["top"][0]["label"] == EXPECTED[r["image"].rsplit("/", 1)[1]] for r in results)
    assert correct >= 3, results  # out-of-distribution images; the default head gets all 4 in practice


def test_predict_reports_a_bad_image_and_goes_on(built_site, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    good = str(BRAND_TEST / "windows.png")
    assert cli.main(["predict", str(built_site), str(bad), good]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: error:" in out and "windows" in out.splitlines()[1]


def test_predict_on_a_folder_that_is_no_site(tmp_path, capsys):
    assert cli.main(["predict", str(tmp_path), str(BRAND_TEST / "windows.png")]) == 2
    assert "not a built site" in capsys.readouterr().err


def test_evaluate_json_and_report(built_site, tmp_path, capsys):
    assert cli.main(["evaluate", str(built_site), str(BRAND_TRAIN), "--json", "--report", str(tmp_path / "r")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["models"] == "keras"
    assert report["count"] == 90 and report["accuracy"] > 0.95
    assert set(report["per_class"]) == {"android", "apple", "windows"}
    assert sum(map(sum, report["confusion_matrix"])) == 90
    assert {"precision", "recall", "f1", "support"} <= set(report["per_class"]["apple"])
    assert (tmp_path / "r" / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "r" / "training_curves.png").is_file()


def test_metrics_from_known_confusions():
    m = metrics_from(__import__("numpy").array([0, 0, 1, 1]), __import__("numpy").array([0, 1, 1, 1]), ["a", "b"])
    assert m["accuracy"] == 0.75 and m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)


def test_the_python_side_models_live_beside_the_site_and_are_found_through_the_manifest(built_site):
    from tfjs_transfer.predict import Predictor

    p = Predictor(built_site)
    assert p.source == "keras"
    python = built_site.parent / "site.python"
    assert (built_site / p.manifest["head"]["keras_path"]).resolve() == (python / "head.h5").resolve()
    assert not (built_site / "keras").exists()


def test_a_site_copied_alone_predicts_with_its_tfjs_models(built_site, tmp_path, capsys):
    """A static host's copy: no Python folder beside it. predict and evaluate say so in one
    line and use the TF.js models; the strict Keras source refuses."""
    from tfjs_transfer.errors import UserError
    from tfjs_transfer.predict import Predictor

    alone = tmp_path / "copy" / "site"
    shutil.copytree(built_site, alone)
    paths = sorted(str(p) for p in BRAND_TEST.iterdir())
    assert cli.main(["predict", str(alone), *paths, "--json"]) == 0
    captured = capsys.readouterr()
    note = f"note: {tmp_path / 'copy' / 'site.python'} (the site's Python-side models) not found; using its TF.js models\n"
    assert captured.err == note
    results = json.loads(captured.out)
    assert sum(r["top"][0]["label"] == EXPECTED[r["image"].rsplit("/", 1)[1]] for r in results) >= 3
    assert Predictor(alone, source="auto").source == "tfjs"
    capsys.readouterr()
    with pytest.raises(UserError, match="Python-side models are missing"):
        Predictor(alone, source="keras")
    assert cli.main(["evaluate", str(alone), str(BRAND_TRAIN), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["models"] == "tfjs" and captured.err == note


def test_python_models_of_another_build_are_refused_by_name(built_site, tmp_path, capsys):
    site, python = tmp_path / "site", tmp_path / "site.python"
    shutil.copytree(built_site, site)
    shutil.copytree(built_site.parent / "site.python", python)
    marker = json.loads((python / "models.json").read_text())
    (python / "models.json").write_text(json.dumps({**marker, "fingerprint": "another build"}))
    assert cli.main(["predict", str(site), str(BRAND_TEST / "windows.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {python}: the Python-side models come from another build") and "Traceback" not in err

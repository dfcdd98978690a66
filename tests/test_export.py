"""`tfjs-transfer export`: each format loaded back by its real consumer in a fresh process and
compared with the site's own Predictor on the 4 test logos; bad input refused with one line."""

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from tfjs_transfer import cli

from .conftest import BRAND_TEST

# (format, quantize, file, consumer code: imports + load `path`, then `probs` for the batch `x`)
KERAS3 = "import keras\nm = keras.saving.load_model(path)\nprobs = np.asarray(m.predict(x, verbose=0))"
TF_KERAS = "import tf_keras\nm = tf_keras.models.load_model(path)\nprobs = m.predict(x, verbose=0)"
SAVEDMODEL = ("import tensorflow as tf\nf = tf.saved_model.load(path).signatures['serving_default']\n"
              "probs = f(images=tf.constant(x))['probabilities'].numpy()")
TFLITE = ("import tensorflow as tf\ni = tf.lite.Interpreter(model_path=path)\ni.allocate_tensors()\n"
          "inp, out = i.get_input_details()[0], i.get_output_details()[0]\nrows = []\n"
          "for row in x:\n    i.set_tensor(inp['index'], row[None])\n    i.invoke()\n"
          "    rows.append(i.get_tensor(out['index'])[0])\nprobs = np.stack(rows)")
# Stated tolerances on probabilities against the site's Keras models (measured on the logos:
# 0 for keras/savedmodel, ~1e-8 for TFLite float32, ~1e-6 float16, ~1e-2 int8).
CASES = [("keras", None, "model.keras", KERAS3, 1e-5), ("keras", None, "model.h5", TF_KERAS, 1e-5),
         ("savedmodel", None, "saved_model", SAVEDMODEL, 1e-5), ("tflite", None, "model.tflite", TFLITE, 1e-5),
         ("tflite", "float16", "model.tflite", TFLITE, 1e-3), ("tflite", "int8", "model.tflite", TFLITE, 0.1)]


IDS = [f"{c[0]}-{c[2]}-{c[1] or 'float32'}" for c in CASES]

# One fresh process loads every case's export with its consumer (each case in its own namespace,
# its error kept as text), so TensorFlow is imported once rather than once a case.
CONSUMERS_SCRIPT = """\
import json, sys, traceback
import numpy as np
cases = json.loads(open(sys.argv[1]).read())
x = np.load(sys.argv[2])
results, errors = {}, {}
for case_id, (code, path) in cases.items():
    scope = {"np": np, "path": path, "x": x}
    try:
        exec(code, scope)
        results[case_id] = np.asarray(scope["probs"])
    except Exception:
        errors[case_id] = traceback.format_exc()
np.savez(sys.argv[3], **results)
open(sys.argv[4], "w").write(json.dumps(errors))
"""


def _run_consumers(cases: dict, x: np.ndarray, folder) -> tuple[dict, dict]:
    """{case id: (consumer code, model path)} -> ({case id: probs}, {case id: traceback})."""
    (folder / "cases.json").write_text(json.dumps({k: (code, str(path)) for k, (code, path) in cases.items()}))
    np.save(folder / "x.npy", x)
    done = subprocess.run([sys.executable, "-c", CONSUMERS_SCRIPT, str(folder / "cases.json"), str(folder / "x.npy"),
                           str(folder / "probs.npz"), str(folder / "errors.json")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(folder / "probs.npz") as probs:
        return {k: probs[k] for k in probs.files}, json.loads((folder / "errors.json").read_text())


@pytest.fixture(scope="module")
def site_reference(built_site):
    from tfjs_transfer.predict import Predictor

    p = Predictor(built_site)
    paths = sorted(BRAND_TEST.iterdir())
    return p.pixels(paths), p.probabilities(paths), p.labels


@pytest.fixture(scope="module")
def exports(built_site, site_reference, tmp_path_factory):
    """Every case exported through the command once (exit code, stdout, stderr, its own folder),
    then loaded back by the consumers in one fresh process: {case id: (..., probs or traceback)}."""
    x = site_reference[0]
    runs, consumers = {}, {}
    for case_id, (fmt, quantize, file, consumer, _) in zip(IDS, CASES):
        parent = tmp_path_factory.mktemp(case_id)
        out = parent / "export"
        argv = ["export", str(built_site), "--format", fmt, "--out", str(out)] + (["--quantize", quantize] if quantize else [])
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main(argv)
        runs[case_id] = (code, stdout.getvalue(), stderr.getvalue(), parent)
        if code == 0:
            consumers[case_id] = (consumer, out / file)
    probs, errors = _run_consumers(consumers, x, tmp_path_factory.mktemp("consumers"))
    return {k: (*run, probs.get(k), errors.get(k)) for k, run in runs.items()}


@pytest.mark.slow
@pytest.mark.parametrize("fmt,quantize,file,consumer,tolerance", CASES, ids=IDS)
def test_each_format_loads_in_its_consumer_and_predicts_as_the_site(site_reference, exports, request, fmt, quantize,
                                                                     file, consumer, tolerance):
    x, expected, labels = site_reference
    code, printed, err, parent, probs, error = exports[request.node.callspec.id]
    out = parent / "export"
    assert code == 0, err
    assert "max |diff|" in printed and f"wrote {out}" in printed
    assert (out / "labels.txt").read_text().splitlines() == labels
    readme = (out / "README.md").read_text()
    assert "(N, 224, 224, 3)" in readme and "x / 127.5 - 1" in readme and "```python" in readme
    assert all(label in readme for label in labels)
    report = json.loads((out / "export.json").read_text())
    assert report["quantize"] == (quantize or "float32")
    assert all(c["max_abs_diff"] <= c["tolerance"] and c["top1_agreement"] >= c["min_top1_agreement"]
               for c in report["checks"])
    assert not list(parent.glob(".export.*"))  # no staging folder left

    assert error is None, error
    diff = float(np.abs(probs - expected).max())
    print(f"{fmt} {quantize or 'float32'} {file}: max |diff| {diff:.2g} on {len(x)} test logos")
    assert probs.shape == expected.shape and diff <= tolerance
    assert (probs.argmax(1) == expected.argmax(1)).all()


@pytest.mark.slow
def test_an_export_that_fails_its_check_leaves_nothing(built_site, tmp_path, monkeypatch, capsys):
    from tfjs_transfer import export_formats

    monkeypatch.setitem(export_formats.TOLERANCE, "float32", 0.0)  # TFLite float32 differs by ~1e-8
    out = tmp_path / "out"
    assert cli.main(["export", str(built_site), "--format", "tflite", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tf.lite.Interpreter (float32): the exported model.tflite differs") and "nothing written" in err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_is_refused_by_argparse(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["export", str(tmp_path), "--format", "onnx", "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and "argument --format: invalid choice: 'onnx'" in capsys.readouterr().err


def test_an_unbuilt_site_is_one_error(tmp_path, capsys):
    (tmp_path / "site").mkdir()
    assert cli.main(["export", str(tmp_path / "site"), "--format", "keras", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'site'}: not a built site (no manifest.json); "
                                       "run `tfjs-transfer build` first\n")
    assert not (tmp_path / "o").exists()


def test_a_non_empty_out_is_refused_and_left_alone(tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("keep")
    assert cli.main(["export", str(tmp_path), "--format", "savedmodel", "--out", str(tmp_path / "o")]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["mine.txt"]


def test_a_quantization_the_format_does_not_have_is_refused(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path), "--format", "keras", "--quantize", "int8", "--out", str(tmp_path / "o")]) == 2
    assert "error: --quantize int8: the keras format is written as float32" in capsys.readouterr().err


def test_the_readme_states_input_preprocessing_labels_and_usage():
    from tfjs_transfer.export import readme
    from tfjs_transfer.preprocess import CAFFE, MOBILENET

    report = {"format": "tflite", "quantize": "int8", "labels": ["a", "b"], "input": {"shape": [224, 224, 3]},
              "preprocessing": MOBILENET.to_manifest(), "files": {"model.tflite": 1_500_000},
              "checks": [{"consumer": "c", "max_abs_diff": 0.01, "tolerance": 1.0, "top1_agreement": 1.0, "images": 12}]}
    text = readme(report, "line 1\nline 2\nline 3")
    assert "(N, 224, 224, 3)" in text and "`x * 0.007843137255 - 1 (= x / 127.5 - 1)`" in text
    assert "0. a\n1. b" in text and "```python\nline 1\nline 2\nline 3\n```" in text and "1.50 MB" in text
    caffe = readme({**report, "preprocessing": CAFFE.to_manifest()}, "u")
    assert "channels reordered to BGR, `(x - [103.939, 116.779, 123.68]) * 1 + 0`" in caffe


def test_the_fresh_process_check_compares_probabilities_and_top1(tmp_path):
    """The check's own machinery, with a numpy-only 'consumer': exact output passes with its numbers;
    one that names the wrong class is refused even within the probability tolerance."""
    from tfjs_transfer.errors import UserError
    from tfjs_transfer.export import check_in_fresh_process

    (tmp_path / "m.npy").write_bytes(b"")
    x = np.array([[0.7, 0.3], [0.2, 0.8], [0.9, 0.1], [0.4, 0.6]], dtype=np.float32)
    same = {"consumer": "numpy", "path": "m.npy", "tolerance": 1e-6, "import": "pass", "load": "pass", "run": "probs = x"}
    result = check_in_fresh_process(same, tmp_path, x, x)
    assert result["max_abs_diff"] == 0 and result["top1_agreement"] == 1 and result["images"] == 4
    swapped = {**same, "tolerance": 1.0, "min_top1_agreement": 0.75, "run": "probs = x[:, ::-1]"}
    with pytest.raises(UserError, match=r"names 0% of 4 of the site's images as the site does \(at least 75%"):
        check_in_fresh_process(swapped, tmp_path, x, x)
    with pytest.raises(UserError, match=r"(?s)numpy could not load the exported m.npy:\n.*ZeroDivisionError"):
        check_in_fresh_process({**same, "load": "1 / 0"}, tmp_path, x, x)

"""The build's feature extractor on TFLite's XNNPACK (pipeline/tflite_engine.py), against TF's."""

import shutil

import numpy as np
import pytest

from tfjs_transfer import backbones, dataset, features, fold, inference, preprocess, tflite_engine
from tfjs_transfer.errors import UserError

from .harness import BRAND_TEST, BRAND_TRAIN, MOBILENET_H5
from .helpers import make_folders, shape_image

TOLERANCE = 5e-3  # features vs Keras, as tests/test_fold.py and the page's parity tests


@pytest.fixture(scope="module")
def mobilenet():
    return backbones.load_backbone(None, str(MOBILENET_H5))


@pytest.fixture(scope="module")
def folded(mobilenet):
    model, report = fold.fold_batch_norms(mobilenet.model)
    assert report.batch_norms > 0
    return model


@pytest.fixture(autouse=True)
def convert_for_any_work(monkeypatch):
    """The tests' few views convert (a build's few views run on TF unless the .tflite is cached)."""
    monkeypatch.setattr(features, "CONVERT_FROM_VIEWS", 0)


@pytest.fixture
def conversions(monkeypatch):
    """Counts the .tflite conversions."""
    calls = []
    real = tflite_engine.convert

    def counted(model):
        calls.append(model)
        return real(model)
    monkeypatch.setattr(tflite_engine, "convert", counted)
    return calls


def pixels(samples, backbone):
    return np.stack([preprocess.prepare(dataset.load_rgb(s.path), backbone.preprocessing) for s in samples])


def test_logos_features_on_xnnpack_agree_with_tf_as_tf_agrees_with_keras(tmp_path, mobilenet, folded):
    # the folded backbone on TF is itself up to 6.4e-3 off Keras on one of the 90 logos (mean 3e-6):
    # XNNPACK's rounding is held to the same order, and to TOLERANCE on the test images below
    samples = dataset.scan(BRAND_TRAIN).samples
    got = features.extract(mobilenet, samples, tmp_path / "cache", verbose=0, model=folded, model_tag="folded",
                           engine="tflite")
    assert got.computed == len(set(got.digests)) > 80  # the logos hold a few duplicates
    x = pixels(samples, mobilenet)
    tf_folded = inference.predict_batches(folded, x, 32)
    keras = mobilenet.model.predict(x, batch_size=32, verbose=0)
    assert 0 < np.abs(got.features - tf_folded).max() <= tflite_engine.AGREEMENT  # 0: another engine indeed ran
    assert np.abs(got.features - keras).max() <= 2 * np.abs(tf_folded - keras).max()
    assert np.abs(got.features - keras).mean() <= 2 * np.abs(tf_folded - keras).mean()


def test_test_images_features_on_xnnpack_within_the_page_tolerance_of_keras(mobilenet, folded):
    samples = [dataset.Sample(p, "?", "test") for p in sorted(BRAND_TEST.iterdir())]
    x = pixels(samples, mobilenet)
    got = tflite_engine.checked_runner(folded, None)(x, 32)
    assert np.abs(got - mobilenet.model.predict(x, verbose=0)).max() <= TOLERANCE


def test_the_tflite_is_converted_once_per_backbone_and_kept_with_the_cache(tmp_path, mobilenet, folded,
                                                                          conversions):
    root = make_folders(tmp_path / "d", labels=("red", "green"), per_class=2)
    run = lambda: features.extract(mobilenet, dataset.scan(root).samples, tmp_path / "cache", verbose=0,  # noqa: E731
                                   model=folded, model_tag="folded", engine="tflite")
    assert run().computed == 4 and len(conversions) == 1
    saved = list((tmp_path / "cache").rglob("*.tflite"))
    assert len(saved) == 1 and (saved[0].parent / "key.json").exists()  # in the backbone's feature-cache folder
    assert run().cached == 4 and len(conversions) == 1  # nothing to compute: nothing converted
    shape_image("red", 99).save(root / "red" / "new.png")
    again = run()
    assert (again.computed, again.cached) == (1, 4) and len(conversions) == 1  # the cached .tflite ran


def test_a_backbone_tflite_cannot_take_falls_back_to_tf(tmp_path, mobilenet, folded, monkeypatch, capsys):
    def refuse(model):
        raise RuntimeError("ConverterError: op not supported")
    monkeypatch.setattr(tflite_engine, "convert", refuse)
    ds = dataset.scan(make_folders(tmp_path / "d", labels=("red", "green"), per_class=2))
    got = features.extract(mobilenet, ds.samples, tmp_path / "cache", verbose=0, model=folded, model_tag="folded",
                           engine="tflite")
    assert "feature extraction on TensorFlow" in capsys.readouterr().err
    np.testing.assert_allclose(got.features, inference.predict_batches(folded, pixels(ds.samples, mobilenet), 32),
                               atol=1e-5)


def test_features_that_disagree_with_tf_fall_back_to_tf(tmp_path, mobilenet, folded, monkeypatch, capsys):
    monkeypatch.setattr(tflite_engine, "AGREEMENT", 0.0)  # any difference at all
    ds = dataset.scan(make_folders(tmp_path / "d", labels=("red",), per_class=2))
    got = features.extract(mobilenet, ds.samples, None, verbose=0, model=folded, engine="tflite")
    assert "differ from TF's" in capsys.readouterr().err
    np.testing.assert_array_equal(got.features, inference.predict_batches(folded, pixels(ds.samples, mobilenet), 32))


def test_engine_tf_never_converts_and_a_wrong_engine_is_refused(tmp_path, mobilenet, conversions):
    ds = dataset.scan(make_folders(tmp_path / "d", labels=("red",), per_class=1))
    features.extract(mobilenet, ds.samples, None, verbose=0, engine="tf")
    assert conversions == []
    with pytest.raises(UserError, match="--engine must be one of tflite, tf"):
        features.extract(mobilenet, ds.samples, None, verbose=0, engine="onnx")


def test_lanes_give_the_same_features_for_any_batch_and_piece_size(folded):
    blob = tflite_engine.convert(folded)
    x = np.random.default_rng(1).uniform(-1, 1, (7, *folded.input_shape[1:])).astype(np.float32)
    single = tflite_engine.Runner(blob, lanes=1, piece=1)
    one = np.concatenate([single.predict(x[i:i + 1], 1) for i in range(len(x))])
    assert one.shape == (7, *folded.output_shape[1:])
    for piece in (1, 2, 4):
        runner = tflite_engine.Runner(blob, lanes=2, piece=piece)
        for batch in (2, 3, 7):  # pieces padded at a batch's end, batches cut short at x's end
            np.testing.assert_array_equal(runner.predict(x, batch), one, err_msg=f"piece {piece}, batch {batch}")


def test_few_views_run_on_tf_unless_the_tflite_is_already_cached(tmp_path, mobilenet, folded, monkeypatch,
                                                                  conversions):
    monkeypatch.setattr(features, "CONVERT_FROM_VIEWS", 10)
    root = make_folders(tmp_path / "d", labels=("red", "green"), per_class=2)
    run = lambda cache: features.extract(mobilenet, dataset.scan(root).samples, cache, verbose=0,  # noqa: E731
                                         model=folded, model_tag="folded", engine="tflite")
    got = run(tmp_path / "cold")
    assert conversions == [] and not list((tmp_path / "cold").rglob("*.tflite"))
    np.testing.assert_array_equal(got.features, inference.predict_batches(folded, pixels(got.samples, mobilenet), 32))
    monkeypatch.setattr(features, "CONVERT_FROM_VIEWS", 0)
    run(tmp_path / "warm")  # converts, keeps the .tflite
    monkeypatch.setattr(features, "CONVERT_FROM_VIEWS", 10)
    for d in (tmp_path / "warm").glob("*/??"):
        shutil.rmtree(d)  # the features gone, the .tflite kept
    again = run(tmp_path / "warm")
    assert again.computed == 4 and len(conversions) == 1
    assert 0 < np.abs(again.features - got.features).max() <= tflite_engine.AGREEMENT  # XNNPACK ran


@pytest.mark.slow
def test_a_build_extracts_on_xnnpack_converting_once_and_engine_tf_runs_tf(tmp_path, conversions):
    from tfjs_transfer import cli

    from .test_build import run_build

    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>stand-in</title>")
    data = make_folders(tmp_path / "d", labels=("red", "green"), per_class=4)
    cache = tmp_path / "cache"
    assert run_build(data, tmp_path / "a", cache, web) == 0
    assert len(conversions) == 1 and len(list(cache.rglob("model-*.tflite"))) == 1
    shape_image("red", 99).save(data / "red" / "new.png")
    assert run_build(data, tmp_path / "a", cache, web) == 0  # one more image: the cached .tflite runs it
    assert len(conversions) == 1
    assert run_build(data, tmp_path / "b", tmp_path / "cache-tf", web, "--engine", "tf") == 0
    assert len(conversions) == 1 and not list((tmp_path / "cache-tf").rglob("*.tflite"))
    with pytest.raises(SystemExit) as e:
        cli.main(["build", "--engine", "onnx"])
    assert e.value.code == 2

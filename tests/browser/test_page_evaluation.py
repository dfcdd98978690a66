"""The page's evaluation in headless Chromium on the built logo site: the Python head scored on
the held-out images (images.json's roles other than train) gives what Python's `evaluate`
gives on the same files; after training in the page the evaluation is the page head's, and a
wrong example clicked shows its prediction; a loaded merged model is scored from pixels; the
evaluation code (and tfjs-vis) loads only when used; no tensor leaks; nothing held out gets a
message."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter

import pytest

from .conftest import open_app
from .test_page import downloads_of, save_downloads

pytestmark = pytest.mark.browser

EVALUATION = "[data-testid=evaluation]"
PREDICTION = "[data-testid=prediction]"
STATUS = "[data-testid=status]"


@pytest.fixture(scope="session")
def held_out(built_site) -> list[dict]:
    images = json.loads((built_site / "images.json").read_text())["images"]
    held = [i for i in images if i["role"] != "train"]
    assert held, "the test site holds no image out: the evaluation would have nothing to score"
    return held


@pytest.fixture(scope="session")
def python_report(built_site, held_out, tmp_path_factory) -> dict:
    """Python's `evaluate` on the very files the page scores (the site's held-out images)."""
    from tfjs_transfer.evaluate import evaluate

    folder = tmp_path_factory.mktemp("held_out")
    for n, image in enumerate(held_out):
        src = built_site / image["path"]
        dest = folder / image["label"] / f"{n}{src.suffix}"
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(src, dest)
    return evaluate(built_site, folder)


def evaluation(page) -> dict:
    return json.loads(page.get_attribute(EVALUATION, "data-result"))


def evaluate(page, expect: str = "done") -> dict:
    """Clicks Evaluate and returns the page's result once shown."""
    before = page.get_attribute(EVALUATION, "data-seq")
    page.click("[data-testid=evaluate]")
    page.wait_for_function(f"document.querySelector('{EVALUATION}').dataset.seq !== '{before}'", timeout=120_000)
    assert page.get_attribute(EVALUATION, "data-state") == expect, page.inner_text(EVALUATION)
    return evaluation(page)


def num_tensors(page) -> int:
    return page.evaluate("window.tfjsTransfer.numTensors()")


def test_python_head_scored_as_python_scores_it(page, site_url, built_site, held_out, python_report):
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    open_app(page, site_url + "?prepare=0")  # no idle-time import (web/src/prepare.js; test_page_stall.py)
    # the first visit loads app.js and what index.html preloads: not the evaluation or tfjs-vis
    preloaded = set(re.findall(r'modulepreload" href="([^"]+)"', (built_site / "index.html").read_text()))
    first = {u.rsplit("/", 1)[-1] for u in requested if u.endswith(".js")}
    # the TF.js worker and the training kernels' helper (kernel-worker.js, started with each wasm
    # backend) load with the chunks they import, once the page is ready
    worker = {name for entry in ("tf-worker.js", "kernel-worker.js")
              for name in (entry, *re.findall(r'"\./([^"]+\.js)"', (built_site / entry).read_text()))}
    assert not any(f.startswith(("evaluating-", "training-")) for f in worker), worker
    assert first - (worker - preloaded) == preloaded | {"app.js"}, first
    tensors = num_tensors(page)
    got = evaluate(page)
    assert any("/evaluating-" in u for u in requested)
    assert num_tensors(page) == tensors

    labels = python_report["labels"]
    assert got["head"] == "python"
    assert got["labels"] == labels
    assert got["count"] == len(held_out) == python_report["count"]
    counts = Counter(i["label"] for i in held_out)
    assert [(c["name"], c["count"]) for c in got["per_class"]] == [(label, counts[label]) for label in labels]
    assert sum(map(sum, got["confusion_matrix"])) == len(held_out)
    # same images, same head: the same predictions (features differ by ~1e-3, far from a tie here)
    assert got["confusion_matrix"] == python_report["confusion_matrix"]
    assert got["accuracy"] == pytest.approx(python_report["accuracy"], abs=1e-9)
    for c in got["per_class"]:
        assert c["accuracy"] == pytest.approx(python_report["per_class"][c["name"]]["recall"], abs=1e-9)
    # tfjs-vis drew both
    assert page.locator("#evaluation-per-class table").count() == 1
    assert page.locator("#evaluation-matrix canvas, #evaluation-matrix svg").count() >= 1
    print(f"\npython head on {got['count']} held-out images: accuracy {got['accuracy']:.4f}, per class "
          + ", ".join(f"{c['name']} {c['correct']}/{c['count']}" for c in got["per_class"]))


def test_training_in_the_page_evaluates_its_head_and_a_wrong_example_shows_its_prediction(page, site_url, held_out):
    open_app(page, site_url)
    before = page.get_attribute(EVALUATION, "data-seq")
    # one epoch at a learning rate too small to learn anything: a head that gets some wrong
    page.fill("[data-testid=epochs]", "1")
    page.fill("[data-testid=learning-rate]", "0.000001")
    page.click("[data-testid=train]")
    page.wait_for_function(
        f"document.querySelector('{EVALUATION}').dataset.seq !== '{before}'"
        f" && document.querySelector('{STATUS}').dataset.state === 'ready'", timeout=180_000)
    assert page.get_attribute(EVALUATION, "data-state") == "done", page.inner_text(EVALUATION)
    got = evaluation(page)
    tensors = num_tensors(page)  # the page's head is now among them
    assert got["head"] == "browser"
    assert got["count"] == len(held_out)
    assert sum(map(sum, got["confusion_matrix"])) == len(held_out)
    correct = sum(got["confusion_matrix"][i][i] for i in range(len(got["labels"])))
    assert len(got["wrong"]) == len(held_out) - correct > 0, got
    confidences = [w["confidence"] for w in got["wrong"]]
    assert confidences == sorted(confidences, reverse=True)
    # the page head's own probabilities agree with the evaluation's
    worst = got["wrong"][0]
    top = page.evaluate("(url) => window.tfjsTransfer.predictUrl(url)", worst["id"])[0]
    assert top["label"] == worst["predicted"]
    assert top["probability"] == pytest.approx(worst["confidence"], abs=1e-4)

    thumbs = page.locator(f"{EVALUATION} [data-example-id]")
    assert thumbs.count() == min(len(got["wrong"]), 48)
    seq = page.get_attribute(PREDICTION, "data-seq")
    thumbs.first.click()
    page.wait_for_function(f"document.querySelector('{PREDICTION}').dataset.seq !== '{seq}'")
    shown = json.loads(page.get_attribute(PREDICTION, "data-result"))
    assert page.get_attribute(PREDICTION, "data-file") == worst["name"]
    assert page.get_attribute(PREDICTION, "data-head") == "browser"
    assert shown[0]["label"] == worst["predicted"]
    assert shown[0]["probability"] == pytest.approx(worst["confidence"], abs=1e-4)
    assert page.locator("[data-testid=preview] canvas").count() == 1

    # evaluating again gives the same figures; neither evaluation leaves a tensor behind
    assert evaluate(page) == got
    page.select_option("[data-testid=head-select]", "python")
    assert evaluate(page)["head"] == "python"
    assert num_tensors(page) == tensors


def test_nothing_held_out_says_how_to_get_an_evaluation(page, site_url):
    open_app(page, site_url)
    page.evaluate("window.tfjsTransfer.project().examples.forEach((e) => { e.role = 'train'; })")
    got = evaluate(page, expect="empty")
    assert got["count"] == 0 and got["accuracy"] is None
    assert all(c["count"] == 0 and c["accuracy"] is None for c in got["per_class"])
    assert "about 15% of each class is held out" in page.inner_text(EVALUATION)


def test_a_loaded_merged_model_is_evaluated_from_pixels(page, site_url, python_report, tmp_path):
    open_app(page, site_url)
    files = save_downloads(downloads_of(page, "[data-testid=download-merged]"), tmp_path)
    page.set_input_files("[data-testid=load-model]", files)
    page.wait_for_function("document.querySelector('[data-testid=message]').textContent.includes('merged')")
    features_before = page.evaluate("window.tfjsTransfer.project().features.size")
    tensors = num_tensors(page)
    got = evaluate(page)
    assert got["head"] == "browser"
    assert page.evaluate("window.tfjsTransfer.project().features.size") == features_before  # pixels, not features
    assert got["confusion_matrix"] == python_report["confusion_matrix"]
    assert num_tensors(page) == tensors


def test_a_class_name_is_shown_as_text_not_html(page, site_url):
    open_app(page, site_url)
    name = '<img src=x id=injected>android'
    page.evaluate("""(name) => {
        const p = window.tfjsTransfer.project();
        p.examples.forEach((e) => { if (e.label === p.classes[0]) e.label = name; });
        p.classes[0] = name;
    }""", name)
    got = evaluate(page)
    # the Python head's 'android' is now a class the project does not have: a column of its own
    assert got["labels"] == [name, "apple", "windows", "android"]
    assert got["per_class"][0]["count"] == 6 and got["per_class"][0]["accuracy"] == 0
    assert got["confusion_matrix"][0] == [0, 0, 0, 6]
    assert page.locator("#injected").count() == 0
    assert name in page.inner_text("#evaluation-per-class")

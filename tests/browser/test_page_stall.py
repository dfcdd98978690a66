"""Issue 18's page that never stalls, as the user meets it: the longest main-thread task
(Chromium's long-task observer) and the long animation frames' scripts that made it (the
'long-animation-frame' observer, for attribution) while the page opens and predicts its
first image, adds 90 logos, trains on the served logos with the Train button (the training
chunk's first import, the live curves, then the evaluation's drawings) and evaluates again;
and (slow) the same Train button on the 418 sign digits. Each step is checked to complete;
the figures are printed (run with -s), never asserted against a clock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ..harness import BRAND_TEST, BRAND_TRAIN, SIGN_DIGITS
from .conftest import chart_epochs, open_app, wait_for_prediction_of
from .test_page_project import add_class, add_sign_digits, backbone_only_url, train, wait_added  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser

# Installed before the page's own code: every long task and long animation frame from the
# first byte on, each with its start time, kept in window.__stall (reset by WATCH).
OBSERVE = """(() => {
    window.__stall = { tasks: [], frames: [] };
    const keep = (kind, f) => new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__stall[kind].push(f(e));
    }).observe({ type: kind === 'tasks' ? 'longtask' : 'long-animation-frame', buffered: true });
    keep('tasks', (e) => ({ start: e.startTime, ms: e.duration }));
    keep('frames', (e) => ({ start: e.startTime, ms: e.duration, blocking: e.blockingDuration,
        scripts: (e.scripts || []).map((s) => ({ ms: s.duration, invoker: s.invoker,
            fn: s.sourceFunctionName, url: (s.sourceURL || '').split('/').pop(), char: s.sourceCharPosition })) }));
})();"""

WATCH = "() => { window.__stall.tasks = []; window.__stall.frames = []; }"

# Entries are delivered after their task: a macrotask later they are all in.
REPORT = """async () => {
    await new Promise((r) => setTimeout(r, 100));
    const s = window.__stall;
    const frames = [...s.frames].sort((a, b) => b.ms - a.ms).slice(0, 3);
    return { longest: Math.max(0, ...s.tasks.map((t) => t.ms)), over50: s.tasks.length, frames };
}"""


def report(page, what: str, seconds: float | None = None) -> dict:
    r = page.evaluate(REPORT)
    load = os.getloadavg()
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    print(f"\n{what}{took}: longest main-thread task {r['longest']:.0f} ms ({r['over50']} over 50 ms); "
          f"load average {load[0]:.2f}")
    for f in r["frames"]:
        scripts = sorted(f["scripts"], key=lambda s: -s["ms"])[:3]
        print(f"   long frame {f['ms']:.0f} ms (blocking {f['blocking']:.0f}): "
              + "; ".join(f"{s['ms']:.0f} ms {s['invoker']} {s['fn'] or ''} {s['url']}:{s['char']}" for s in scripts))
    return r


def now(page) -> float:
    return page.evaluate("performance.now()")


def predict_upload(page, path) -> list:
    before = page.get_attribute("[data-testid=prediction]", "data-seq")
    page.set_input_files("[data-testid=upload]", str(path))
    wait_for_prediction_of(page, before, Path(path).name)
    return json.loads(page.get_attribute("[data-testid=prediction]", "data-result"))


def evaluate_button(page) -> dict:
    seq = page.get_attribute("[data-testid=evaluation]", "data-seq")
    page.click("[data-testid=evaluate]")
    page.wait_for_function(f"document.querySelector('[data-testid=evaluation]').dataset.seq !== '{seq}'",
                           timeout=120_000)
    return json.loads(page.get_attribute("[data-testid=evaluation]", "data-result"))


@pytest.mark.parametrize("prepare", ["1", "0"])
def test_long_tasks_opening_adding_training_and_evaluating(page, site_url, prepare):
    """prepare=0: no idle-time preparation (web/src/prepare.js), the first Train pays it."""
    page.add_init_script(OBSERVE)
    chunks = []
    page.on("request", lambda r: chunks.append(r.url.rsplit("/", 1)[-1].split("-")[0]))
    open_app(page, site_url + ("?prepare=0" if prepare == "0" else ""))
    at_ready = list(chunks)
    assert "training" not in at_ready and "evaluating" not in at_ready  # not before the page is ready
    top = predict_upload(page, BRAND_TEST / "android.jpg")
    assert top[0]["label"] == "android", top
    report(page, f"prepare={prepare}: opening the page (model load, warm-up) and the first prediction from a file")
    # the idle-time preparation done (it draws nothing the user sees)
    assert page.evaluate("window.tfjsTransfer.prepared === null") == (prepare == "0")
    page.evaluate(WATCH)
    page.evaluate("window.tfjsTransfer.prepared")
    assert page.locator("body > div[aria-hidden=true]").count() == 0
    assert ("training" in chunks and "evaluating" in chunks) == (prepare == "1")
    report(page, f"prepare={prepare}: the idle-time preparation")

    # the Train button on the served logos (worker on): chunk import, features, curves, evaluation
    assert page.evaluate("window.tfjsTransfer.tfWorker().then((w) => Boolean(w))")
    page.evaluate(WATCH)
    started = now(page)
    status = train(page, epochs=20)
    seconds = (now(page) - started) / 1000
    assert "Trained 20 epochs" in status, status
    assert page.get_attribute("[data-testid=evaluation]", "data-state") == "done"
    assert page.locator("#evaluation-matrix canvas, #evaluation-matrix svg").count() >= 1
    assert page.locator("#evaluation-per-class table").count() == 1
    assert page.locator("[data-testid=charts] canvas").count() >= 2
    assert chart_epochs(page) == ["20", "20"]
    report(page, f"prepare={prepare}: Train on the 90 served logos, 20 epochs (evaluation included)", seconds)

    page.evaluate(WATCH)
    started = now(page)
    result = evaluate_button(page)
    assert result["count"] > 0 and len(result["confusion_matrix"]) == 3
    report(page, f"prepare={prepare}: the Evaluate button", (now(page) - started) / 1000)

    # a new project: 90 logos added from files, three classes of 30
    page.click("[data-testid=project-start-empty]")
    page.evaluate(WATCH)
    started = now(page)
    for name in ("android", "apple", "windows"):
        add_class(page, name)
        page.set_input_files("[data-testid=add-files]", sorted(str(p) for p in BRAND_TRAIN.glob(f"{name}-*.jpg")))
        wait_added(page, {name: 30})
    report(page, f"prepare={prepare}: adding 90 logos", (now(page) - started) / 1000)


@pytest.mark.slow
def test_long_tasks_training_the_sign_digits(page, backbone_only_url):
    if not SIGN_DIGITS.is_dir():
        pytest.skip(f"{SIGN_DIGITS} missing")
    page.add_init_script(OBSERVE)
    open_app(page, backbone_only_url)
    added = add_sign_digits(page)
    assert added["count"] == 418
    report(page, "adding the 418 sign digits from the folder input", added["add_s"])
    page.evaluate(WATCH)
    started = now(page)
    status = train(page, epochs=20, timeout=600_000)
    assert "Trained 20 epochs" in status, status
    assert page.get_attribute("[data-testid=evaluation]", "data-state") == "done"
    assert len(json.loads(page.get_attribute("[data-testid=evaluation]", "data-result"))["confusion_matrix"]) == 10
    report(page, "Train on the 418 sign digits, 20 epochs (evaluation included)", (now(page) - started) / 1000)

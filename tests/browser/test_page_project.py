"""Issue 14's project in the page, in headless Chromium: classes made and edited in the
page, examples added from files and folders with their features computed on add (the
longest main-thread task meanwhile is measured), training on the project with refusals
that name the class, a backbone-only site that opens into an empty project, and sizes
(the 418 sign digits through the folder input; 2,000 examples) without leaked tensors.
Figures are printed (run with -s), never asserted against a clock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ..harness import BRAND_TEST, BRAND_TRAIN, SIGN_DIGITS
from .conftest import open_app, wait_for_prediction_of

pytestmark = pytest.mark.browser

STATUS = "[data-testid=status]"
CLASS_LIST = "[data-testid=class-list]"
MESSAGE = "[data-testid=message]"

# Collects the longest main-thread task (Chromium's long-task observer) from now on.
WATCH_LONG_TASKS = """() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longTasks.push(e.duration);
    }).observe({ type: 'longtask' });
}"""

MEMORY = """() => ({
    numTensors: window.tfjsTransfer.tf.memory().numTensors,
    numBytes: window.tfjsTransfer.tf.memory().numBytes,
    jsHeapMB: performance.memory ? performance.memory.usedJSHeapSize / 2 ** 20 : null,
})"""


def assert_observer_sees_long_tasks(page) -> None:
    """The long-task figures mean something only if the observer reports a task it should
    (a page task: code Playwright evaluates directly is not one)."""
    page.evaluate("() => { setTimeout(() => { const t = performance.now(); while (performance.now() - t < 120); }, 0); }")
    page.wait_for_function("window.__longTasks.some((d) => d >= 100)")


def classes(page) -> list[dict]:
    return json.loads(page.get_attribute(CLASS_LIST, "data-classes"))


def counts(page) -> dict[str, int]:
    return {c["name"]: c["count"] for c in classes(page)}


def message(page) -> str:
    return page.inner_text(MESSAGE) if page.is_visible(MESSAGE) else ""


def add_class(page, name: str) -> None:
    page.fill("[data-testid=new-class-name]", name)
    page.click("[data-testid=add-class]")


def wait_added(page, expected: dict[str, int], timeout: float = 120_000) -> None:
    """Waits until the class list shows these counts and no add is running."""
    page.wait_for_function(
        """(want) => {
            const got = JSON.parse(document.querySelector('[data-testid=class-list]').dataset.classes);
            const text = document.querySelector('[data-testid=project-progress]').textContent;
            return Object.entries(want).every(([k, n]) => got.some((c) => c.name === k && c.count === n))
                && text.startsWith('Added');
        }""", arg=expected, timeout=timeout)


def train(page, epochs: int, timeout: float = 300_000) -> str:
    page.fill("[data-testid=epochs]", str(epochs))
    page.click("[data-testid=train]")
    page.wait_for_function(f"document.querySelector('{STATUS}').dataset.state !== 'ready'")
    page.wait_for_function(f"document.querySelector('{STATUS}').dataset.state === 'ready'", timeout=timeout)
    return page.inner_text(STATUS)


def click_train_expecting_refusal(page) -> str:
    page.click("[data-testid=train]")
    page.wait_for_selector(f"{MESSAGE}:not([hidden])")
    assert page.get_attribute(STATUS, "data-state") == "ready"
    return message(page)


def row(page, name: str, testid: str) -> str:
    return f"{CLASS_LIST} li[data-class='{name}'] [data-testid={testid}]"


def held_out_accuracy(page) -> dict:
    """The page's head on every held-out example (role not 'train'), from stored features."""
    return page.evaluate("""async () => {
        const t = window.tfjsTransfer;
        const project = t.project();
        const held = project.examples.filter((e) => e.role !== 'train');
        let right = 0;
        for (const e of held) {
            const top = await t.predictBlob(e.src);
            right += top[0].label === e.label;
        }
        return { right, total: held.length };
    }""")


@pytest.fixture
def backbone_only_url(broken_site):
    """A built site made backbone-only as `build --backbone-only` makes one (README: A backbone-only site)."""
    def strip(dest: Path):
        manifest = json.loads((dest / "manifest.json").read_text())
        manifest["labels"] = []
        manifest["head"]["path"] = None
        manifest["head"]["layers"][-1]["units"] = None
        manifest["training"].update(metrics=None, history=None)
        manifest["dataset"] = None
        manifest.pop("images", None)
        (dest / "manifest.json").write_text(json.dumps(manifest))
        (dest / "images.json").unlink(missing_ok=True)
        shutil.rmtree(dest / "models" / "head", ignore_errors=True)
    return broken_site("backbone-only", strip)


def brand(prefix: str) -> list[str]:
    return sorted(str(p) for p in BRAND_TRAIN.glob(f"{prefix}-*.jpg"))


def test_backbone_only_site_starts_empty_and_trains_classes_made_from_files(page, backbone_only_url, tmp_path):
    open_app(page, backbone_only_url)
    assert "add classes" in page.inner_text(STATUS)
    assert classes(page) == []
    assert "never uploaded" in page.inner_text("[data-testid=privacy]")
    assert page.is_disabled("[data-testid=project-from-site]")
    no_head = page.evaluate("window.tfjsTransfer.predictUrl('x.png').then(() => 'predicted', (e) => e.message)")
    assert "add at least 2 classes" in no_head and "Train" in no_head
    baseline = page.evaluate("window.tfjsTransfer.numTensors()")

    assert click_train_expecting_refusal(page) == "Add at least 2 classes to train."
    add_class(page, "  apple ")
    assert classes(page) == [{"name": "apple", "count": 0}]
    assert page.get_attribute(CLASS_LIST, "data-selected") == "apple"
    add_class(page, "apple")
    assert 'there is already a class "apple"' in message(page)

    page.evaluate(WATCH_LONG_TASKS)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    page.set_input_files("[data-testid=add-files]", [*brand("apple"), str(notes)])
    wait_added(page, {"apple": 30})
    assert "notes.txt" in message(page) and "Skipped 1 file" in message(page)
    assert 'Class "apple"' not in message(page)
    assert click_train_expecting_refusal(page) == 'Add at least 2 classes to train (it has only "apple").'

    add_class(page, "windows")
    assert page.get_attribute(CLASS_LIST, "data-selected") == "windows"
    page.set_input_files("[data-testid=add-files]", brand("windows")[:1])
    wait_added(page, {"windows": 1})
    assert click_train_expecting_refusal(page) == 'Class "windows" has 1 example: each class needs at least 2.'
    page.set_input_files("[data-testid=add-files]", brand("windows")[1:])
    wait_added(page, {"windows": 30})
    longest = max(page.evaluate("window.__longTasks"), default=0)
    print(f"\nadding 60 logos: longest main-thread task {longest:.0f} ms "
          f"({len(page.evaluate('window.__longTasks'))} tasks over 50 ms)")
    assert_observer_sees_long_tasks(page)

    info = page.evaluate("""() => {
        const p = window.tfjsTransfer.project();
        return { examples: p.examples.length, features: p.features.size, blobs: p.examples.every((e) => e.src instanceof Blob),
                 valid: p.countsOf('valid'), key: p.backboneKey, pageKey: window.tfjsTransfer.backboneKey() };
    }""")
    assert info["examples"] == info["features"] == 60  # features computed on add, not at training
    assert info["blobs"]
    assert info["valid"] == [["apple", 4], ["windows", 4]]  # about 15% of each class held out
    assert info["key"] == info["pageKey"] and info["key"]
    assert page.locator("[data-testid=gallery] .group[data-label=apple] img").count() == 30

    message_text = train(page, epochs=8)
    assert "Trained 8 epochs" in message_text
    after_train = page.evaluate("window.tfjsTransfer.numTensors()")
    right = 0
    # predict through the page's upload input: the head trained on the project
    for name, want in (("apple-reverse.jpg", "apple"), ("apple8.0.jpeg", "apple"), ("windows.png", "windows")):
        before = page.get_attribute("[data-testid=prediction]", "data-seq")
        page.set_input_files("[data-testid=upload]", str(BRAND_TEST / name))
        wait_for_prediction_of(page, before, name)
        result = json.loads(page.get_attribute("[data-testid=prediction]", "data-result"))
        assert {r["label"] for r in result} == {"apple", "windows"}
        right += result[0]["label"] == want
    assert right >= 2
    assert page.evaluate("window.tfjsTransfer.numTensors()") == after_train, "prediction leaked tensors"

    # rename keeps the examples; removing one example; deleting a class; clear
    page.click(row(page, "apple", "rename-class"))
    page.fill("[data-testid=rename-input]", "Apple Inc")
    page.press("[data-testid=rename-input]", "Enter")
    assert counts(page) == {"Apple Inc": 30, "windows": 30}
    assert page.locator("[data-testid=gallery] .group[data-label='Apple Inc'] img").count() == 30
    page.click("[data-testid=gallery] .group[data-label=windows] [data-testid=remove-example] >> nth=0")
    assert counts(page) == {"Apple Inc": 30, "windows": 29}
    assert page.evaluate("window.tfjsTransfer.project().features.size") == 59
    page.click(row(page, "windows", "delete-class"))
    assert counts(page) == {"Apple Inc": 30}
    page.click("[data-testid=project-clear]")
    assert classes(page) == []
    assert page.locator("[data-testid=gallery] img").count() == 0
    # the trained head (2 classes) stays the head in use; nothing else holds tensors
    assert page.evaluate("window.tfjsTransfer.numTensors()") == after_train
    assert after_train > baseline


def test_served_site_starts_from_its_dataset_and_a_folder_makes_classes(page, site_url, built_site, tmp_path):
    open_app(page, site_url)
    manifest = json.loads((built_site / "manifest.json").read_text())
    images = json.loads((built_site / "images.json").read_text())["images"]
    served = [{"name": label, "count": sum(i["label"] == label for i in images)} for label in manifest["labels"]]
    assert classes(page) == served
    page.click("[data-testid=project-start-empty]")
    assert classes(page) == []
    page.click("[data-testid=project-from-site]")
    page.wait_for_function(f"JSON.parse(document.querySelector('{CLASS_LIST}').dataset.classes).length > 0")
    assert classes(page) == served

    # a folder: its sub-folders become classes (sorted), a loose file goes to the selected class
    page.click("[data-testid=project-start-empty]")
    add_class(page, "mine")
    folder = tmp_path / "logos"
    for label in ("windows", "apple"):
        (folder / label).mkdir(parents=True)
        for path in brand(label)[:5]:
            shutil.copy(path, folder / label)
    shutil.copy(brand("android")[0], folder / "loose.jpg")
    (folder / "apple" / "readme.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    page.set_input_files("[data-testid=add-folder]", str(folder))
    wait_added(page, {"apple": 5, "windows": 5, "mine": 1})
    assert [c["name"] for c in classes(page)] == ["mine", "apple", "windows"]
    assert page.get_attribute(CLASS_LIST, "data-selected") == "mine"
    text = message(page)
    assert "logos/apple/readme.txt" in text and "1 hidden file ignored" in text
    # the held-out rule on a class of 5: one held out
    assert page.evaluate("window.tfjsTransfer.project().countsOf('valid')") == [["mine", 0], ["apple", 1], ["windows", 1]]

    # a paste into the project section adds to the selected class (and is not predicted);
    # a drop of files on a class row adds them to that row's class
    seq = page.get_attribute("[data-testid=prediction]", "data-seq")
    page.evaluate("""async () => {
        const blob = await (await fetch(window.tfjsTransfer.project().examples[0].src ? URL.createObjectURL(
            window.tfjsTransfer.project().examples[0].src) : '')).blob();
        const paste = new DataTransfer();
        paste.items.add(new File([blob], 'pasted.jpg', { type: 'image/jpeg' }));
        document.querySelector('[data-testid=class-list]').dispatchEvent(
            new ClipboardEvent('paste', { clipboardData: paste, bubbles: true, cancelable: true }));
        const drop = new DataTransfer();
        drop.items.add(new File([blob], 'dropped.jpg', { type: 'image/jpeg' }));
        drop.items.add(new File(['hello'], 'dropped.txt', { type: 'text/plain' }));
        document.querySelector("[data-testid=class-list] li[data-class='windows']").dispatchEvent(
            new DragEvent('drop', { dataTransfer: drop, bubbles: true, cancelable: true }));
    }""")
    wait_added(page, {"mine": 2, "windows": 6})
    page.wait_for_function("document.querySelector('[data-testid=message]').textContent.includes('dropped.txt')")
    assert page.get_attribute("[data-testid=prediction]", "data-seq") == seq


def add_sign_digits(page) -> dict:
    page.click("[data-testid=project-start-empty]")
    page.evaluate(WATCH_LONG_TASKS)
    started = page.evaluate("performance.now()")
    page.set_input_files("[data-testid=add-folder]", str(SIGN_DIGITS))
    expected = {d.name: sum(1 for _ in d.iterdir()) for d in sorted(SIGN_DIGITS.iterdir()) if d.is_dir()}
    page.wait_for_function(
        """(want) => {
            const got = JSON.parse(document.querySelector('[data-testid=class-list]').dataset.classes);
            return JSON.stringify(got.map((c) => [c.name, c.count])) === JSON.stringify(want);
        }""", arg=[[k, v] for k, v in expected.items()], timeout=600_000)
    page.wait_for_function("document.querySelector('[data-testid=project-progress]').textContent.startsWith('Added')")
    seconds = (page.evaluate("performance.now()") - started) / 1000
    return {"count": sum(expected.values()), "add_s": seconds,
            "longest_task_ms": max(page.evaluate("window.__longTasks"), default=0)}


@pytest.mark.slow
def test_sign_digits_through_the_folder_input_then_2000_examples(page, backbone_only_url):
    if not SIGN_DIGITS.is_dir():
        pytest.skip(f"{SIGN_DIGITS} missing")
    open_app(page, backbone_only_url)
    baseline = page.evaluate("window.tfjsTransfer.numTensors()")
    added = add_sign_digits(page)
    assert added["count"] == 418
    assert page.evaluate("window.tfjsTransfer.numTensors()") == baseline, "adding leaked tensors"
    memory_418 = page.evaluate(MEMORY)
    # The site's head and learning rate (Adam 3e-4) for 100 epochs in batches of 16: on these
    # 60 held-out digits 56 right (TM's Adam 1e-3 for 50 epochs: 54; 1e-3 for 100: 50)
    page.fill("[data-testid=batch-size]", "16")
    page.fill("[data-testid=learning-rate]", "0.0003")
    status = train(page, epochs=100, timeout=900_000)
    assert "Trained 100 epochs" in status
    train_s = page.evaluate("window.tfjsTransfer.timings.trainMs") / 1000
    after_train = page.evaluate("window.tfjsTransfer.numTensors()")
    acc = held_out_accuracy(page)
    assert page.evaluate("window.tfjsTransfer.numTensors()") == after_train, "prediction leaked tensors"
    accuracy = acc["right"] / acc["total"]
    print(f"\nsign digits: {added['count']} examples added in {added['add_s']:.1f} s (features included), "
          f"longest task {added['longest_task_ms']:.0f} ms; trained 100 epochs in {train_s:.1f} s; "
          f"held-out accuracy {acc['right']}/{acc['total']} = {accuracy:.3f}; memory {memory_418}")
    assert accuracy >= 0.85  # aim 0.92; a floor well above chance (0.1) that a broken head cannot pass

    # 2,000: augmented copies (mirrored, rotated, shifted) made in the page from the digits' own blobs
    made = page.evaluate("""async (target) => {
        const t = window.tfjsTransfer;
        const project = t.project();
        const originals = [...project.examples];
        const copies = new Map(project.classes.map((c) => [c, []]));
        let n = 0;
        for (let round = 0; project.examples.length + n < target; round++) {
            for (const e of originals) {
                if (project.examples.length + n >= target) break;
                const bitmap = await createImageBitmap(e.src);
                const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
                const ctx = canvas.getContext('2d');
                ctx.translate(bitmap.width / 2, bitmap.height / 2);
                ctx.rotate(((round % 5) - 2) * 0.08);
                if (round % 2 === 0) ctx.scale(-1, 1);
                ctx.drawImage(bitmap, -bitmap.width / 2 + (round % 3) * 3, -bitmap.height / 2);
                bitmap.close();
                copies.get(e.label).push({ blob: await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.9 }),
                                           name: `aug${round}-${e.name}` });
                n++;
            }
        }
        window.__copies = copies;
        return n;
    }""", 2000)
    assert made == 2000 - 418
    page.evaluate(WATCH_LONG_TASKS)
    grow = page.evaluate("""async () => {
        const t = window.tfjsTransfer;
        const started = performance.now();
        for (const [label, items] of window.__copies) await t.addExamples(label, items);
        window.__copies = null;
        return { seconds: (performance.now() - started) / 1000, count: t.project().examples.length };
    }""")
    assert grow["count"] == 2000
    assert page.evaluate("window.tfjsTransfer.numTensors()") == after_train, "adding leaked tensors"
    longest = max(page.evaluate("window.__longTasks"), default=0)
    memory_2000 = page.evaluate(MEMORY)
    page.fill("[data-testid=epochs]", "5")
    status = train(page, epochs=5, timeout=600_000)
    assert "Trained 5 epochs" in status
    train_2000_s = page.evaluate("window.tfjsTransfer.timings.trainMs") / 1000
    after_2000 = page.evaluate("window.tfjsTransfer.numTensors()")
    assert after_2000 == after_train, "a second training leaked tensors"
    page.click(f"{CLASS_LIST} li[data-class='9'] [data-testid=delete-class]")
    assert page.evaluate("window.tfjsTransfer.numTensors()") == after_train
    assert page.evaluate("window.tfjsTransfer.project().features.size") == page.evaluate(
        "window.tfjsTransfer.project().examples.length")
    print(f"2,000 examples: {2000 - 418} added in {grow['seconds']:.1f} s, longest task {longest:.0f} ms; "
          f"5 epochs in {train_2000_s:.1f} s; memory {memory_2000}; after training {page.evaluate(MEMORY)}")


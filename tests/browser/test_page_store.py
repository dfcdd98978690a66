"""The page's projects kept in IndexedDB and taken out and back in as a zip, in headless
Chromium: a reload restores the project (classes, images, features not recomputed, the
trained head), export -> import as a new named project gives the same classes and images,
a quota failure half way through a save keeps the previous save and says so, hostile
zips are refused or skipped by name. Each test has a fresh browser context (empty IndexedDB);
a reload in the same context keeps it."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import pytest

from ..harness import BRAND_TEST, SIGN_DIGITS
from .conftest import open_app

pytestmark = pytest.mark.browser

SAVE_STATUS = "[data-testid=project-save-status]"
MINE = ["android.jpg", "apple-reverse.jpg", "windows.png"]

# Makes the page's IndexedDB refuse puts with QuotaExceededError once the test sets
# window.__failPutsAfter = N (the Nth put from then on throws), as a full disk does.
QUOTA_SCRIPT = """
(() => {
  const put = IDBObjectStore.prototype.put;
  IDBObjectStore.prototype.put = function (...args) {
    if (window.__failPutsAfter != null && --window.__failPutsAfter <= 0) {
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    }
    return put.apply(this, args);
  };
})();
"""

# An add's end is an edit: the autosave follows 600 ms later. `failPutsAfter` arms QUOTA_SCRIPT
# in the same task as the add ends, so no autosave can come between.
ADD = """async ([label, files, failPutsAfter]) => {
  // a class is made as a person makes it: its name typed, Add class pressed
  const ensureClass = (label) => {
    if (window.tfjsTransfer.project().classes.includes(label)) return;
    document.querySelector('[data-testid=new-class-name]').value = label;
    document.querySelector('[data-testid=add-class]').click();
    if (!window.tfjsTransfer.project().classes.includes(label)) throw new Error(`could not add class ${label}`);
  };
  ensureClass(label);
  const items = files.map(([name, b64]) => ({
    name, blob: new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]) }));
  await window.tfjsTransfer.addExamples(label, items);
  if (failPutsAfter != null) window.__failPutsAfter = failPutsAfter;
}"""

# Makes each image decode wait window.__slowDecodeMs first (createImageBitmap and ImageDecoder,
# the main thread's decoders with ?worker=0): an add slower than the autosave's delay.
SLOW_DECODES = """
(() => {
  const slow = (decode) => async function (...args) {
    if (window.__slowDecodeMs) await new Promise((resolve) => setTimeout(resolve, window.__slowDecodeMs));
    return decode.apply(this, args);
  };
  window.createImageBitmap = slow(window.createImageBitmap);
  if (window.ImageDecoder) ImageDecoder.prototype.decode = slow(ImageDecoder.prototype.decode);
})();
"""

# The project as the test compares it: classes, per-class counts, each example's bytes digest.
SNAPSHOT = """async () => {
  const p = window.tfjsTransfer.project();
  const digest = async (e) => {
    const blob = typeof e.src === 'string' ? await (await fetch(e.src)).blob() : e.src;
    const hash = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
    return Array.from(new Uint8Array(hash)).map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return {
    classes: p.classes,
    counts: [...p.byClass()].map(([c, ex]) => [c, ex.length]),
    examples: await Promise.all(p.examples.map(async (e) => [e.label, e.role, await digest(e)])),
    withFeatures: p.examples.filter((e) => p.features.has(e.id)).map((e) => e.id),
    decoded: window.tfjsTransfer.timings.examplesDecoded || 0,
  };
}"""


def _files(paths: list[Path]) -> list[list[str]]:
    return [[p.name, base64.b64encode(p.read_bytes()).decode()] for p in paths]


def _add(page, label: str, paths: list[Path], fail_puts_after: int | None = None) -> None:
    page.evaluate(ADD, [label, _files(paths), fail_puts_after])


def _save(page) -> bool:
    return page.evaluate("window.tfjsTransfer.store.saveNow()")


def _status(page) -> tuple[str, str]:
    return page.get_attribute(SAVE_STATUS, "data-state"), page.inner_text(SAVE_STATUS)


def _mine() -> list[Path]:
    paths = [BRAND_TEST / n for n in MINE]
    if not all(p.is_file() for p in paths):
        pytest.skip("shared brand test images missing")
    return paths


def test_reload_restores_project_features_and_head(page, site_url):
    open_app(page, site_url)
    assert _status(page)[0] == "saved"  # storage is on; nothing saved yet
    _add(page, "mine", _mine())
    before = page.evaluate(SNAPSHOT)
    assert before["classes"][-1] == "mine" and before["decoded"] == 3
    page.fill("[data-testid=epochs]", "2")
    page.click("[data-testid=train]")
    page.wait_for_function("document.querySelector('[data-testid=prediction]') && "
                           "window.tfjsTransfer.head() === 'browser' && "
                           "document.querySelector('[data-testid=status]').dataset.state === 'ready'", timeout=120_000)
    assert _save(page)
    trained = page.evaluate(SNAPSHOT)
    url = page.evaluate("window.tfjsTransfer.project().examples.find((e) => typeof e.src === 'string').src")
    probs = page.evaluate("async (u) => window.tfjsTransfer.predictUrl(u)", url)

    page.reload()
    page.wait_for_function("document.querySelector('[data-testid=status]').dataset.state === 'ready'")
    after = page.evaluate(SNAPSHOT)
    assert after["classes"] == before["classes"]
    assert after["counts"] == before["counts"]
    assert after["examples"] == before["examples"]  # same labels, roles and image bytes
    assert sorted(after["withFeatures"]) == sorted(trained["withFeatures"])
    assert len(after["withFeatures"]) == len(after["examples"])
    assert after["decoded"] == 0, "the restore recomputed features"
    stats = page.evaluate("window.tfjsTransfer.store.stats")
    assert stats["restoredExamples"] == len(after["examples"]) and stats["restoredFeatures"] == len(after["examples"])
    assert page.evaluate("window.tfjsTransfer.head()") == "browser"
    again = page.evaluate("async (u) => window.tfjsTransfer.predictUrl(u)", url)
    assert [r["label"] for r in again] == [r["label"] for r in probs]
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(again, probs)) < 1e-5
    assert page.get_attribute("[data-testid=project-select]", "data-current") == "My project"


def test_export_then_import_as_new_project(page, site_url, tmp_path):
    open_app(page, site_url)
    _add(page, "mine: a/b", _mine())  # not a safe folder name
    assert _save(page)
    before = page.evaluate(SNAPSHOT)
    with page.expect_download() as download:
        page.click("[data-testid=project-export]")
    zip_path = tmp_path / "export.zip"
    download.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as z:
        project = json.loads(z.read("project.json"))
        names = z.namelist()
    assert project["format"] == "tfjs-transfer-project/1"
    assert [c["name"] for c in project["classes"]] == before["classes"]
    folder = {c["name"]: c["folder"] for c in project["classes"]}["mine: a/b"]
    assert "/" not in folder and ":" not in folder
    assert len(names) == len(before["examples"]) + 1
    assert [e["role"] for e in project["examples"]] == [e[1] for e in before["examples"]]

    page.set_input_files("[data-testid=project-import]", str(zip_path))
    page.wait_for_function("document.querySelector('[data-testid=project-select]').dataset.current === 'My project (2)'"
                           " && document.querySelector('[data-testid=project-save-status]').dataset.state === 'saved'")
    after = page.evaluate(SNAPSHOT)
    assert after["classes"] == before["classes"]
    assert after["examples"] == before["examples"]
    assert json.loads(page.get_attribute("[data-testid=project-select]", "data-projects")) == ["My project", "My project (2)"]
    # the imported project is the one a reload opens
    page.reload()
    page.wait_for_function("document.querySelector('[data-testid=status]').dataset.state === 'ready'")
    assert page.get_attribute("[data-testid=project-select]", "data-current") == "My project (2)"
    assert page.evaluate(SNAPSHOT)["examples"] == before["examples"]


def test_quota_failure_keeps_previous_save_and_says_so(page, site_url):
    page.add_init_script(QUOTA_SCRIPT)
    open_app(page, site_url)
    mine = _mine()
    _add(page, "mine", mine[:2])
    assert _save(page)
    saved = page.evaluate(SNAPSHOT)
    _add(page, "more", mine, fail_puts_after=3)
    assert not _save(page)
    state, text = _status(page)
    assert state == "error"
    assert "Could not save project My project" in text and "quota exceeded" in text and "previous save is kept" in text
    page.reload()
    page.wait_for_function("document.querySelector('[data-testid=status]').dataset.state === 'ready'")
    restored = page.evaluate(SNAPSHOT)
    assert restored["classes"] == saved["classes"]
    assert restored["examples"] == saved["examples"]


def test_no_autosave_while_images_are_being_added(page, site_url):
    """A new class whose images take longer to add than the autosave's delay is saved once,
    with all its images: never the class with part of them."""
    page.add_init_script(SLOW_DECODES)
    open_app(page, site_url + "?worker=0")
    page.evaluate("""() => {
      window.__savedCounts = []; // the new class's examples each time a save starts
      const status = document.querySelector('[data-testid=project-save-status]');
      new MutationObserver(() => {
        if (status.dataset.state !== 'saving') return;
        const p = window.tfjsTransfer.project();
        window.__savedCounts.push(p.examples.filter((e) => e.label === 'slow').length);
      }).observe(status, { attributes: true, attributeFilter: ['data-state'] });
      window.__slowDecodeMs = 400;
    }""")
    _add(page, "slow", _mine())
    page.wait_for_function(f"document.querySelector('{SAVE_STATUS}').dataset.state === 'saved'")
    assert page.evaluate("window.__savedCounts") == [3]


def test_huge_image_kept_reencoded_as_jpeg(page, site_url):
    """An image over 12 megapixels is kept as a JPEG of at most 12 MP, same aspect; small ones as their bytes."""
    open_app(page, site_url)
    page.evaluate("""async () => {
      const canvas = new OffscreenCanvas(4400, 3000); // 13.2 MP
      const ctx = canvas.getContext('2d');
      const g = ctx.createLinearGradient(0, 0, 4400, 3000);
      g.addColorStop(0, '#f00');
      g.addColorStop(1, '#00f');
      ctx.fillStyle = g;
      ctx.fillRect(0, 0, 4400, 3000);
      const blob = await canvas.convertToBlob({ type: 'image/png' });
      document.querySelector('[data-testid=new-class-name]').value = 'big';
      document.querySelector('[data-testid=add-class]').click();
      await window.tfjsTransfer.addExamples('big', [{ blob, name: 'big.png' }]);
    }""")
    _add(page, "big", _mine()[:1])
    before = page.evaluate(SNAPSHOT)
    assert _save(page)
    page.reload()
    page.wait_for_function("document.querySelector('[data-testid=status]').dataset.state === 'ready'")
    kept = page.evaluate("""async () => {
      const [big, small] = window.tfjsTransfer.project().examples.filter((e) => e.label === 'big');
      const bitmap = await createImageBitmap(big.src);
      const head = Array.from(new Uint8Array(await big.src.slice(0, 3).arrayBuffer()));
      return { width: bitmap.width, height: bitmap.height, head, small: small.name };
    }""")
    assert kept["head"] == [0xFF, 0xD8, 0xFF]  # a JPEG now
    assert kept["width"] * kept["height"] <= 12e6
    assert abs(kept["width"] / kept["height"] - 4400 / 3000) < 0.01
    after = page.evaluate(SNAPSHOT)
    assert after["examples"][-1] == before["examples"][-1]  # the small one: its own bytes


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_hostile_imports_refused_or_skipped_by_name(page, site_url, tmp_path):
    open_app(page, site_url)
    image = _mine()[0].read_bytes()
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip({"cat/a.jpg": image, "../escape.jpg": image}))
    page.set_input_files("[data-testid=project-import]", str(evil))
    page.wait_for_function("document.querySelector('[data-testid=project-save-status]').dataset.state === 'error'")
    assert "../escape.jpg points outside the project; refused" in _status(page)[1]
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(_zip({"cat/a.jpg": image, "cat/b.jpg": bytes(20_000_000)}))
    page.set_input_files("[data-testid=project-import]", str(bomb))
    page.wait_for_function("document.querySelector('[data-testid=project-save-status]').textContent.includes('bomb')")
    assert "cat/b.jpg is compressed" in _status(page)[1]
    mixed = tmp_path / "mixed.zip"
    mixed.write_bytes(_zip({"cat/a.jpg": image, "cat/b.jpg": image, "dog/c.jpg": image, "dog/inner.zip": _zip({"x.jpg": image}),
                            "dog/notes.txt": b"hello"}))
    page.set_input_files("[data-testid=project-import]", str(mixed))
    page.wait_for_function("document.querySelector('[data-testid=project-select]').dataset.current === 'mixed'")
    notes = page.inner_text("[data-testid=project-import-notes]")
    assert "dog/inner.zip: a nested archive; skipped" in notes and "dog/notes.txt: not an image" in notes
    assert page.evaluate("window.tfjsTransfer.project().classes") == ["cat", "dog"]


def test_import_folder(page, site_url, tmp_path):
    """A picked folder (the webkitdirectory input) of class folders becomes a named project; junk is listed."""
    mine = _mine()
    root = tmp_path / "photos"
    for label, paths in (("b", mine[:2]), ("a", mine[2:])):
        (root / label).mkdir(parents=True)
        for p in paths:
            (root / label / p.name).write_bytes(p.read_bytes())
    (root / "a" / "notes.txt").write_text("hello")
    open_app(page, site_url)
    page.set_input_files("[data-testid=project-import-folder]", str(root))
    page.wait_for_function("document.querySelector('[data-testid=project-select]').dataset.current === 'photos'")
    assert page.evaluate("window.tfjsTransfer.project().classes") == ["a", "b"]
    assert page.evaluate("window.tfjsTransfer.project().examples.length") == 3
    assert "photos/a/notes.txt: not an image" in page.inner_text("[data-testid=project-import-notes]")


@pytest.mark.slow
def test_restore_418_sign_digits(page, site_url, tmp_path):
    """Measures (prints) the restore time and zip size of the 418 sign digits; asserts only what came back."""
    folders = sorted(p for p in SIGN_DIGITS.iterdir() if p.is_dir()) if SIGN_DIGITS.is_dir() else []
    if not folders:
        pytest.skip("shared sign digits missing")
    open_app(page, site_url)
    page.click("[data-testid=project-new]")
    page.wait_for_function("document.querySelector('[data-testid=project-select]').dataset.current === 'My project (2)'"
                           " || document.querySelector('[data-testid=project-select]').dataset.current === 'My project'")
    total = 0
    for folder in folders:
        paths = sorted(folder.iterdir())
        _add(page, folder.name, paths)
        total += len(paths)
    assert _save(page)
    page.reload()
    page.wait_for_function("document.querySelector('[data-testid=status]').dataset.state === 'ready'")
    stats = page.evaluate("window.tfjsTransfer.store.stats")
    assert stats["restoredExamples"] == total == stats["restoredFeatures"]
    assert page.evaluate("window.tfjsTransfer.timings.examplesDecoded || 0") == 0
    with page.expect_download() as download:
        page.click("[data-testid=project-export]")
    download.value.save_as(tmp_path / "digits.zip")
    size = (tmp_path / "digits.zip").stat().st_size
    print(f"\n418 sign digits: restore {stats['restoreMs']:.0f} ms ({total} examples, features included); "
          f"export zip {size / 1e6:.2f} MB")

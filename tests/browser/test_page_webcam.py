"""The webcam section in Chromium with its fake camera playing a clip made from a real
photo (the shared Android logo), so that recorded and predicted frames are real images:
hold-to-record adds frames of the logo to the chosen class at no more than the set rate,
live prediction names the logo with a frame rate and leaks no tensors, and a missing
camera, a denied permission and a camera unplugged mid-recording each get a message with
the frames already added kept.

Run with -s to see the measured figures (live predictions per second, frames recorded per
second, the longest main-thread task while recording).
"""

from __future__ import annotations

import base64
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..harness import BRAND_TEST, CHROMIUM, CHROMIUM_ARGS
from .conftest import READY_TIMEOUT_MS, Watched, open_app

pytestmark = pytest.mark.browser

LOGO = BRAND_TEST / "android.jpg"
LOGO_CLASS = "android"
CLIP_SIZE = (320, 240)  # width, height: a 4:3 camera; the page records its centre square
CLIP_FPS = 30
RECORD_INTERVAL_MS = 100  # web/src/ui-webcam.js RECORD_INTERVAL_MS

START = "[data-testid=webcam-start]"
RECORD = "[data-testid=webcam-record]"
COUNT = "[data-testid=webcam-count]"
MESSAGE = "[data-testid=webcam-message]"
LIVE_RESULT = "[data-testid=webcam-prediction]"


def logo_square(photo: Path = LOGO):
    """The photo fitted into a white square as large as the clip's height."""
    side = min(CLIP_SIZE)
    logo = Image.open(photo).convert("RGB")
    logo.thumbnail((side, side))
    square = Image.new("RGB", (side, side), "white")
    square.paste(logo, ((side - logo.width) // 2, (side - logo.height) // 2))
    return square


def write_y4m(photo: Path, out: Path, seconds: float = 2.0) -> Path:
    """A YUV4MPEG2 4:2:0 clip of `photo` fitted into the centre square of a grey 4:3 frame,
    on white (the logos' own background), as Chromium's --use-file-for-fake-video-capture plays it."""
    width, height = CLIP_SIZE
    side = min(width, height)
    square = logo_square(photo)
    frame = Image.new("RGB", (width, height), (128, 128, 128))
    frame.paste(square, ((width - side) // 2, (height - side) // 2))
    ycc = np.asarray(frame.convert("YCbCr"), dtype=np.float32)
    y = ycc[..., 0].astype(np.uint8)
    # 4:2:0: each chroma sample is the mean of a 2x2 block
    chroma = [ycc[..., c].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)).round().astype(np.uint8)
              for c in (1, 2)]
    planes = b"FRAME\n" + y.tobytes() + chroma[0].tobytes() + chroma[1].tobytes()
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{CLIP_FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(int(seconds * CLIP_FPS)):
            f.write(planes)
    return out


@pytest.fixture(scope="module")
def camera_browser(browser, tmp_path_factory):
    """A second Chromium (the session's Playwright launches it) whose only camera is the fake
    device playing the logo clip. Pages get the camera permission from their context
    (granted or not), so a denial is the browser's own."""
    if not LOGO.is_file():
        pytest.skip(f"shared test image missing: {LOGO}")
    clip = write_y4m(LOGO, tmp_path_factory.mktemp("clip") / "logo.y4m")
    camera = browser.browser_type.launch(executable_path=CHROMIUM, args=[
        *CHROMIUM_ARGS, "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}"])
    yield camera
    camera.close()


def _watched_context(browser, permissions):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, permissions=permissions)
    page = context.new_page()
    page.set_default_timeout(30_000)
    return context, Watched(page)


@pytest.fixture
def cam(camera_browser):
    """A page allowed to use the fake camera; fails its test on console errors."""
    context, w = _watched_context(camera_browser, ["camera"])
    yield w.page
    context.close()
    bad = w.unexpected()
    assert not bad, "errors in the page:\n" + "\n".join(bad)


WORKER_TENSORS = "window.tfjsTransfer.tfWorker().then((w) => w.call('memory')).then((m) => m.numTensors)"


def start_camera(page):
    page.click(START)
    page.wait_for_function(f"document.querySelector('{START}').dataset.state === 'on' "
                           f"|| !document.querySelector('{MESSAGE}').hidden")
    assert page.get_attribute(START, "data-state") == "on", page.inner_text(MESSAGE)


def examples_of(page, label: str) -> list[dict]:
    return page.evaluate("""(label) => window.tfjsTransfer.project().examples
        .filter((e) => e.label === label)
        .map((e) => ({id: e.id, name: e.name, role: e.role, blob: e.src instanceof Blob, type: e.src.type}))""", label)


def watch_long_tasks(page):
    """window.longestTask: the longest main-thread task (Chromium reports those over 50 ms) from now on."""
    page.evaluate("""() => {
        window.longestTask = 0;
        window.longTasks = [];
        new PerformanceObserver((list) => {
            for (const e of list.getEntries()) {
                window.longestTask = Math.max(window.longestTask, e.duration);
                window.longTasks.push(Math.round(e.duration));
            }
        }).observe({type: 'longtask'});
    }""")


def select_class(page, name):
    """Selects a class in the project's class list: the webcam records to it."""
    page.click(f'[data-testid=class-list] [data-class="{name}"] [data-testid=select-class]')


def wait_recorder_idle(page):
    page.wait_for_function("!window.tfjsTransfer.webcam().recorder.recording && !window.tfjsTransfer.webcam().recorder.busy")


def test_record_adds_frames_of_the_logo_to_the_class(cam, site_url):
    page = open_app(cam, site_url)
    start_camera(page)
    assert page.eval_on_selector("[data-testid=webcam-select]", "s => s.options.length") >= 1
    select_class(page, LOGO_CLASS)
    assert LOGO_CLASS in page.inner_text("[data-testid=webcam-target]")
    before = examples_of(page, LOGO_CLASS)
    watch_long_tasks(page)
    page.locator(RECORD).scroll_into_view_if_needed()
    box = page.locator(RECORD).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    held = time.perf_counter()
    page.mouse.down()
    page.wait_for_function(f"Number(document.querySelector('{COUNT}').dataset.count) >= 3")
    page.wait_for_timeout(1000)
    page.mouse.up()
    held_ms = (time.perf_counter() - held) * 1000
    wait_recorder_idle(page)
    assert page.get_attribute(RECORD, "data-recording") == "false"
    count = int(page.get_attribute(COUNT, "data-count"))
    # One frame at the press, then at most one per tick: never more than the set rate allows.
    assert 3 <= count <= 2 + math.ceil(held_ms / RECORD_INTERVAL_MS), (count, held_ms)
    longest = page.evaluate("window.longestTask")
    print(f"\nrecorded {count} frames in {held_ms:.0f} ms held ({count / held_ms * 1000:.1f}/s, "
          f"set {1000 / RECORD_INTERVAL_MS:.0f}/s); longest main-thread task while recording {longest:.0f} ms")

    after = examples_of(page, LOGO_CLASS)
    added = [e for e in after if e["id"] not in {b["id"] for b in before}]
    assert len(added) == count
    assert all(e["name"].startswith(f"webcam-{LOGO_CLASS}-") and e["name"].endswith(".jpg") for e in added)
    # (the project holds about 15% of each class out, as for any example added in the page)
    assert all(e["blob"] and e["type"] == "image/jpeg" and e["role"] in ("train", "valid") for e in added)
    assert page.get_attribute(f"[data-testid=gallery] [data-label={LOGO_CLASS}]", "data-count") == str(len(after))
    # The frames are the clip's centre square, mirrored (the default), at the backbone's input size...
    jpeg = base64.b64decode(page.evaluate("""async (id) => {
        const e = window.tfjsTransfer.project().examples.find((x) => x.id === id);
        const bytes = new Uint8Array(await e.src.arrayBuffer());
        let s = '';
        for (const b of bytes) s += String.fromCharCode(b);
        return btoa(s);
    }""", added[-1]["id"]))
    recorded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.float32)
    size = page.evaluate("window.tfjsTransfer.manifest.input.height")
    assert recorded.shape == (size, size, 3)
    expected = np.asarray(logo_square().resize((size, size), Image.BILINEAR), dtype=np.float32)[:, ::-1]
    off = np.abs(recorded - expected).mean()
    unmirrored = np.abs(recorded - expected[:, ::-1]).mean()
    blank = np.abs(recorded - 255).mean()  # a white frame
    print(f"recorded frame vs the clip's square: mean |diff| {off:.1f}; unmirrored {unmirrored:.1f}; white {blank:.1f}")
    # (the clip's YUV 4:2:0 and the JPEG leave a few levels off everywhere)
    assert off < 10 and off < 0.6 * unmirrored and off < 0.5 * blank, (off, unmirrored, blank)
    # ... and the served (Python) head names the logo in each of them.
    tops = page.evaluate("""async (label) => {
        const added = window.tfjsTransfer.project().examples.filter((e) => e.name.startsWith(`webcam-${label}-`));
        const tops = [];
        for (const e of added) {
            const url = URL.createObjectURL(e.src);
            tops.push((await window.tfjsTransfer.predictUrl(url))[0].label);
            URL.revokeObjectURL(url);
        }
        return tops;
    }""", LOGO_CLASS)
    assert tops == [LOGO_CLASS] * count, tops


# the frames predicted in the TF.js worker (the default) and on the main thread (?worker=0)
@pytest.mark.parametrize("query", ["", "?worker=0"])
def test_live_prediction_names_the_logo_without_leaking(cam, site_url, query):
    page = open_app(cam, site_url + query)
    in_worker = page.evaluate("window.tfjsTransfer.tfWorker().then((w) => w !== null)")
    assert in_worker == (query == "")
    start_camera(page)
    watch_long_tasks(page)
    page.check("[data-testid=webcam-live]")
    page.wait_for_function(f"Number(document.querySelector('{LIVE_RESULT}').dataset.frames) >= 10")
    rows = json.loads(page.get_attribute(LIVE_RESULT, "data-result"))
    assert rows[0]["label"] == LOGO_CLASS, rows
    # The same count of tensors 100 predictions apart: nothing accumulates per frame.
    page.evaluate("window.longestTask = 0; window.longTasks = []")  # from here on: the steady state, not the first frames
    first = page.evaluate(f"""() => ({{frames: Number(document.querySelector('{LIVE_RESULT}').dataset.frames),
                                      tensors: window.tfjsTransfer.numTensors()}})""")
    page.wait_for_function(f"Number(document.querySelector('{LIVE_RESULT}').dataset.frames) >= {first['frames'] + 100}",
                           timeout=120_000)
    tensors = page.evaluate("window.tfjsTransfer.numTensors()")
    worker_tensors = page.evaluate(WORKER_TENSORS) if in_worker else None
    fps = float(page.get_attribute("[data-testid=webcam-fps]", "data-fps"))
    backend = page.evaluate("window.tfjsTransfer.backend()")
    longest = page.evaluate("window.longestTask")
    long_tasks = sorted(page.evaluate("window.longTasks"), reverse=True)
    durations = np.array(page.evaluate("window.tfjsTransfer.webcam().live.durations"))
    # Recording pauses it: no prediction starts while the button is held (the one in flight
    # at the press may still finish).
    select_class(page, LOGO_CLASS)
    page.hover(RECORD)
    page.mouse.down()
    page.wait_for_function(f"Number(document.querySelector('{COUNT}').dataset.count) >= 1")
    during = page.get_attribute(LIVE_RESULT, "data-frames")
    page.wait_for_function(f"Number(document.querySelector('{COUNT}').dataset.count) >= 6")
    assert int(page.get_attribute(LIVE_RESULT, "data-frames")) - int(during) <= 1
    during = page.get_attribute(LIVE_RESULT, "data-frames")
    page.mouse.up()
    wait_recorder_idle(page)
    page.wait_for_function(f"document.querySelector('{LIVE_RESULT}').dataset.frames !== '{during}'")
    page.uncheck("[data-testid=webcam-live]")
    assert tensors == first["tensors"]
    if in_worker:  # the worker's own tensors do not grow either
        assert page.evaluate(WORKER_TENSORS) == worker_tensors
    assert fps > 0
    assert "predictions/s" in page.inner_text("[data-testid=webcam-fps]")
    print(f"\nlive prediction ({'TF.js worker' if in_worker else 'main thread'}): {fps:.1f} predictions/s ({backend}, fake camera at {CLIP_FPS} fps, "
          f"{CLIP_SIZE[0]}x{CLIP_SIZE[1]}); a prediction median {np.median(durations):.0f} ms, max {durations.max():.0f} ms; "
          f"longest main-thread task {longest:.0f} ms; {len(long_tasks)} tasks over 50 ms in 100 frames: {long_tasks[:8]}")


def test_camera_unplugged_mid_recording_keeps_the_frames(cam, site_url):
    page = open_app(cam, site_url)
    start_camera(page)
    select_class(page, LOGO_CLASS)
    before = len(examples_of(page, LOGO_CLASS))
    page.hover(RECORD)
    page.mouse.down()
    page.wait_for_function(f"Number(document.querySelector('{COUNT}').dataset.count) >= 3")
    # Playwright cannot unplug a camera: stop the track as the device going away would, and
    # fire 'ended' (MediaStreamTrack.stop() itself does not).
    page.evaluate("""() => {
        const track = document.querySelector('[data-testid=webcam-video]').srcObject.getVideoTracks()[0];
        track.stop();
        track.dispatchEvent(new Event('ended'));
    }""")
    page.wait_for_selector(f"{MESSAGE}:not([hidden])")
    page.mouse.up()
    wait_recorder_idle(page)
    count = int(page.get_attribute(COUNT, "data-count"))
    message = page.inner_text(MESSAGE)
    assert "camera stopped" in message and f"{count} frames already added to {LOGO_CLASS} are kept" in message, message
    assert len(examples_of(page, LOGO_CLASS)) == before + count
    assert page.get_attribute(START, "data-state") == "off"
    assert page.is_disabled(RECORD) and page.is_disabled("[data-testid=webcam-live]")


def test_camera_permission_denied_says_so(camera_browser, site_url):
    context, w = _watched_context(camera_browser, [])  # the camera is there, the permission is not
    try:
        page = open_app(w.page, site_url)
        page.click(START)
        page.wait_for_selector(f"{MESSAGE}:not([hidden])")
        assert "permission was denied" in page.inner_text(MESSAGE)
        assert page.get_attribute(START, "data-state") == "off"
        assert page.is_disabled(RECORD)
        assert not w.unexpected(), w.unexpected()
    finally:
        context.close()


def test_no_camera_says_so(page, site_url):
    """The session's Chromium has no fake device, and this machine no camera."""
    open_app(page, site_url)
    page.click(START)
    page.wait_for_selector(f"{MESSAGE}:not([hidden])", timeout=READY_TIMEOUT_MS)
    assert "No camera found" in page.inner_text(MESSAGE)
    assert page.get_attribute(START, "data-state") == "off"
    assert page.is_disabled(RECORD)


def test_mirror_flips_the_preview_and_the_recorded_frames_alike(cam, site_url):
    page = open_app(cam, site_url)
    start_camera(page)
    video = "[data-testid=webcam-video]"
    grab = """() => {
        const c = window.tfjsTransfer.webcam().webcam.frame(64);
        return Array.from(c.getContext('2d').getImageData(0, 0, 64, 64).data);
    }"""
    assert page.is_checked("[data-testid=webcam-mirror]")  # on by default, as Teachable Machine
    assert page.eval_on_selector(video, "v => v.style.transform") == "scaleX(-1)"
    mirrored = np.array(page.evaluate(grab), dtype=np.int16).reshape(64, 64, 4)
    page.uncheck("[data-testid=webcam-mirror]")
    assert page.eval_on_selector(video, "v => v.style.transform") == ""
    plain = np.array(page.evaluate(grab), dtype=np.int16).reshape(64, 64, 4)
    flipped_back = np.abs(plain - mirrored[:, ::-1]).mean()  # the clip's frames are all the same photo
    unflipped = np.abs(plain - mirrored).mean()  # the logo is not quite symmetric
    assert flipped_back < 1 and unflipped > 3 * flipped_back + 1, (flipped_back, unflipped)


def test_space_held_on_the_record_button_records(cam, site_url):
    page = open_app(cam, site_url)
    start_camera(page)
    select_class(page, "windows")
    before = len(examples_of(page, "windows"))
    page.focus(RECORD)
    page.keyboard.down("Space")
    page.wait_for_function(f"Number(document.querySelector('{COUNT}').dataset.count) >= 3")
    assert page.get_attribute(RECORD, "data-recording") == "true"
    page.keyboard.up("Space")
    wait_recorder_idle(page)
    assert page.get_attribute(RECORD, "data-recording") == "false"
    count = int(page.get_attribute(COUNT, "data-count"))
    assert count >= 3 and len(examples_of(page, "windows")) == before + count
    # Let go, it stays stopped: no frame comes after the key is up.
    page.wait_for_timeout(3 * RECORD_INTERVAL_MS)
    assert int(page.get_attribute(COUNT, "data-count")) == count

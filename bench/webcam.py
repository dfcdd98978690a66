"""Live webcam prediction against Chromium's fake camera playing a 30 fps clip (the test
logo, as tests/browser/test_page_webcam.py makes it): predictions per second, the camera's
frames the video presented in the same time (a busy main thread presents fewer), with TF.js in its worker
(the default) and on the main thread (?worker=0), alternated round by round.

Standalone: `python bench/webcam.py --site [NAME=]SITE_DIR ... [--rounds 2] [--seconds 6] [--json F]`
(SITE_DIR: a built site whose dist is the bundle to measure; several are alternated).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import BRAND_TEST, CHROMIUM, CHROMIUM_ARGS, open_ready, serve_wsgi  # noqa: E402

CLIP_FPS = 30
READY_TIMEOUT_MS = 180_000
VARIANTS = {"worker": "", "main_thread": "?worker=0"}

# Counts the frames the video presents (its own requestVideoFrameCallback chain, beside the
# page's loop) and the page's predictions (LiveLoop's count in the result's data-frames).
_COUNTERS_JS = """() => {
  const video = document.querySelector('[data-testid=webcam-video]');
  const c = window.__camBench = { videoFrames: 0 };
  const onFrame = () => { c.videoFrames += 1; video.requestVideoFrameCallback(onFrame); };
  video.requestVideoFrameCallback(onFrame);
}"""
_READ_JS = """() => ({ videoFrames: window.__camBench.videoFrames, now: performance.now(),
  predictions: Number(document.querySelector('[data-testid=webcam-prediction]').dataset.frames || 0),
  durations: window.tfjsTransfer.webcam().live.durations.slice() })"""


def _clip(folder: Path) -> Path:
    from tests.browser.test_page_webcam import write_y4m  # the tests' clip, at CLIP_FPS

    return write_y4m(BRAND_TEST / "android.jpg", folder / "logo.y4m", seconds=4.0)


def measure(camera, url: str, query: str, seconds: float) -> dict:
    """One page, live prediction on, `seconds` of steady state after a 2 s warm-up."""
    context = camera.new_context(viewport={"width": 1200, "height": 900}, permissions=["camera"])
    try:
        page = context.new_page()
        page.set_default_timeout(READY_TIMEOUT_MS)
        open_ready(page, url + query, READY_TIMEOUT_MS)
        page.click("[data-testid=webcam-start]")
        page.wait_for_function("document.querySelector('[data-testid=webcam-start]').dataset.state === 'on'")
        page.evaluate(_COUNTERS_JS)
        page.check("[data-testid=webcam-live]")
        page.wait_for_function("Number(document.querySelector('[data-testid=webcam-prediction]').dataset.frames) >= 5")
        time.sleep(2.0)
        a = page.evaluate(_READ_JS)
        time.sleep(seconds)
        b = page.evaluate(_READ_JS)
        page.uncheck("[data-testid=webcam-live]")
        s = (b["now"] - a["now"]) / 1000
        predictions, frames = b["predictions"] - a["predictions"], b["videoFrames"] - a["videoFrames"]
        return {"predictions_per_s": predictions / s, "video_fps": frames / s,
                "camera_frames_unpredicted": max(0.0, 1 - predictions / (CLIP_FPS * s)),
                "prediction_ms_p50": statistics.median(b["durations"][-predictions:]) if predictions else None}
    finally:
        context.close()


def run(sites, *, rounds: int = 2, seconds: float = 6.0, log=print) -> dict:
    """`sites`: a built site folder, or {name: folder} to pair bundles (before/after) in one browser."""
    from playwright.sync_api import sync_playwright

    from tfjs_transfer.serve import create_app

    sites = sites if isinstance(sites, dict) else {"": sites}
    runs = [(f"{s}:{v}" if s else v, s, v) for s in sites for v in VARIANTS]
    out = {name: [] for name, _, _ in runs}
    with contextlib.ExitStack() as stack, sync_playwright() as p:
        urls = {s: stack.enter_context(serve_wsgi(create_app(Path(d)))) for s, d in sites.items()}
        clip = _clip(Path(stack.enter_context(tempfile.TemporaryDirectory())))
        camera = p.chromium.launch(executable_path=CHROMIUM, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"])
        try:
            for r in range(rounds):
                for name, site, variant in (runs if r % 2 == 0 else runs[::-1]):
                    load = os.getloadavg()[0]
                    res = measure(camera, urls[site], VARIANTS[variant], seconds)
                    res["load_1min"] = load
                    out[name].append(res)
                    log(f"  webcam {name:18s} round {r + 1}: {res['predictions_per_s']:.1f} predictions/s, "
                        f"the video presented {res['video_fps']:.1f} of the camera's {CLIP_FPS} fps, "
                        f"a prediction p50 {res['prediction_ms_p50']:.1f} ms, load {load:.1f}")
        finally:
            camera.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", action="append", required=True,
                    help="a built site folder, or NAME=FOLDER (repeat to pair bundles, alternated)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    sites = dict(s.split("=", 1) if "=" in s else ("", s) for s in args.site)
    res = run(sites, rounds=args.rounds, seconds=args.seconds)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

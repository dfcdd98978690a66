"""Feature extraction's throughput and peak memory: in-process against Apache Beam's local runner
with 1 and 2 worker processes, on N synthetic images (rotated, brightened copies of the shared
logos, all distinct contents), one view an image, each run on an empty cache.

    python bench/beam.py [--images 2000] [--modes inprocess,beam1,beam2]
    python bench/beam.py --images 20000 --modes train-memory,train-streamed   # head training

The training modes fill a cache with N random feature entries (3 classes) and train the
pooled head 2 epochs on them, from memory (heads.train_head) or streamed (streamed.train_head).
The build modes run the whole `tfjs-transfer build` on the N images (pooled recipe, one view an
image, 2 epochs, an empty cache) with the head trained from memory or streamed from the cache
(--stream-features off|on); images/s is then over the whole build:

    python bench/beam.py --images 2000 --modes build-memory,build-streamed

Each run is a subprocess (`python bench/beam.py worker MODE ...`) printing one JSON line; this
process samples the RSS of the worker's whole process tree (Beam's worker processes included)
and prints images/s and peak RSS per mode.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import BRAND_TRAIN, MOBILENET_H5  # noqa: E402

BEAM_OPTIONS = {"beam1": ["--runner", "FnApiRunner"],
                "beam2": ["--runner", "FnApiRunner", "--direct_num_workers", "2",
                          "--direct_running_mode", "multi_processing"]}


def make_images(root: Path, n: int) -> Path:
    """n distinct images in 3 class folders: logo i % 90, rotated by i // 90 degrees and brightened."""
    from PIL import Image, ImageEnhance

    logos = sorted(BRAND_TRAIN.iterdir())
    for i in range(n):
        src = logos[i % len(logos)]
        label = src.stem.rsplit("-", 1)[0]
        (root / label).mkdir(parents=True, exist_ok=True)
        with Image.open(src) as im:
            im = im.convert("RGB").rotate(i // len(logos), expand=False, fillcolor=(255, 255, 255))
            ImageEnhance.Brightness(im).enhance(1 + (i % 7) / 50).save(root / label / f"{i:07d}.jpg", quality=90)
    return root


def worker(mode: str, data: str, cache: str) -> dict:
    """Steps 1-3 of the build (scan, served backbone), then the timed extraction."""
    from tfjs_transfer import backbones, dataset, features, fold
    from tfjs_transfer.build import beam_extract_module, quiet_tensorflow

    quiet_tensorflow()
    ds = dataset.scan(data)
    bb = backbones.load_backbone(None, str(MOBILENET_H5))
    folded, _ = fold.fold_batch_norms(bb.model)
    t = time.perf_counter()
    if mode == "inprocess":
        # as a build that streams extracts: the features go to the cache, not into memory
        done = features.extract(bb, ds.samples, Path(cache), verbose=0, model=folded, model_tag="folded",
                                in_memory=False).computed
    else:
        beam = beam_extract_module()
        done = beam.run(bb, beam.local_patterns(s.path for s in ds.samples), Path(cache), folded, "folded", None,
                        BEAM_OPTIONS[mode], report=False)["computed"]
    seconds = time.perf_counter() - t
    return {"mode": mode, "images": len(ds.samples), "computed": done, "seconds": seconds}


def train(mode: str, n: int, cache: str) -> dict:
    """The pooled head on n random cached entries, from memory or streamed from the cache."""
    import numpy as np

    from tfjs_transfer import features, heads, streamed
    from tfjs_transfer.build import quiet_tensorflow

    quiet_tensorflow()
    shape = (7, 7, 256)
    vc = features.ViewCache(Path(cache), {"bench": "random"}, None, shape)
    rng = np.random.default_rng(0)
    digests = [f"{i:064x}" for i in range(n)]
    y = np.arange(n) % 3
    for d, label in zip(digests, y):
        vc.put(d, 0, rng.random(shape, np.float32) + label)
    recipe = heads.resolve_recipe("pooled", epochs=2)
    t = time.perf_counter()
    if mode == "train-memory":
        x = np.stack([vc.get(d, 0) for d in digests])
        r = heads.train_head(recipe, x, y, 3, seed=0, verbose=0)
    else:
        r = streamed.train_head(recipe, vc, streamed.Index.of(digests, y), 3, seed=0)
    return {"mode": mode, "images": n, "computed": n * recipe.epochs, "seconds": time.perf_counter() - t,
            "train_accuracy": r.metrics["train_accuracy"]}


def tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)])
    except psutil.Error:
        return 0


def build_command(mode: str, data: Path, cache: Path) -> list[str]:
    """The CLI build of this checkout (python -m tfjs_transfer.cli from ROOT), quiet."""
    return [sys.executable, "-m", "tfjs_transfer.cli", "build", "--data", str(data), "--weights", str(MOBILENET_H5),
            "--out", str(cache.parent / f"site-{mode}"), "--cache", str(cache), "--recipe", "pooled",
            "--epochs", "2", "--augment-copies", "0", "--quiet",
            "--stream-features", "on" if mode == "build-streamed" else "off"]


def measure(mode: str, data: Path, cache: Path) -> dict:
    cmd = (build_command(mode, data, cache) if mode.startswith("build")
           else [sys.executable, __file__, "worker", mode, str(data), str(cache)])
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT)))
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{mode}: worker failed (exit {proc.returncode})")
    if mode.startswith("build"):
        n = json.loads((cache.parent / f"site-{mode}" / "manifest.json").read_text())["dataset"]["count"]
        result = {"mode": mode, "images": n, "computed": n, "seconds": time.perf_counter() - t}
    else:
        result = json.loads(out.strip().splitlines()[-1])
    result["images_per_s"] = result["computed"] / result["seconds"]
    result["peak_rss_mb"] = peak[0] / 1e6
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        mode = sys.argv[2]
        print(json.dumps(train(mode, int(sys.argv[3]), sys.argv[4]) if mode.startswith("train")
                         else worker(*sys.argv[2:5])))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--modes", default="inprocess,beam1,beam2")
    args = ap.parse_args()
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-beam-") as tmp:
        data = make_images(Path(tmp) / "data", args.images) if any(not m.startswith("train") for m in modes) else None
        for mode in modes:
            cache = Path(tmp) / f"cache-{mode}"
            r = measure(mode, args.images if mode.startswith("train") else data, cache)
            shutil.rmtree(cache, ignore_errors=True)
            for leftover in Path(tmp).glob(f"site-{mode}*"):
                shutil.rmtree(leftover, ignore_errors=True)
            what = ("training, 2 epochs" if mode.startswith("train") else
                    "whole build" if mode.startswith("build") else "extraction")
            print(f"{mode:14s} {r['images']:7d} images  {r['images_per_s']:7.1f} images/s  "
                  f"({r['seconds']:.1f}s {what})  peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()

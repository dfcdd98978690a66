"""`make bench`: how fast the pipeline, the page and the server are, as medians of repeats.

    .venv/bin/python bench/run.py [--repeat 3] [--quick] [--json bench-results.json] [--skip PHASE ...]

Phases (each run --repeat times; the figures are medians, ratios are medians of ratios
measured side by side in the same round):
  build    `tfjs-transfer build` on the logos as subprocesses: cold (empty feature cache),
           warm (nothing changed: the build finds the site up to date), --force with a
           warm cache, and incremental (one new image); the site of round 1 is what the
           browser and the server use.
  python   TF workers (bench/python.py): decode + resize per image, features images/s at
           batch 1 vs 32 through tfjs_transfer.inference.predict_batches, the backbone's
           multiply-adds against a large float32 matmul's GFLOP/s in the same process,
           a per-layer-kind breakdown, the per-layer roofline at batch 32 (bench/python.py
           layer_roofline), and the levers (batch sizes, XLA, thread settings, oneDNN off and
           TF_ONEDNN_* options, a frozen graph, one call a batch, in their own processes; the
           backbone as trained, before pipeline/fold.py); without --quick, the other native
           engines on PYTHONPATH (TFLite XNNPACK, ai-edge-litert, OpenVINO, onnxruntime) paired
           with the TF path in one process a round (bench/engines.py).
           Like the build, the workers extract with the folded backbone.
  quant    sizes and conversion time at float32 / float16 / uint8, and the accuracy each
           quantization costs on held-out images (1/5 of each class of the logos and of
           sign digits), scored with the dequantized TF.js weights.
  browser  headless Chromium: wasm as shipped (threaded build), wasm single-threaded build,
           wasm with TF.js' own 1-thread pool, webgl (SwiftShader), cpu (bench/browser.py).
  first_visit  a cold first visit over a throttled connection (10 Mbit/s, 40 ms): bytes and
           time to the first prediction, the page against the tutorial's way; the page's speed
           on a host without COOP/COEP, with and without its service worker (bench/first_visit.py).
  webcam   live prediction from Chromium's fake camera playing a 30 fps clip: predictions per
           second, the frames the video presented and a prediction's time, in the page's TF.js
           worker and on its main thread, alternated (bench/webcam.py).
  serve    bench/serve_load.run_load with and without compression.

Everything is built in a temporary folder with a temporary feature cache; the only file
written to the repository is bench-results.json. The machine may be shared: each phase
records the load average and CPU pressure around it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import browser as browser_bench  # noqa: E402
from bench import first_visit  # noqa: E402
from bench import python as py  # noqa: E402
from bench import xnnpack as xnnpack_bench  # noqa: E402
from tests.harness import BRAND_TRAIN, MOBILENET_H5, SIGN_DIGITS  # noqa: E402

PHASES = ("build", "python", "quant", "browser", "first_visit", "webcam", "serve")

# Python worker configurations: the default, and the levers tried against it.
LEVERS = {
    "default": ([], {}),
    "intra=1,inter=1": (["--intra", "1", "--inter", "1"], {}),
    "oneDNN off": ([], {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "inter=1 (halves in turn)": (["--inter", "1"], {}),
    "one call a batch (no halves)": (["--call", "whole"], {}),
    "frozen graph (weights const)": (["--call", "frozen"], {}),
    "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": ([], {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}),
    "TF_ONEDNN_THREADPOOL_USE_CALLER": ([], {"TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD": "1"}),
}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def log(msg: str) -> None:
    print(msg, flush=True)


def machine_load() -> dict:
    info = {"loadavg_1m": round(os.getloadavg()[0], 2)}
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        info["cpu_pressure_avg10"] = float(line.split("avg10=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        pass
    return info


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------- phases


def copy_logos(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for p in sorted(BRAND_TRAIN.iterdir()):
        if p.is_file():
            shutil.copy2(p, dest / p.name)
    return dest


def add_one_image(data: Path) -> Path:
    """A new image (an existing logo mirrored: new bytes, same class) in the flat layout."""
    from PIL import Image, ImageOps

    src = data / "android-0.jpg"
    dest = data / "android-1000.jpg"
    ImageOps.mirror(Image.open(src).convert("RGB")).save(dest, quality=92)
    return dest


def phase_build(tmp: Path, repeat: int) -> dict:
    """Cold / warm / forced / incremental builds, `repeat` rounds, each in fresh folders."""
    rounds = []
    site = None
    for r in range(repeat):
        root = tmp / f"build-{r}"
        data, cache, out = copy_logos(root / "data"), root / "cache", root / "site"
        cache.mkdir()
        row = {}
        row["cold"] = py.run_build(data, str(MOBILENET_H5), out, cache)
        row["warm"] = py.run_build(data, str(MOBILENET_H5), out, cache)
        row["force"] = py.run_build(data, str(MOBILENET_H5), out, cache, "--force")
        if site is None:
            site = tmp / "logos" / out.name  # with its Python-side models beside it, as the manifest says
            shutil.copytree(out, site)
            shutil.copytree(out.parent / f"{out.name}.python", site.parent / f"{out.name}.python")
        add_one_image(data)
        row["incremental"] = py.run_build(data, str(MOBILENET_H5), out, cache)
        log(f"  build round {r + 1}/{repeat}: " + ", ".join(f"{k} {v['wall_s']:.1f}s ({_what(v)})" for k, v in row.items()))
        rounds.append(row)
    kinds = ("cold", "warm", "force", "incremental")
    out = {k + "_s": med([r[k]["wall_s"] for r in rounds]) for k in kinds}
    out["warm_vs_cold"] = med([r["cold"]["wall_s"] / r["warm"]["wall_s"] for r in rounds])
    out["cold_vs_force"] = med([r["cold"]["wall_s"] / r["force"]["wall_s"] for r in rounds])
    out["cold_vs_incremental"] = med([r["cold"]["wall_s"] / r["incremental"]["wall_s"] for r in rounds])
    out["computed_views"] = {k: rounds[0][k]["computed"] for k in kinds}
    out["warm_detected_up_to_date"] = all(r["warm"]["up_to_date"] for r in rounds)
    stages = ("backbone_load_s", "features_s", "head_training_s", "convert_and_site_s", "total_s")
    out["stages_s"] = {k: {s: med([r[k]["timings"].get(s) for r in rounds]) for s in stages}
                       for k in ("cold", "force", "incremental")}
    # the default recipe's head training, from every build that trained one
    out["head_training_s"] = med([r[k]["timings"].get("head_training_s") for r in rounds
                                  for k in ("cold", "force", "incremental")])
    m = rounds[0]["force"]["manifest"]
    out["site"] = {"backbone_bytes": m["backbone"]["bytes"], "head_bytes": m["head"]["bytes"],
                   "images": m["dataset"]["count"], "recipe": m["training"]["recipe"]}
    out["rounds"] = [{k: {kk: vv for kk, vv in v.items() if kk != "manifest"} for k, v in r.items()} for r in rounds]
    return out, site


def _what(build: dict) -> str:
    return "up to date" if build["up_to_date"] else f"{build['computed']} views computed"


def phase_python(repeat: int, quick: bool, site: Path | None = None) -> dict:
    """The default worker and each lever in its own process, interleaved round by round."""
    levers = {k: LEVERS[k] for k in (("default", "intra=1,inter=1") if quick else LEVERS)}
    images = "32" if quick else "90"
    runs = {k: [] for k in levers}
    engine_runs, xnnpack_runs = [], []
    for r in range(repeat):
        for name, (flags, env) in levers.items():
            default = name == "default"
            flags = flags if default else [*flags, "--engine", "tf"]  # the levers are TF's own settings
            args = ["worker", "--weights", str(MOBILENET_H5), "--data", str(BRAND_TRAIN), "--images", images,
                    "--throughput-images", "32" if quick else "128", "--reps", "1",
                    "--batches", ("1,8,32,128" if not quick else "1,32") if default else "1,32",
                    "--xla-batches", "32" if default else "", *flags]
            if default:
                args += ["--extras", "--unfolded"]
                if r == 0 and site is not None:  # the unfolded backbone, the browser's "before"
                    args += ["--unfolded-out", str(site / browser_bench.UNFOLDED_PATH.rsplit("/", 1)[0])]
            t = time.perf_counter()
            res = py.run_worker(args, env)
            runs[name].append(res)
            log(f"  python {name:<16} round {r + 1}/{repeat}: batch 1 {res['images_per_s']['1']:.0f} img/s, "
                f"batch 32 {res['images_per_s']['32']:.0f} img/s, matmul {res['matmul_gflops']:.0f} GFLOP/s "
                f"-> {res['fraction_of_peak']['32']:.0%} of peak ({time.perf_counter() - t:.0f}s)")
        if not quick:  # the other native engines (bench/engines.py), one process a round
            t = time.perf_counter()
            engine_runs.append(py.run_worker(["engines", "--weights", str(MOBILENET_H5), "--data", str(BRAND_TRAIN),
                                              "--reps", "3"]))
            log(f"  python engines round {r + 1}/{repeat} ({time.perf_counter() - t:.0f}s)")
            t = time.perf_counter()  # ways to run XNNPACK on the cores (bench/xnnpack.py)
            xnnpack_runs.append(py.run_worker(["xnnpack", "--weights", str(MOBILENET_H5), "--data", str(BRAND_TRAIN),
                                               "--reps", "3", *(["--layers"] if r == 0 else [])]))
            log(f"  python xnnpack round {r + 1}/{repeat} ({time.perf_counter() - t:.0f}s)")
    d = runs["default"]
    out = {
        "tf": d[0]["tf"], "cpus": d[0]["cpus"],
        "decode_ms_per_image": med([x["decode_ms_per_image"] for x in d]),
        "resize_ms_per_image": med([x["resize_ms_per_image"] for x in d]),
        "decode_resize_ms_per_image": med([x["decode_resize_ms_per_image"] for x in d]),
        "macs_per_image": d[0]["macs_per_image"], "macs_by_kind": d[0]["macs_by_kind"], "params": d[0]["params"],
        "images_per_s": {b: med([x["images_per_s"][b] for x in d]) for b in d[0]["images_per_s"]},
        "images_per_s_xla": {b: med([x["images_per_s_xla"][b] for x in d]) for b in d[0]["images_per_s_xla"]},
        "xla_compile_s": {b: med([x["xla_compile_s"][b] for x in d]) for b in d[0].get("xla_compile_s", {})},
        "matmul_gflops": med([x["matmul_gflops"] for x in d]),
        "memory_gbps": med([x["memory_gbps"] for x in d]),
        "fraction_of_peak": {b: med([x["fraction_of_peak"][b] for x in d]) for b in d[0]["fraction_of_peak"]},
        "fraction_of_peak_xla": {b: med([x["fraction_of_peak_xla"][b] for x in d]) for b in d[0]["fraction_of_peak_xla"]},
        "batch32_vs_batch1": med([x["images_per_s"]["32"] / x["images_per_s"]["1"] for x in d]),
        "head_train_20_epochs_ms": med([x["head_train_20_epochs_ms"] for x in d]),
        "head_train_rows": d[0]["head_train_rows"],
        "layers": _median_layers([x["layers"] for x in d]),
        "bandwidths_gbps": {k: med([x["bandwidths_gbps"][k] for x in d]) for k in d[0]["bandwidths_gbps"]},
        "roofline": _median_roofline([x["roofline"] for x in d]),
        "backbone_load_s": med([x["backbone_load_s"] for x in d]),
    }
    out["achieved_gflops_batch32"] = out["images_per_s"]["32"] * 2 * out["macs_per_image"] / 1e9
    out["ms_per_image_batch32"] = 1000 / out["images_per_s"]["32"]
    out["engine"] = d[0].get("engine", "tf")
    if d[0].get("images_per_s_tf"):  # the build's engine is not TF: TF's own path, named, beside it
        out["images_per_s_tf"] = {b: med([x["images_per_s_tf"][b] for x in d]) for b in d[0]["images_per_s_tf"]}
        out["fraction_of_peak_tf"] = {b: med([x["fraction_of_peak_tf"][b] for x in d]) for b in d[0]["fraction_of_peak_tf"]}
        out["engine_vs_tf"] = {b: med([x["engine_vs_tf"][b] for x in d]) for b in d[0]["engine_vs_tf"]}
        out["engine_max_abs_diff_vs_tf"] = med([x["engine_max_abs_diff_vs_tf"] for x in d])
        out["tflite_convert_s"] = med([x["tflite_convert_s"] for x in d])
        out["ms_per_image_batch32_tf"] = 1000 / out["images_per_s_tf"]["32"]
    levers_out = {}
    for name, rs in runs.items():
        pairs = list(zip(rs, d))
        levers_out[name] = {
            "images_per_s_batch1": med([x["images_per_s"]["1"] for x in rs]),
            "images_per_s_batch32": med([x["images_per_s"]["32"] for x in rs]),
            "matmul_gflops": med([x["matmul_gflops"] for x in rs]),
            "fraction_of_peak_batch32": med([x["fraction_of_peak"]["32"] for x in rs]),
            # TF's knobs, against the default worker's TF path (its engine is timed apart)
            "batch32_vs_default": med([x["images_per_s"]["32"] / y.get("images_per_s_tf", y["images_per_s"])["32"]
                                       for x, y in pairs]),
            "max_abs_diff": med([x.get("call_max_abs_diff") for x in rs]),
        }
    if "32" in out["images_per_s_xla"]:
        levers_out["XLA jit_compile (default threads)"] = {
            "images_per_s_batch32": out["images_per_s_xla"]["32"],
            "fraction_of_peak_batch32": out["fraction_of_peak_xla"]["32"],
            "batch32_vs_default": med([x["images_per_s_xla"]["32"] / x.get("images_per_s_tf", x["images_per_s"])["32"]
                                       for x in d]),
            "compile_s": out["xla_compile_s"].get("32"),
        }
    if d[0].get("folded"):
        f = d[0]["folded"]
        out["folded"] = {"batch_norms": f["batch_norms"], "paddings": f["paddings"], "max_abs_diff": f["max_abs_diff"]}
        levers_out[f"before: not folded ({f['batch_norms']} BN, {f['paddings']} pads kept)"] = {
            "images_per_s_batch1": med([x["folded"]["unfolded_images_per_s"]["1"] for x in d]),
            "images_per_s_batch32": med([x["folded"]["unfolded_images_per_s"]["32"] for x in d]),
            "fraction_of_peak_batch32": med([x["folded"]["unfolded_fraction_of_peak"]["32"] for x in d]),
            "batch32_vs_default": med([x["folded"]["unfolded_vs_folded_batch32"] for x in d]),
        }
    out["levers"] = levers_out
    if engine_runs:
        out["engines"] = _median_engines(engine_runs)
    if xnnpack_runs:
        out["xnnpack"] = xnnpack_bench.median_runs(xnnpack_runs)
    return out


def _median_engines(runs: list[dict]) -> dict:
    """Each engine's figures as medians of rounds (an engine missing in a round keeps its status)."""
    engines = {}
    for name, first in runs[0]["engines"].items():
        rows = [r["engines"].get(name, {}) for r in runs]
        e = {"status": first["status"]}
        for k in ("images_per_s_batch32", "fraction_of_peak", "vs_tf", "max_abs_diff_vs_keras", "prepare_s",
                  "package_mb", "images_per_cpu_s"):
            e[k] = med([x.get(k) for x in rows])
        engines[name] = e
    conv = runs[0]["conversion"]
    return {"threads": runs[0]["threads"], "tolerance": runs[0]["tolerance"], "engines": engines,
            "conversion": {k: med([r["conversion"].get(k) for r in runs]) if isinstance(v, (int, float)) else v
                           for k, v in conv.items()},
            "matmul_gflops": med([r["matmul_gflops"] for r in runs])}


def _median_layers(items: list[dict]) -> dict:
    kinds = items[0]["kinds"]
    return {"batch": items[0]["batch"], "sum_ms_per_image": med([i["sum_ms_per_image"] for i in items]),
            "kinds": {k: {f: (med([i["kinds"][k][f] for i in items]) if isinstance(v, (int, float)) else v)
                          for f, v in kinds[k].items()} for k in kinds}}


def _median_roofline(items: list[dict]) -> dict:
    """Per-layer and summary figures of the rounds' rooflines, medians field by field."""
    def medians(dicts):
        return {f: (med([d[f] for d in dicts]) if isinstance(v, (int, float)) else v) for f, v in dicts[0].items()}

    out = medians(items)
    out["layers"] = [medians([i["layers"][n] for i in items]) for n in range(len(items[0]["layers"]))]
    out["kinds"] = {k: medians([i["kinds"][k] for i in items]) for k in items[0]["kinds"]}
    return out


def split_dataset(src: Path, dest: Path, per_class_limit: int | None = None) -> list[list[str]]:
    """train/<class>/ and test/<class>/ copies: every 5th image of each class (sorted) is held out."""
    from tfjs_transfer import dataset

    ds = dataset.scan(src)
    tests = []
    for label in ds.labels:
        items = sorted((s for s in ds.samples if s.label == label), key=lambda s: s.path.name)
        if per_class_limit:
            items = items[:per_class_limit]
        for i, s in enumerate(items):
            split = "test" if i % 5 == 4 else "train"
            d = dest / split / label
            d.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s.path, d / s.path.name)
            if split == "test":
                tests.append([str(d / s.path.name), label])
    return tests


def phase_quant(tmp: Path, quick: bool, site_logos: Path | None) -> dict:
    out = {}
    cache = tmp / "quant-cache"
    cache.mkdir()
    sets = {"logos": (BRAND_TRAIN, None), "sign_digits": (SIGN_DIGITS, 10 if quick else None)}
    for name, (src, limit) in sets.items():
        data = tmp / f"quant-data-{name}"
        tests = split_dataset(src, data, limit)
        (tmp / f"quant-tests-{name}.json").write_text(json.dumps(tests))
        site = tmp / f"quant-site-{name}"
        t = time.perf_counter()
        b = py.run_build(data, str(MOBILENET_H5), site, cache)
        res = py.run_worker(["quant", "--site", str(site), "--weights", str(MOBILENET_H5),
                             "--test-list", str(tmp / f"quant-tests-{name}.json"),
                             "--work", str(tmp / f"quant-work-{name}")])
        res["train_images"] = b["manifest"]["dataset"]["count"] - len(tests)
        res["build_test_accuracy_keras"] = b["manifest"]["training"]["metrics"].get("test_accuracy")
        out[name] = res
        q = res["quantizations"]
        log(f"  quant {name}: {res['held_out']} held out; accuracy float32 {q['float32']['accuracy']:.3f}, "
            f"float16 {q['float16']['accuracy_change_points']:+.1f} pts, uint8 {q['uint8']['accuracy_change_points']:+.1f} pts "
            f"({time.perf_counter() - t:.0f}s)")
    if not quick:
        # the real flag, once: sizes from `build --quantize uint8` must match the re-conversion's
        site = tmp / "quant-site-logos-uint8"
        b = py.run_build(tmp / "quant-data-logos", str(MOBILENET_H5), site, cache, "--quantize", "uint8")
        out["build_quantize_uint8_check"] = {
            "backbone_weights_bytes": sum((site / "models" / "backbone" / f).stat().st_size
                                          for f in b["manifest"]["backbone"]["files"] if f.endswith(".bin")),
            "head_weights_bytes": sum((site / "models" / "head" / f).stat().st_size
                                      for f in b["manifest"]["head"]["files"] if f.endswith(".bin")),
            "head_roundtrip_max_abs_error": b["manifest"]["head"].get("roundtrip_max_abs_error"),
        }
    return out


def phase_browser(site: Path, repeat: int, quick: bool, backends=None) -> dict:
    why = browser_bench.available()
    if why:
        log(f"  browser: skipped ({why})")
        return {"skipped": why}
    return browser_bench.run(site, repeat=repeat, n=24 if quick else 90, n_slow=6 if quick else 16,
                             predicts=20, predicts_slow=4 if quick else 8,
                             cpu_epochs=2 if quick else 5, log=log,
                             backends=tuple(backends or browser_bench.BACKENDS))


def phase_first_visit(site: Path, repeat: int) -> dict:
    why = browser_bench.available()
    if why:
        log(f"  first_visit: skipped ({why})")
        return {"skipped": why}
    return first_visit.run(site, repeat=repeat)


def phase_webcam(site: Path, repeat: int, quick: bool) -> dict:
    """Whether the page's live predictions keep up with a 30 fps camera, in its worker and on its main thread."""
    from bench import webcam

    why = browser_bench.available()
    if why:
        log(f"  webcam: skipped ({why})")
        return {"skipped": why}
    runs = webcam.run(site, rounds=repeat, seconds=3.0 if quick else 6.0, log=log)
    out = {"camera_fps": webcam.CLIP_FPS}
    for variant, rs in runs.items():
        times = [r["prediction_ms_p50"] for r in rs if r["prediction_ms_p50"] is not None]  # None: no prediction
        out[variant] = {"rounds": rs,
                        "predictions_per_s": med([r["predictions_per_s"] for r in rs]),
                        "predictions_per_s_min": min(r["predictions_per_s"] for r in rs),
                        "video_fps": med([r["video_fps"] for r in rs]),
                        "prediction_ms_p50": med(times) if times else None}
    return out


def phase_serve(site: Path, repeat: int, quick: bool) -> dict:
    from bench.serve_load import run_load

    seconds = 2 if quick else 5
    out = {}
    for compress in (True, False):
        rs = []
        for r in range(repeat):
            res = run_load(site, clients=32, seconds=seconds, compress=compress)
            rs.append(res)
            log(f"  serve compress={'on' if compress else 'off'} round {r + 1}/{repeat}: "
                f"{res['total']['rps']:.0f} req/s, p99 {res['total']['p99_ms']} ms, errors {res['total']['errors']}")
        out["compress_on" if compress else "compress_off"] = {
            "requests_per_s": med([x["total"]["rps"] for x in rs]),
            "p50_ms": med([x["total"]["p50_ms"] for x in rs]),
            "p99_ms": med([x["total"]["p99_ms"] for x in rs]),
            "mb_per_s": med([x["total"]["mb_per_s"] for x in rs]),
            "errors": sum(x["total"]["errors"] for x in rs),
            "server_cpu_ms_per_request": med([x["total"]["server_cpu_ms_per_request"] for x in rs]),
            "by_kind": {k: {"rps": med([x["by_kind"][k]["rps"] for x in rs]),
                            "p99_ms": med([x["by_kind"][k]["p99_ms"] for x in rs])} for k in rs[0]["by_kind"]},
            "config": rs[0]["config"],
        }
    return out


# ---------------------------------------------------------------- headline + table


def headline(res: dict) -> dict:
    h = {}
    b, p, q, br, s = (res.get(k) or {} for k in ("build", "python", "quant", "browser", "serve"))
    wasm = br.get("wasm") if isinstance(br.get("wasm"), dict) else None
    fv = (res.get("first_visit") or {}).get("pages") or {}
    for name, page in fv.items():
        h[f"first_visit_{name}_bytes"] = page["bytes"]
        h[f"first_visit_{name}_ms"] = page["ms"]
    if "end_to_end" in br:
        h["browser_speedup_vs_tutorial"] = br["end_to_end"]["speedup"]
        h["browser_speedup_vs_tutorial_own_head"] = br["end_to_end"].get("speedup_vs_tutorial_own_head")
        h["browser_speedup_vs_tutorial_rounds"] = br["end_to_end"]["speedups"]
        h["browser_end_to_end_ms_ours"] = br["end_to_end"]["ours"]["total_ms"]
        h["browser_end_to_end_ms_tutorial"] = br["end_to_end"]["tutorial"]["total_ms"]
        # "ours" is the page's default path (its TF.js worker); the same on its main thread beside it
        h["browser_end_to_end_ours_path"] = br["end_to_end"]["ours"].get("path")
        if br["end_to_end"].get("speedup_main_thread") is not None:
            h["browser_speedup_vs_tutorial_main_thread"] = br["end_to_end"]["speedup_main_thread"]
            h["browser_speedup_vs_tutorial_main_thread_rounds"] = br["end_to_end"]["speedups_main_thread"]
            h["browser_end_to_end_ms_ours_main_thread"] = br["end_to_end"]["ours_main_thread"]["total_ms"]
    if br.get("worker_vs_main"):  # fresh pages, paired: the worker's extract + train over the main thread's
        wm = br["worker_vs_main"]["summary"]["worker_over_main"]
        h["browser_worker_over_main_thread_end_to_end"] = wm["end_to_end"]
        h["browser_worker_over_main_thread_end_to_end_95"] = br["worker_vs_main"]["end_to_end_median_95"]
        h["browser_worker_over_main_thread_extract"] = wm["extract_ms"]
        h["browser_worker_over_main_thread_train"] = wm["train_ms"]
    if br.get("train_button_worker_vs_main"):  # fresh pages, paired: the Train button as a whole
        tb = br["train_button_worker_vs_main"]
        h["browser_worker_over_main_thread_train_button"] = tb["median"]
        h["browser_worker_over_main_thread_train_button_95"] = tb["median_95"]
        h["train_button_longest_task_ms_worker"] = max(tb["longest_task_ms"]["worker"])
    if wasm and p:
        # like for like: both sides' backbone on preprocessed pixels, both at batch 32, against
        # native TensorFlow (issue 18's target), not the build's XNNPACK engine
        tf_ms = p.get("ms_per_image_batch32_tf", p["ms_per_image_batch32"])
        # the page's backbone as it runs by default (its TF.js worker, or its lanes), and on its main thread
        if wasm.get("backbone_only_worker_ms_per_image"):
            h["browser_vs_python_per_image"] = wasm["backbone_only_worker_ms_per_image"]["32"] / tf_ms
        if wasm.get("backbone_only_ms_per_image"):
            h["browser_vs_python_per_image_main_thread"] = wasm["backbone_only_ms_per_image"]["32"] / tf_ms
            h.setdefault("browser_vs_python_per_image", h["browser_vs_python_per_image_main_thread"])
        # the page's batch-32 features include fromPixels + resize + normalise; Python's still not
        h["browser_vs_python_per_image_incl_preprocess"] = wasm["extract_ms_per_image"]["32"] / tf_ms
    if p:
        h["python_fraction_of_peak"] = p["fraction_of_peak"]["32"]  # the build's engine (features.extract)
        if p.get("fraction_of_peak_tf"):
            h["python_fraction_of_peak_tf_path"] = p["fraction_of_peak_tf"]["32"]
            h["python_engine_vs_tf_path"] = p["engine_vs_tf"]["32"]
    if b:
        h["warm_vs_cold_build"] = b["warm_vs_cold"]
    if q.get("logos"):
        qq = q["logos"]["quantizations"]
        h["uint8_size_ratio"] = qq["float32"]["backbone_weights_bytes"] / qq["uint8"]["backbone_weights_bytes"]
    cam = res.get("webcam") or {}
    if cam.get("worker"):  # live prediction (the default path, its TF.js worker) against the camera's fps
        h["webcam_predictions_per_s"] = cam["worker"]["predictions_per_s"]
        h["webcam_predictions_per_s_min"] = cam["worker"]["predictions_per_s_min"]
        h["webcam_video_fps"] = cam["worker"]["video_fps"]
        if cam.get("main_thread"):
            h["webcam_predictions_per_s_main_thread"] = cam["main_thread"]["predictions_per_s"]
    if wasm:
        # a new image from a file through the page's file path (the URL hook's figure adds a fetch)
        h["predict_p50_ms_wasm"] = wasm["predict_file_ms"]["p50"]
        h["predict_p90_ms_wasm"] = wasm["predict_file_ms"]["p90"]
        h["predict_url_p50_ms_wasm"] = wasm["predict_page_ms"]["p50"]
    # descriptive keys
    if p:
        h["python_decode_resize_ms_per_image"] = p["decode_resize_ms_per_image"]
        h["python_features_images_per_s_batch1"] = p["images_per_s"]["1"]
        h["python_features_images_per_s_batch32"] = p["images_per_s"]["32"]
        h["python_batch32_vs_batch1"] = p["batch32_vs_batch1"]
        h["backbone_macs_per_image"] = p["macs_per_image"]
        h["matmul_peak_gflops"] = p["matmul_gflops"]
        h["python_achieved_gflops_batch32"] = p["achieved_gflops_batch32"]
        h["python_head_train_20_epochs_90_rows_ms"] = p["head_train_20_epochs_ms"]
        if p.get("roofline"):  # the per-layer roofline: the best fraction of peak, and how far the layers are
            h["python_roofline_best_fraction_of_peak"] = p["roofline"]["best_fraction_of_peak"]
            h["python_layers_vs_roofline_floor"] = p["roofline"]["sum_ms"] / p["roofline"]["floor_ms"]
    if b:
        h["python_head_training_s_default_recipe"] = b["head_training_s"]
        for k in ("cold", "warm", "force", "incremental"):
            h[f"build_{k}_s"] = b[f"{k}_s"]
    if q.get("logos"):
        qq = q["logos"]["quantizations"]
        for k in ("float32", "float16", "uint8"):
            h[f"site_backbone_bytes_{k}"] = qq[k]["backbone_bytes"]
            h[f"site_head_bytes_{k}"] = qq[k]["head_bytes"]
            h[f"conversion_s_{k}"] = qq[k]["backbone_convert_s"] + qq[k]["head_convert_s"]
        for ds in ("logos", "sign_digits"):
            if ds in q:
                for k in ("float16", "uint8"):
                    h[f"accuracy_change_points_{k}_{ds}"] = q[ds]["quantizations"][k]["accuracy_change_points"]
    for name in browser_bench.BACKENDS:
        r = br.get(name)
        if not isinstance(r, dict):
            continue
        h[f"browser_{name}_model_load_cold_ms"] = r["model_load_cold_ms"]
        h[f"browser_{name}_model_load_warm_ms"] = r["model_load_warm_ms"]
        h[f"browser_{name}_ready_at_cold_ms"] = r.get("ready_at_cold_ms")
        h[f"browser_{name}_features_ms_per_image_one_by_one"] = r["extract_ms_per_image"]["1"]
        h[f"browser_{name}_features_ms_per_image_batched"] = r["extract_ms_per_image"]["16"]
        h[f"browser_{name}_train_20_epochs_ms"] = r["train_ms"]
        h[f"browser_{name}_train_20_epochs_model_fit_ms"] = r.get("train_fit_ms")
        if r.get("page_extract"):  # the page's default path (the TF.js worker on wasm), the main thread's beside it
            h[f"browser_{name}_page_features_incl_decode_ms_per_image"] = r["page_extract"]["ms_per_image"]
        if r.get("page_extract_main"):
            h[f"browser_{name}_page_features_incl_decode_ms_per_image_main_thread"] = r["page_extract_main"]["ms_per_image"]
            h[f"browser_{name}_train_20_epochs_ms_main_thread"] = r["train_ms_main"]
        for where, lt in (r.get("long_tasks") or {}).items():
            if lt:
                for step in ("extract", "train"):
                    h[f"browser_{name}_{step}_longest_task_ms_{where}"] = lt[step]["longestTaskMs"]
                    h[f"browser_{name}_{step}_ms_{where}"] = lt[step]["ms"]
        h[f"browser_{name}_predict_p50_ms"] = r["predict_page_ms"]["p50"]
        h[f"browser_{name}_predict_p90_ms"] = r["predict_page_ms"]["p90"]
        h[f"browser_{name}_peak_tensor_bytes"] = r["peak_tensor_bytes"]
        for b, v in r.get("fuse_paired", {}).get("batches", {}).items():
            h[f"browser_{name}_fused_speedup_batch{b}"] = v["speedup"]  # web/src/fused.js, paired in one page
    for mode in ("compress_on", "compress_off"):
        if mode in s:
            h[f"serve_{mode}_requests_per_s"] = s[mode]["requests_per_s"]
            h[f"serve_{mode}_p99_ms"] = s[mode]["p99_ms"]
    return h


def fmt(v, unit="", digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}{unit}"
    return f"{v}{unit}"


def mb(n):
    return "-" if n is None else f"{n / 1e6:.2f} MB"


def long_tasks(r, where, key="longestTaskMs"):
    """Extracting / training with the TF.js work `where` (mainThread or worker): the longest
    main-thread task (key longestTaskMs) or the step's time (key ms), as 'a / b', or '-'."""
    lt = (r.get("long_tasks") or {}).get(where)
    if not lt:
        return "-"
    return f"{lt['extract'][key]:.0f} / {lt['train'][key]:.0f}"


def mb0(n):
    return "-" if n is None else f"{n / 1e6:.0f}"


def print_roofline(p: dict) -> None:
    """The per-layer roofline at batch 32 (bench/python.py layer_roofline) and its sum."""
    ro = p.get("roofline")
    if not ro:
        return
    bw = p["bandwidths_gbps"]
    head = (f"roofline per layer, batch {ro['batch']:.0f} (conv + its ReLU6 as one traced function, bias folded): floor = "
          f"max(FLOPs / {ro['peak_gflops']:.0f} GFLOP/s matmul peak, least bytes / {ro['gbps']:.1f} GB/s); least bytes = "
          f"input + output + weights in float32, once each. Copy bandwidth GB/s (same process): "
          + ", ".join(f"{k} {v:.1f}" for k, v in bw.items()) + f"; the roof uses the highest. Machine balance "
          f"{ro['balance']:.1f} FLOP/byte.")
    print(textwrap.fill(head, 100, initial_indent="  ", subsequent_indent="    "))
    print(f"    {'layer':<12}{'kind':<13}{'input':>13}{'ms':>8}{'MFLOP':>8}{'MB':>7}{'FLOP/B':>7}  {'bound':<8}"
          f"{'floor ms':>9}{'x floor':>8}{'GFLOP/s':>8}")
    short = {"Conv2D 3x3 (first)": "conv 3x3", "Conv2D 1x1 (pointwise)": "pointwise", "DepthwiseConv2D 3x3": "depthwise"}
    for r in ro["layers"]:
        print(f"    {r['name']:<12}{short.get(r['kind'], r['kind']):<13}{'x'.join(map(str, r['in'])):>13}{r['ms']:>8.2f}"
              f"{r['mflop']:>8.0f}{r['mbytes']:>7.1f}{r['flop_per_byte']:>7.1f}  {r['bound']:<8}{r['floor_ms']:>9.2f}"
              f"{r['vs_floor']:>7.1f}x{r['gflops']:>8.0f}")
    for k, v in ro["kinds"].items():
        print(f"    {k:<25} {v['layers']:>2.0f} layers: {v['time_share']:.0%} of the time, {v['ms']:.1f} ms against a floor "
              f"of {v['floor_ms']:.1f} ms ({v['vs_floor']:.1f}x), {v['gflops']:.0f} GFLOP/s at {v['flop_per_byte']:.1f} FLOP/byte")
    worst = max(ro["layers"], key=lambda r: r["ms"] - r["floor_ms"])
    compute = [r for r in ro["layers"] if r["bound"] == "compute"]
    c_ms, c_floor = sum(r["ms"] for r in compute), sum(r["floor_ms"] for r in compute)
    text = (f"sum: the layers take {ro['sum_ms']:.1f} ms for 32 images against a floor of {ro['floor_ms']:.1f} ms. "
            f"{ro['memory_bound_layers']:.0f} layers are memory-bound (below the balance): {ro['memory_bound_flop_share']:.0%} "
            f"of the FLOPs, {ro['memory_bound_floor_share']:.0%} of the floor, {ro['memory_bound_time_share']:.0%} of the "
            f"measured time. A kernel at its roof in every layer would reach {ro['best_fraction_of_peak']:.0%} of the "
            f"matmul peak; the layers reach {ro['measured_fraction_of_peak']:.0%}. The compute-bound layers run at "
            f"{c_ms / c_floor:.1f}x their floor ({sum(r['mflop'] for r in compute) / c_ms:.0f} GFLOP/s)"
            + (": the gap is not only memory traffic" if c_ms > 1.5 * c_floor else ", close to it") +
            f"; the largest single excess is {worst['name']} ({worst['ms']:.1f} ms, "
            f"{worst['vs_floor']:.1f}x its floor, {'x'.join(map(str, worst['in']))} -> {'x'.join(map(str, worst['out']))}).")
    print(textwrap.fill(text, 100, initial_indent="  ", subsequent_indent="    "))


def print_engines(e: dict) -> None:
    """bench/engines.py: the folded backbone in other native engines, paired with the pipeline's TF path."""
    print(f"  other native engines (bench/engines.py: the folded backbone, batch 32, {e['threads']} threads, one "
          f"process, interleaved with the TF path; 'vs TF' = img/s ratio, same round; diff vs Keras, tolerance "
          f"{e['tolerance']:g}):")
    print(f"    {'engine':<62}{'img/s':>7}{'img/CPU-s':>10}{'of peak':>9}{'vs TF':>8}{'max diff':>10}{'prepare':>9}{'MB':>6}")
    for k, v in e["engines"].items():
        if v["status"] != "ok":
            print(f"    {k:<62}{v['status']}")
            continue
        print(f"    {k:<62}{v['images_per_s_batch32']:>7.0f}{fmt(v.get('images_per_cpu_s'), '', 0):>10}"
              f"{v['fraction_of_peak']:>9.0%}{fmt(v['vs_tf'], 'x', 2):>8}"
              f"{v['max_abs_diff_vs_keras']:>10.1e}{fmt(v['prepare_s'], 's', 1):>9}{fmt(v['package_mb'], '', 0):>6}")
    c = e["conversion"]
    print("    conversions: " + ", ".join(f"{k} {fmt(v, digits=1) if isinstance(v, (int, float)) else v}"
                                          for k, v in c.items() if not isinstance(v, dict)))


def print_table(res: dict) -> None:
    h = res["headline"]
    b, p, q, br, s = (res.get(k) or {} for k in ("build", "python", "quant", "browser", "serve"))
    cfg = res["config"]
    print()
    print("=" * 100)
    print(f"tfjs-transfer benchmark: {cfg['cpu']} x{cfg['cpus']}, Python {cfg['python']}, "
          f"repeat {cfg['repeat']}{' (quick)' if cfg['quick'] else ''}; medians of rounds, ratios side by side")
    print("machine load by phase: " + ", ".join(f"{k} {v['before']['loadavg_1m']}->{v['after']['loadavg_1m']}"
                                                for k, v in res["machine"].items()))
    print("=" * 100)

    if p:
        print("\nPython (TF {}, MobileNet v1 0.25 cut at conv_pw_13_relu, 224x224 -> 7x7x256)".format(p["tf"]))
        print(f"  decode + resize per image      {p['decode_resize_ms_per_image']:.2f} ms "
              f"(Pillow decode {p['decode_ms_per_image']:.2f}, TF ResizeBilinear {p['resize_ms_per_image']:.2f})")
        ips = p["images_per_s"]
        print("  features (predict_batches)     " + ", ".join(f"batch {k}: {v:.0f} img/s" for k, v in ips.items())
              + f"; batch 32 / batch 1 = {p['batch32_vs_batch1']:.2f}x")
        mk = p["macs_by_kind"]
        tot = p["macs_per_image"]
        print(f"  multiply-adds per image        {tot / 1e6:.1f} M ({2 * tot / 1e6:.0f} MFLOP): pointwise 1x1 "
              f"{mk['conv_pointwise'] / tot:.0%}, depthwise 3x3 {mk['depthwise'] / tot:.0%}, first 3x3 conv "
              f"{mk['conv_full'] / tot:.0%}; {p['params']:,} parameters")
        print(f"  float32 matmul peak            {p['matmul_gflops']:.1f} GFLOP/s ({py.MATMUL_N}x{py.MATMUL_N}, same "
              f"process and threads); memory copy {p['memory_gbps']:.1f} GB/s")
        frac = p["fraction_of_peak"]["32"]
        print(f"  achieved at batch 32           {p['achieved_gflops_batch32']:.1f} GFLOP/s = {frac:.0%} of the matmul peak "
              f"(python_fraction_of_peak, engine {p.get('engine', 'tf')}); batch 1: {p['fraction_of_peak']['1']:.0%}")
        if p.get("fraction_of_peak_tf"):
            print(f"  TF's path (build --engine tf)  batch 32: {p['images_per_s_tf']['32']:.0f} img/s = "
                  f"{p['fraction_of_peak_tf']['32']:.0%} of the peak (python_fraction_of_peak_tf_path); engine / TF "
                  f"paired by round: {p['engine_vs_tf']['32']:.2f}x at batch 32, {p['engine_vs_tf']['1']:.2f}x at "
                  f"batch 1; max |engine - TF| {p['engine_max_abs_diff_vs_tf']:.1e}; .tflite conversion "
                  f"{p['tflite_convert_s']:.1f} s")
        lay = p["layers"]
        print(f"  per layer kind, batch {lay['batch']}, each layer run alone (no cross-layer fusion; sum "
              f"{lay['sum_ms_per_image']:.2f} ms/image vs {p['ms_per_image_batch32']:.2f} ms/image for the whole model):")
        print(f"    {'kind':<26}{'layers':>7}{'time':>8}{'MACs':>8}{'GFLOP/s':>9}{'FLOP/byte':>11}{'GB/s':>7}")
        for k, v in sorted(lay["kinds"].items(), key=lambda kv: -kv[1]["time_share"]):
            print(f"    {k:<26}{v['layers']:>7}{v['time_share']:>8.0%}{v['mac_share']:>8.0%}"
                  f"{fmt(v['gflops']):>9}{v['flop_per_byte']:>11.2f}{v['gb_per_s']:>7.1f}")
        balance = p["matmul_gflops"] / p["memory_gbps"]
        kinds = lay["kinds"]
        low = [k for k, v in kinds.items() if v["flop_per_byte"] < balance and not k.startswith("Conv2D 1x1")]
        low_time = sum(kinds[k]["time_share"] for k in low)
        low_macs = sum(kinds[k]["mac_share"] for k in low)
        pw = kinds.get("Conv2D 1x1 (pointwise)", {})
        unfolded_ratio = next((v["batch32_vs_default"] for k, v in p["levers"].items() if k.startswith("before: not folded")), None)
        why = (f"{'why below 30%' if frac < 0.30 else 'why not higher'}: the machine balance is {balance:.1f} FLOP/byte "
               f"(matmul peak / copy bandwidth). {', '.join(low)} sit below it (ReLU6 is elementwise, 0 FLOP/byte; the "
               f"depthwise 3x3 convs do 9 multiply-adds per output, ~2 FLOP/byte): memory-bound, they take "
               f"{low_time:.0%} of the time for {low_macs:.0%} of the multiply-adds. The pointwise convs hold "
               f"{pw.get('mac_share', 0):.0%} of the multiply-adds but are small matmuls (8-256 input channels) that "
               f"run at {fmt(pw.get('gflops'), ' GFLOP/s')} alone, not the large-matmul rate. Batch-norm and padding "
               f"are already folded into the convs (pipeline/fold.py; the build extracts with the folded model"
               + (f", and the unfolded one runs at {unfolded_ratio:.2f}x its speed, a lever below" if unfolded_ratio else "")
               + "). Batch 1 adds per-call overhead on top.")
        print(textwrap.fill(why, 100, initial_indent="  ", subsequent_indent="    "))
        print_roofline(p)
        print("  levers (each in its own process, interleaved with the default; 'vs default' = batch-32 img/s ratio, "
              "same round):")
        print(f"    {'configuration':<46}{'b1 img/s':>9}{'b32 img/s':>10}{'of peak':>9}{'vs default':>11}")
        for k, v in p["levers"].items():
            print(f"    {k:<46}{fmt(v.get('images_per_s_batch1'), digits=0):>9}{fmt(v['images_per_s_batch32'], digits=0):>10}"
                  f"{v['fraction_of_peak_batch32']:>9.0%}{v['batch32_vs_default']:>10.2f}x"
                  + (f"  (compile {v['compile_s']:.1f}s)" if v.get("compile_s") else "")
                  + (f"  (features max |diff| {v['max_abs_diff']:.1e})" if v.get("max_abs_diff") is not None else ""))
        print(f"    batch size sweep (default): " + ", ".join(f"{k}: {v:.0%}" for k, v in p["fraction_of_peak"].items()))
        if p.get("engines"):
            print_engines(p["engines"])
        if p.get("xnnpack"):
            print(xnnpack_bench.report(p["xnnpack"]))
        print(f"  head training                  default recipe in the build: {fmt(b.get('head_training_s'), ' s', 2)}; "
              f"the browser's workload (manifest head, 20 epochs x {p['head_train_rows']} rows): "
              f"{p['head_train_20_epochs_ms']:.0f} ms")

    if b:
        print("\nBuilds (`tfjs-transfer build` subprocess, logos, wall time)")
        print(f"  cold (empty cache)    {b['cold_s']:.1f} s   views computed: {b['computed_views']['cold']}")
        print(f"  warm (no change)      {b['warm_s']:.1f} s   up to date detected: {b['warm_detected_up_to_date']}"
              f"   warm_vs_cold_build = {b['warm_vs_cold']:.1f}x")
        print(f"  --force, warm cache   {b['force_s']:.1f} s   views computed: {b['computed_views']['force']} "
              f"(cold/force {b['cold_vs_force']:.2f}x)")
        print(f"  one image added       {b['incremental_s']:.1f} s   views computed: {b['computed_views']['incremental']} "
              f"(cold/incremental {b['cold_vs_incremental']:.2f}x)")
        st = b["stages_s"]
        print("  stages (manifest timings, s): " + "; ".join(
            f"{k}: " + ", ".join(f"{s_.removesuffix('_s')} {fmt(v, digits=1)}" for s_, v in st[k].items()) for k in st))

    if q.get("logos"):
        qq = q["logos"]["quantizations"]
        print("\nConversion and quantization (tensorflowjs converter; logos site)")
        print(f"  {'':<10}{'backbone weights / all files':>30}{'head weights / all files':>28}{'convert s':>11}")
        for k in ("float32", "float16", "uint8"):
            e = qq[k]
            print(f"  {k:<10}{mb(e['backbone_weights_bytes']) + ' / ' + mb(e['backbone_bytes']):>30}"
                  f"{mb(e['head_weights_bytes']) + ' / ' + mb(e['head_bytes']):>28}"
                  f"{e['backbone_convert_s'] + e['head_convert_s']:>11.2f}")
        print(f"  uint8_size_ratio (float32 / uint8 backbone weight bytes) = {h['uint8_size_ratio']:.2f}x")
        if "build_quantize_uint8_check" in q:
            c = q["build_quantize_uint8_check"]
            print(f"  check: `build --quantize uint8` wrote backbone {mb(c['backbone_weights_bytes'])} / head "
                  f"{mb(c['head_weights_bytes'])} of weights (re-conversion: {mb(qq['uint8']['backbone_weights_bytes'])} / "
                  f"{mb(qq['uint8']['head_weights_bytes'])})")
        print(f"  accuracy on held-out images (1/5 of each class), dequantized TF.js weights:")
        print(f"  {'dataset':<13}{'held out':>9}{'float32 acc':>12}   {'quantization':<22}{'change':>11}"
              f"{'agrees w/ f32':>15}{'max |dp|':>10}{'site MB':>9}")
        for ds in ("logos", "sign_digits"):
            if ds not in q:
                continue
            e = q[ds]["quantizations"]
            first = True
            for k, v in e.items():
                if k == "float32":
                    continue
                lead = (f"  {ds:<13}{q[ds]['held_out']:>9}{e['float32']['accuracy']:>12.3f}   " if first
                        else " " * 39)
                first = False
                print(f"{lead}{k:<22}{v['accuracy_change_points']:>+7.1f} pts{v['agreement_with_float32']:>15.1%}"
                      f"{v['max_abs_prob_diff_vs_float32']:>10.4f}{(v['backbone_bytes'] + v['head_bytes']) / 1e6:>9.2f}")

    if br and "skipped" not in br:
        print(f"\nBrowser (headless Chromium, {br.get('site_images')} served logos; per-image figures on wasm over all "
              "images, on webgl/cpu over a subset)")
        names = [n for n in browser_bench.BACKENDS if isinstance(br.get(n), dict)]
        rows = [
            ("runs on", lambda r: r["info"]["backend"] + (f" ({int(r['info']['threads'])} thr)" if r["info"].get("threads") else "")),
            ("cross-origin isolated", lambda r: str(r["info"]["crossOriginIsolated"])),
            ("model load cold ms", lambda r: fmt(r["model_load_cold_ms"], digits=0)),
            ("model load warm (HTTP cache) ms", lambda r: fmt(r["model_load_warm_ms"], digits=0)),
            ("page ready since navigation, cold ms", lambda r: fmt(r.get("ready_at_cold_ms"), digits=0)),
            ("decode ms/image", lambda r: fmt(r["decode_ms_per_image"])),
            ("features 1-by-1 ms/image", lambda r: fmt(r["extract_ms_per_image"]["1"])),
            ("features batched(16) ms/image", lambda r: fmt(r["extract_ms_per_image"]["16"])),
            ("  batch 4 / 8 / 32 ms/image", lambda r: " / ".join(fmt(r["extract_ms_per_image"].get(b)) for b in ("4", "8", "32"))
             if "4" in r["extract_ms_per_image"] else "-"),
            ("backbone alone 32 / 16 ms/image", lambda r: " / ".join(fmt(r["backbone_only_ms_per_image"].get(b)) for b in ("32", "16"))
             if r.get("backbone_only_ms_per_image") else "-"),
            ("... in the TF.js worker", lambda r: " / ".join(fmt(r["backbone_only_worker_ms_per_image"].get(b))
             for b in ("32", "16")) if r.get("backbone_only_worker_ms_per_image") else "-"),
            ("batched speedup", lambda r: fmt(r["batched_speedup"], "x", 2)),
            ("page features incl. decode ms/image", lambda r: fmt(r["page_extract"]["ms_per_image"]) if r.get("page_extract") else "-"),
            ("  on the main thread (worker above)", lambda r: fmt(r["page_extract_main"]["ms_per_image"]) if r.get("page_extract_main") else "-"),
            ("longest task extract / train ms, main", lambda r: long_tasks(r, "mainThread")),
            ("  with the TF.js worker", lambda r: long_tasks(r, "worker")),
            ("  their extract / train ms, main", lambda r: long_tasks(r, "mainThread", "ms")),
            ("  with the TF.js worker", lambda r: long_tasks(r, "worker", "ms")),
            ("train 20 epochs ms (page loop)", lambda r: fmt(r["train_ms"], digits=0) if r.get("train_way", "").startswith("page") else "-"),
            ("  on the main thread (worker above)", lambda r: fmt(r["train_ms_main"], digits=0) if r.get("train_ms_main") else "-"),
            ("train 20 epochs ms (model.fit)", lambda r: fmt(r["train_fit_ms"], digits=0) + ("*" if r["train_epochs_run"] < 20 else "")),
            ("predict p50 / p90 ms (new file)", lambda r: f"{r['predict_file_ms']['p50']:.1f} / {r['predict_file_ms']['p90']:.1f}"),
            ("predict p50 / p90 ms (URL hook)", lambda r: f"{r['predict_page_ms']['p50']:.1f} / {r['predict_page_ms']['p90']:.1f}"),
            ("predict p50 ms (models only)", lambda r: fmt(r["predict_models_ms"]["p50"], digits=0)),
            ("  the page's way (models.js)", lambda r: fmt(r["predict_models_page_ms"]["p50"], digits=1)),
            ("page features 1 / 16 / 32 ms/image", lambda r: " / ".join(
                fmt(r["page_features_ms_per_image"][b]) for b in ("1", "16", "32")) if r.get("page_features_ms_per_image") else "-"),
            ("peak tensor MB", lambda r: f"{r['peak_tensor_bytes'] / 1e6:.0f}"),
            ("  of which models (page + bench)", lambda r: f"{r['peak_bytes']['modelsBytes'] / 1e6:.0f}"),
            ("  peak extracting 1 / 4 / 16 images", lambda r: " / ".join(
                mb0(r["peak_bytes"].get(k)) for k in ("extractOne", "extractBatch4", "extractBatch16"))),
            ("images measured", lambda r: str(r["n_images"])),
        ]
        print(f"  {'':<34}" + "".join(f"{n:>16}" for n in names))
        for label, f in rows:
            print(f"  {label:<34}" + "".join(f"{f(br[n]):>16}" for n in names))
        if any(br[n]["train_epochs_run"] < 20 for n in names):
            print("  * cpu trains fewer epochs and is scaled to 20 (each epoch is the same work)")
        w = br.get("wasm")
        if w:
            if w.get("page_ui"):
                u = w["page_ui"]
                print(f"  the page's own Train button (wasm): features {u['features_ms']:.0f} ms for the training set "
                      f"(fetch + canvas decode + batch 32), {u['epochs']} epochs {u['train_ms']:.0f} ms with the live curves")
            tb = br.get("train_button_long_tasks")
            if tb and tb["before"] and tb["after"]:
                longest = lambda rs: " / ".join(f"{x['longestTaskMs']:.0f}" for x in rs)  # noqa: E731
                print(f"  longest task, the page's Train button as a whole (fresh pages, A B B A): ?prepare=0 {longest(tb['before'])} ms, "
                      f"prepared in idle time {longest(tb['after'])} ms (load {' '.join(f'{x:.1f}' for x in tb['load'])})")
            if w.get("train_ms_by_head"):
                print("  20 epochs by head (wasm): " + ", ".join(f"{k} {v:.0f} ms" for k, v in w["train_ms_by_head"].items()))
            fb = w.get("unfolded_backbone")
            if fb:
                print("  before/after pipeline/fold.py (batch-norm + padding folded into the convs, shipped): " + "; ".join(
                          f"batch {b_}: {v['ms_per_image_unfolded']:.1f} -> {v['ms_per_image_site']:.1f} ms/image "
                          f"({v['site_speedup']:.2f}x)" for b_, v in fb.items())
                      + f"; features max |diff| {fb['16']['max_abs_diff']:.1e}")
            w_main = w.get("train_ms_main", w["train_ms"])  # the page's loop on the main thread, as the others run it
            if w.get("train_fit_ms") and w.get("train_way", "").startswith("page"):
                print(f"  before/after web/src/train.js (batches copied from typed arrays, one densestep.js step "
                      f"each, instead of model.fit's shuffle; main thread): 20 epochs {w['train_fit_ms']:.0f} -> "
                      f"{w_main:.0f} ms "
                      f"({w['train_fit_ms'] / w_main:.2f}x)")
            if w.get("page_extract_main"):
                lanes = f", {w['worker_lanes']} lanes" if w.get("worker_lanes") else ""
                print(f"  the page's TF.js worker (its default path{lanes}) vs its main thread, in the bench's page after its "
                      f"other phases (on the main thread), one pair a round (medians): extract "
                      f"{w['page_extract']['ms']:.0f} vs {w['page_extract_main']['ms']:.0f} ms, train 20 epochs "
                      f"{w['train_ms']:.0f} vs {w['train_ms_main']:.0f} ms (the worker's loop {w['train_loop_ms']:.0f}); "
                      f"the worker started in {fmt(w.get('worker_start_ms'), digits=0)} ms after the page was ready")
            wvm = br.get("worker_vs_main")
            if wvm:
                v = wvm["summary"]
                r_ = sorted(wvm["end_to_end_ratios"])
                lo, hi = wvm["end_to_end_median_95"]
                print(f"  the TF.js worker vs the main thread in fresh pages ({wvm['pages']} page(s), {wvm['pairs_per_page']} pairs "
                      f"each, A B B A): extract {v['worker']['extract_ms']:.0f} vs {v['main']['extract_ms']:.0f} ms, train "
                      f"{v['worker']['train_ms']:.0f} vs {v['main']['train_ms']:.0f} ms (medians); paired worker/main: extract "
                      f"{v['worker_over_main']['extract_ms']:.3f}x, train {v['worker_over_main']['train_ms']:.3f}x, end to end "
                      f"{v['worker_over_main']['end_to_end']:.3f}x, 95% interval of that median {lo:.3f}-{hi:.3f}x "
                      f"(pairs {r_[0]:.2f}-{r_[-1]:.2f}; load "
                      f"{', '.join(f'{x:.1f}' for x in v['load_avg'][::wvm['pairs_per_page']])})")
            tbw = br.get("train_button_worker_vs_main")
            if tbw:
                lo, hi = tbw["median_95"]
                r_ = sorted(tbw["ratios"])
                longest = lambda p: " / ".join(f"{x:.0f}" for x in tbw["longest_task_ms"][p])  # noqa: E731
                print(f"  the Train button as a whole (features, 20 epochs with the curves, the evaluation), fresh pages "
                      f"prepared, {len(tbw['pairs'])} pairs A B B A: worker {tbw['ms']['worker']:.0f} vs main thread "
                      f"{tbw['ms']['main']:.0f} ms (medians), paired worker/main {tbw['median']:.3f}x, 95% interval "
                      f"{lo:.3f}-{hi:.3f}x (pairs {r_[0]:.2f}-{r_[-1]:.2f}); longest task worker {longest('worker')} ms, "
                      f"main thread {longest('main')} ms")
            pool1 = br.get("wasm_pool1")
            if pool1:
                print(f"  before/after wasmThreads() in web/src/backend.js (pool of {int(pool1['info'].get('threads') or 0)} -> "
                      f"{int(w['info'].get('threads') or 0)} threads): features batched(16) "
                      f"{pool1['extract_ms_per_image']['16']:.1f} -> {w['extract_ms_per_image']['16']:.1f} ms/image, "
                      f"train {pool1['train_ms']:.0f} -> {w_main:.0f} ms")
            fp, unf = w.get("fuse_paired"), br.get("wasm_unfused")
            if fp:
                print("  before/after web/src/fused.js (the backbone as fused conv + bias + relu6 kernels), paired in one page: "
                      + "; ".join(f"batch {b_} {v['unfused_ms_per_image']:.1f} -> {v['fused_ms_per_image']:.1f} ms/image "
                                  f"({v['speedup']:.2f}x)" for b_, v in fp["batches"].items())
                      + f"; predict p50 (models) {fp['predict_models_p50']['unfused']:.1f} -> "
                      f"{fp['predict_models_p50']['fused']:.1f} ms; features max |diff| {fp['max_abs_diff']:.1e}")
            if unf and unf.get("page_features_ms_per_image") and w.get("page_features_ms_per_image"):
                print("    separate pages (wasm_unfused -> wasm): features " + "; ".join(
                    f"batch {b_} {unf['page_features_ms_per_image'][b_]:.1f} -> {w['page_features_ms_per_image'][b_]:.1f}"
                    for b_ in ("1", "16", "32")) + f" ms/image; predict p50 page hook {unf['predict_page_ms']['p50']:.1f} -> "
                    f"{w['predict_page_ms']['p50']:.1f} ms, models {unf['predict_models_page_ms']['p50']:.1f} -> "
                    f"{w['predict_models_page_ms']['p50']:.1f} ms")
                k = unf.get("kernels", {}).get("extractBatch16")
                if k:
                    print("    wasm_unfused kernels, extractBatch16: " + ", ".join(f"{x['name']} {x['share']:.0%}" for x in k["top"][:5]))
            plain = br.get("wasm_tfjs_kernels")
            if plain:
                print(f"  before/after web/src/wasm/kernels.js (transposed products, SIMD transposes, fused in-place Adam, shared clones, sparse products): 20 epochs "
                      f"{plain['train_ms']:.0f} -> {w_main:.0f} ms ({plain['train_ms'] / w_main:.2f}x)")
            for what in ("extractBatch16", "trainEpoch"):
                k = w.get("kernels", {}).get(what)
                if k:
                    print(f"  wasm kernels, {what}: " + ", ".join(f"{x['name']} {x['share']:.0%}" for x in k["top"][:5]))
        e2e = br.get("end_to_end")
        if e2e:
            o, t = e2e["ours"], e2e["tutorial"]
            om = e2e.get("ours_main_thread") or {"steps_ms": {}, "total_ms": float("nan")}
            print(f"  end to end ({o['images']} images: load, decode, extract, train 20 epochs, predict one):")
            print(f"    {'step':<22}{'ours: wasm, the page (' + str(o.get('path', 'main')) + ')':>32}"
                  f"{'main thread':>16}{'tutorial: ' + t['backend'] + ', 1 by 1':>26}")
            steps = list(dict.fromkeys([*o["steps_ms"], *t["steps_ms"]]))
            steps.sort(key=lambda k: ["load_models", "decode_images", "extract_features", "decode_and_extract",
                                      "train_head", "predict_one"].index(k))
            cell = lambda d, k, w_: f"{d[k]:>{w_}.0f} ms" if k in d else f"{'-':>{w_ + 3}}"
            for step in steps:
                print(f"    {step:<22}{cell(o['steps_ms'], step, 29)}{cell(om['steps_ms'], step, 13)}{cell(t['steps_ms'], step, 23)}")
            print(f"    {'total':<22}{o['total_ms']:>29.0f} ms{om['total_ms']:>13.0f} ms{t['total_ms']:>23.0f} ms")
            if e2e.get("rounds"):
                ot = [x["ours_ms"] for x in e2e["rounds"]]
                tt = [x["tutorial_ms"] for x in e2e["rounds"]]
                print(f"    per round, ours: " + ", ".join(f"{x:.0f}" for x in ot) + " ms; tutorial: "
                      + ", ".join(f"{x:.0f}" for x in tt) + f" ms (tutorial spread {min(tt) / 1000:.1f}-{max(tt) / 1000:.1f} s, "
                      f"ours {min(ot) / 1000:.2f}-{max(ot) / 1000:.2f} s)")
            print(f"    browser_speedup_vs_tutorial = {e2e['speedup']:.2f}x (rounds: "
                  + ", ".join(f"{x:.2f}" for x in e2e["speedups"]) + f"); after it, '{o['dominant_step']}' dominates "
                  f"({o['dominant_fraction']:.0%} of ours); tutorial's largest: '{t['dominant_step']}' ({t['dominant_fraction']:.0%})")
            if e2e.get("speedup_main_thread") is not None:
                print(f"    browser_speedup_vs_tutorial_main_thread = {e2e['speedup_main_thread']:.2f}x (rounds: "
                      + ", ".join(f"{x:.2f}" for x in e2e["speedups_main_thread"]) + "): ours on the page's main thread")
            if e2e.get("speedup_vs_tutorial_own_head"):
                print(f"    stricter: the tutorial training its own smaller head (flatten -> dense 10) on {t['backend']}: "
                      f"{e2e['speedup_vs_tutorial_own_head']:.2f}x")
            ifs = []
            if w and w.get("train_ms_by_head"):
                for head_name, ms in w["train_ms_by_head"].items():
                    if head_name != "manifest_head":
                        ifs.append(f"{head_name} head {o['total_ms'] - o['steps_ms']['train_head'] + ms:.0f} ms")
            if ifs:
                print("    what-if for ours, from the levers measured above: " + "; ".join(ifs))
            if t["images_measured"] < t["images"]:
                print(f"    (tutorial per-image steps measured on {t['images_measured']} images, scaled to {t['images']})")

    cam = res.get("webcam") or {}
    if cam.get("worker"):
        print(f"\nLive webcam (bench/webcam.py: Chromium's fake camera playing a {cam['camera_fps']} fps clip, live "
              "prediction on; per round, alternated)")
        for variant in ("worker", "main_thread"):
            v = cam.get(variant)
            if v:
                per = ", ".join(f"{r['predictions_per_s']:.1f}" for r in v["rounds"])
                print(f"  {variant:<12} {v['predictions_per_s']:.1f} predictions/s (rounds: {per}), the video presenting "
                      f"{v['video_fps']:.1f} fps, a prediction p50 {fmt(v['prediction_ms_p50'], digits=1)} ms")

    if s:
        print("\nServing (bench/serve_load.run_load, waitress subprocess, 32 keep-alive clients, "
              f"{s['compress_on']['config']['seconds']} s each)")
        for mode in ("compress_on", "compress_off"):
            e = s[mode]
            print(f"  {mode:<13} {e['requests_per_s']:.0f} req/s, p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms, "
                  f"{e['mb_per_s']:.0f} MB/s, errors {e['errors']}, server CPU {e['server_cpu_ms_per_request']:.2f} ms/request")

    print("\nHeadline")
    for k in ("browser_speedup_vs_tutorial", "browser_speedup_vs_tutorial_main_thread", "browser_vs_python_per_image",
              "browser_vs_python_per_image_main_thread", "browser_vs_python_per_image_incl_preprocess",
              "python_fraction_of_peak", "warm_vs_cold_build", "uint8_size_ratio", "predict_p50_ms_wasm",
              "predict_url_p50_ms_wasm", "webcam_predictions_per_s", "webcam_predictions_per_s_min",
              "webcam_predictions_per_s_main_thread", "browser_worker_over_main_thread_end_to_end",
              "browser_worker_over_main_thread_train_button", "train_button_longest_task_ms_worker"):
        v = h.get(k)
        print(f"  {k:<46}{fmt(v, digits=3)}")
    print("  (browser_vs_python_per_image: both backbones on preprocessed pixels at batch 32, the page's in its TF.js worker "
          "(or its lanes) as it extracts by default, _main_thread on its main thread; _incl_preprocess: "
          "the page's batch-32 features with fromPixels + resize + normalise over Python's batch 32; "
          "webcam_*: live predictions a second from a 30 fps fake camera, the worker's median and worst round, "
          "and the main thread's median; browser_worker_over_main_thread_end_to_end: the TF.js worker's extract + train "
          "over the main thread's, the median of pairs in fresh pages; _train_button: the same for the Train button as a "
          "whole, curves and evaluation included; train_button_longest_task_ms_worker: its longest main-thread task "
          "with the worker, the worst of the pairs)")
    print()


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=None, help="rounds per measurement (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a fast smoke run: one round, fewer images")
    ap.add_argument("--json", type=Path, default=ROOT / "bench-results.json")
    ap.add_argument("--skip", nargs="*", default=[], choices=PHASES)
    ap.add_argument("--backends", nargs="*", default=None, choices=list(browser_bench.BACKENDS),
                    help="the browser phase's variants (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--table", type=Path, metavar="JSON", help="print the table of an earlier run's JSON and stop")
    args = ap.parse_args(argv)
    if args.table:
        saved = json.loads(args.table.read_text())
        print_table({**saved["details"], "headline": {k: v for k, v in saved.items() if k != "details"}})
        return 0
    repeat = args.repeat or (1 if args.quick else 3)
    for need in (MOBILENET_H5, BRAND_TRAIN, SIGN_DIGITS):
        if not need.exists():
            print(f"error: {need} not found (set TFJS_TRANSFER_SHARED to the shared data folder)", file=sys.stderr)
            return 2
    if not (ROOT / "web" / "dist" / "index.html").is_file():
        print("error: web/dist is not built (make web)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="tfjs-transfer-bench-"))
    log(f"bench: temporary folder {tmp}; repeat {repeat}{', quick' if args.quick else ''}")
    res = {"config": {"repeat": repeat, "quick": args.quick, "cpu": cpu_model(), "cpus": os.cpu_count(),
                      "python": platform.python_version(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")},
           "machine": {}}
    t0 = time.perf_counter()
    site = None
    try:
        for phase in PHASES:
            if phase in args.skip:
                continue
            if phase in ("browser", "first_visit", "webcam", "serve") and site is None:
                # the build phase was skipped: build one site for the browser and the server
                site = tmp / "site-logos"
                log("bench: building the logos site")
                py.run_build(copy_logos(tmp / "data-logos"), str(MOBILENET_H5), site, tmp / "cache-logos")
            before, t = machine_load(), time.perf_counter()
            log(f"bench: {phase} (load {before['loadavg_1m']})")
            if phase == "build":
                res["build"], site = phase_build(tmp, repeat)
            elif phase == "python":
                res["python"] = phase_python(repeat, args.quick, site)
            elif phase == "quant":
                res["quant"] = phase_quant(tmp, args.quick, site)
            elif phase == "browser":
                res["browser"] = phase_browser(site, repeat, args.quick, args.backends)
            elif phase == "first_visit":
                res["first_visit"] = phase_first_visit(site, repeat)
            elif phase == "webcam":
                res["webcam"] = phase_webcam(site, repeat, args.quick)
            elif phase == "serve":
                res["serve"] = phase_serve(site, repeat, args.quick)
            res["machine"][phase] = {"before": before, "after": machine_load(),
                                     "seconds": round(time.perf_counter() - t, 1)}
    finally:
        res["config"]["seconds"] = round(time.perf_counter() - t0, 1)
        res["headline"] = headline(res)
        out = {**res["headline"], "details": {k: v for k, v in res.items() if k != "headline"}}
        args.json.write_text(json.dumps(out, indent=1, default=float) + "\n")
        if args.keep:
            log(f"bench: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_table(res)
    if res.get("first_visit") and "skipped" not in res["first_visit"]:
        first_visit.print_report(res["first_visit"])
    log(f"wrote {args.json} ({res['config']['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

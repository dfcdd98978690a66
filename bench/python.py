"""The Python side of `make bench`: features, the backbone's FLOPs against the machine's
matmul peak, builds (cold / warm / forced / incremental), conversion, quantization.

TensorFlow work runs in subprocesses of this file (`python bench/python.py worker ...`):
thread settings only apply before TF starts, the orchestrating process stays small, and
each measurement starts from the same state. Each worker prints one JSON line.

    python bench/python.py worker --weights H5 --data DIR [--intra N --inter N] [--extras]
    python bench/python.py quant --site SITE --test-list FILE
    python bench/python.py engines --weights H5 --data DIR   (bench/engines.py)
    python bench/python.py xnnpack --weights H5 --data DIR   (bench/xnnpack.py)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MATMUL_N = 2048


# ---------------------------------------------------------------- running workers


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TFDF_DISABLE_WELCOME_MESSAGE="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


def run_worker(args: list[str], env: dict | None = None, timeout: float = 1800) -> dict:
    """Run `python bench/python.py ARGS` and return the JSON it printed last."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True,
                          env=_env(env), timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {args[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def cli() -> list[str]:
    exe = Path(sys.executable).parent / "tfjs-transfer"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tfjs_transfer.cli"]


def run_build(data: Path, weights: str, out: Path, cache: Path, *extra: str) -> dict:
    """`tfjs-transfer build` as a subprocess: wall time, what it computed, its manifest."""
    cmd = [*cli(), "build", "--data", str(data), "--weights", weights, "--out", str(out), "--cache", str(cache),
           *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=1800)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"build failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    m = re.search(r"features: (\d+) computed, (\d+) from cache", proc.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    return {"wall_s": wall, "up_to_date": "is up to date" in proc.stdout,
            "computed": int(m.group(1)) if m else 0, "cached": int(m.group(2)) if m else 0,
            "timings": manifest.get("timings", {}), "manifest": manifest}


# ---------------------------------------------------------------- the worker (inside TF)


def layer_macs(layer) -> tuple[str | None, int]:
    """(kind, multiply-adds per image) of a Conv2D, DepthwiseConv2D or Dense layer, else (None, 0)."""
    import tf_keras as keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        _, h, w, c = layer.output_shape
        kh, kw = layer.kernel_size
        return "depthwise", h * w * c * kh * kw  # c = c_in * depth_multiplier
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, c_out = layer.output_shape
        kh, kw = layer.kernel_size
        c_in = layer.input_shape[-1] // getattr(layer, "groups", 1)
        return ("conv_pointwise" if (kh, kw) == (1, 1) else "conv_full"), h * w * c_out * kh * kw * c_in
    if isinstance(layer, keras.layers.Dense):
        return "dense", layer.input_shape[-1] * layer.units
    return None, 0


def count_macs(model) -> dict:
    """Multiply-adds per image of the Conv2D, DepthwiseConv2D and Dense layers, from their shapes."""
    by_kind = {"conv_full": 0, "conv_pointwise": 0, "depthwise": 0, "dense": 0}
    for layer in model.layers:
        kind, macs = layer_macs(layer)
        if kind:
            by_kind[kind] += macs
    return {"total": sum(by_kind.values()), "by_kind": by_kind}


def memory_gbps(mb: int = 128, reps: int = 5, threads: int = 1) -> float:
    """Streaming copy bandwidth (bytes read + written per second) of one float32 array of `mb`
    MB, split over `threads` threads (NumPy's copy releases the GIL, so 2 threads use both
    cores). 128 MB is past the caches (DRAM); a few MB stays in the shared L3."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    a = np.ones(mb * 2 ** 20 // 4, np.float32)
    b = np.empty_like(a)
    parts = [(b[len(b) * i // threads:len(b) * (i + 1) // threads],
              a[len(a) * i // threads:len(a) * (i + 1) // threads]) for i in range(threads)]
    if threads == 1:
        return 2 * a.nbytes / _timeit(lambda: np.copyto(b, a), reps) / 1e9
    with ThreadPoolExecutor(threads) as pool:
        go = lambda: list(pool.map(lambda pq: np.copyto(*pq), parts))  # noqa: E731
        return 2 * a.nbytes / _timeit(go, reps) / 1e9


def bandwidths(threads: int) -> dict:
    """Copy bandwidth in GB/s: DRAM-sized (128 MB) and L3-sized (16 MB: MobileNet 0.25's
    activations at batch 32 are 0.8-26 MB), on one thread and on `threads`."""
    out = {}
    for label, mb, reps in (("dram", 128, 5), ("l3", 16, 30)):
        out[f"{label}_1thread"] = memory_gbps(mb, reps, 1)
        if threads > 1:
            out[f"{label}_{threads}threads"] = memory_gbps(mb, reps, threads)
    return out


def _timeit(fn, reps: int) -> float:
    """Median seconds of `reps` calls (after one untimed call)."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_gflops(n: int = MATMUL_N, reps: int = 5) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    mm = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    return 2 * n ** 3 / _timeit(lambda: mm(a, b).numpy(), reps) / 1e9


def _throughput(call, x, batch: int, reps: int) -> float:
    """Images/s of running `call` over x in batches of `batch`."""
    import numpy as np

    def go():
        for s in range(0, len(x), batch):
            np.asarray(call(x[s:s + batch]))
    return len(x) / _timeit(go, reps)


def layer_breakdown(model, x, reps: int = 3) -> dict:
    """Each layer alone on its real input at this batch (MobileNet v1 is a chain), summed by
    kind: time, multiply-adds, bytes in + out, and arithmetic intensity (FLOP per byte)."""
    import tensorflow as tf

    out: dict[str, dict] = {}
    h = tf.constant(x)
    for layer in model.layers[1:]:
        fn = tf.function(lambda t, layer=layer: layer(t, training=False))
        seconds = _timeit(lambda: fn(h), reps)  # CPU eager calls return when the result is computed
        kind = type(layer).__name__
        if kind == "Conv2D":
            kind = "Conv2D 1x1 (pointwise)" if tuple(layer.kernel_size) == (1, 1) else "Conv2D 3x3 (first)"
        e = out.setdefault(kind, {"ms": 0.0, "macs": 0, "layers": 0, "bytes": 0})
        e["ms"] += seconds * 1000
        e["macs"] += layer_macs(layer)[1] * len(x)
        e["layers"] += 1
        nxt = fn(h)
        e["bytes"] += (int(h.shape.num_elements()) + int(nxt.shape.num_elements())
                       + sum(int(w.shape.num_elements()) for w in layer.weights)) * 4
        h = nxt
    total_ms = sum(e["ms"] for e in out.values())
    total_macs = sum(e["macs"] for e in out.values())
    for e in out.values():
        e["time_share"] = e["ms"] / total_ms
        e["mac_share"] = e["macs"] / total_macs if total_macs else 0
        e["gflops"] = 2 * e["macs"] / (e["ms"] / 1000) / 1e9 if e["macs"] else None
        e["flop_per_byte"] = 2 * e["macs"] / e["bytes"]
        e["gb_per_s"] = e["bytes"] / (e["ms"] / 1000) / 1e9
        e["ms_per_image"] = e["ms"] / len(x)
    return {"batch": len(x), "kinds": out, "sum_ms_per_image": total_ms / len(x)}


def conv_groups(model) -> list[list]:
    """The model's layers after its input, each conv with the layers up to the next one (its
    bias, ReLU6, padding): MobileNet v1 as the chain of units a roofline measures."""
    groups: list[list] = []
    for layer in model.layers[1:]:
        if layer_macs(layer)[0] or not groups:
            groups.append([layer])
        else:
            groups[-1].append(layer)
    return groups


def layer_roofline(model, x, peak_gflops: float, gbps: float, reps: int = 5) -> dict:
    """The roofline of each layer at this batch. A layer is a conv (Conv2D or DepthwiseConv2D,
    bias folded in) with the activation after it, run as one traced function on its real
    input (MobileNet v1 is a chain). Its floor is max(FLOPs / matmul peak, bytes / copy
    bandwidth), with bytes the least it must move in float32: its input, its output and its
    weights, once each. Kinds below the machine balance (peak / bandwidth) are memory-bound."""
    import tensorflow as tf

    groups = conv_groups(model)
    rows = []
    h = tf.constant(x)
    for group in groups:
        def run(t, group=group):
            for layer in group:
                t = layer(t, training=False)
            return t
        fn = tf.function(run)
        seconds = _timeit(lambda: fn(h).numpy(), reps)
        nxt = fn(h)
        first = group[0]
        flops = 2 * layer_macs(first)[1] * len(x)
        nbytes = 4 * (int(h.shape.num_elements()) + int(nxt.shape.num_elements())
                      + sum(int(w.shape.num_elements()) for layer in group for w in layer.weights))
        compute_s, memory_s = flops / (peak_gflops * 1e9), nbytes / (gbps * 1e9)
        kernel = getattr(first, "kernel_size", (0, 0))
        rows.append({"name": first.name, "kind": _kind(first), "ms": seconds * 1000, "mflop": flops / 1e6,
                     "mbytes": nbytes / 1e6, "flop_per_byte": flops / nbytes,
                     "in": list(h.shape[1:]), "out": list(nxt.shape[1:]), "kernel": list(kernel),
                     "bound": "memory" if memory_s > compute_s else "compute",
                     "floor_ms": max(compute_s, memory_s) * 1000,
                     "gflops": flops / seconds / 1e9, "gb_per_s": nbytes / seconds / 1e9})
        rows[-1]["vs_floor"] = rows[-1]["ms"] / rows[-1]["floor_ms"]
        h = nxt
    total_ms = sum(r["ms"] for r in rows)
    floor_ms = sum(r["floor_ms"] for r in rows)
    flops = sum(r["mflop"] for r in rows) * 1e6
    mem = [r for r in rows if r["bound"] == "memory"]
    out = {"batch": len(x), "peak_gflops": peak_gflops, "gbps": gbps, "balance": peak_gflops / gbps,
           "layers": rows, "sum_ms": total_ms, "floor_ms": floor_ms,
           "memory_bound_layers": len(mem), "memory_bound_time_share": sum(r["ms"] for r in mem) / total_ms,
           "memory_bound_floor_share": sum(r["floor_ms"] for r in mem) / floor_ms,
           "memory_bound_flop_share": sum(r["mflop"] for r in mem) * 1e6 / flops,
           # the best fraction of peak a perfect kernel per layer could reach, and what the layers reach
           "best_fraction_of_peak": flops / (floor_ms / 1000) / 1e9 / peak_gflops,
           "measured_fraction_of_peak": flops / (total_ms / 1000) / 1e9 / peak_gflops}
    kinds: dict[str, dict] = {}
    for r in rows:
        k = kinds.setdefault(r["kind"], {"layers": 0, "ms": 0.0, "floor_ms": 0.0, "mflop": 0.0, "mbytes": 0.0})
        k["layers"] += 1
        for f in ("ms", "floor_ms", "mflop", "mbytes"):
            k[f] += r[f]
    for k in kinds.values():
        k["time_share"] = k["ms"] / total_ms
        k["vs_floor"] = k["ms"] / k["floor_ms"]
        k["gflops"] = k["mflop"] / k["ms"]
        k["flop_per_byte"] = k["mflop"] / k["mbytes"]
    out["kinds"] = kinds
    return out


def _kind(layer) -> str:
    kind = layer_macs(layer)[0]
    return {"conv_full": "Conv2D 3x3 (first)", "conv_pointwise": "Conv2D 1x1 (pointwise)",
            "depthwise": "DepthwiseConv2D 3x3"}.get(kind, type(layer).__name__)


def call_variant(model, call: str):
    """Other ways to run the folded backbone on a batch, levers against the pipeline's
    inference.predict_batches (the batch's two halves as independent branches of one
    traced Keras call): `whole` (one Keras call per batch), `frozen` (the same two halves,
    traced and frozen: weights become constants, which oneDNN may reorder once and keep)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    whole = tf.function(lambda t: model(t, training=False))
    if call == "whole":
        return lambda b: whole(tf.constant(b)).numpy()

    def halves(t):
        half = tf.shape(t)[0] // 2
        return tf.concat([model(t[:half], training=False), model(t[half:], training=False)], 0)

    # a batch of 1 runs whole, as in the pipeline (an empty half fails in oneDNN's fused depthwise)
    one, two = (convert_variables_to_constants_v2(tf.function(f).get_concrete_function(spec)) for f in (whole, halves))
    return lambda b: (two if len(b) >= 2 else one)(tf.constant(b))[0].numpy()


def worker(args) -> dict:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    import numpy as np

    from tfjs_transfer import backbones, dataset, heads, inference, preprocess
    from tfjs_transfer.build import quiet_tensorflow

    quiet_tensorflow()
    out = {"intra": args.intra, "inter": args.inter, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
           "tf": tf.__version__, "cpus": os.cpu_count()}
    t = time.perf_counter()
    bb = backbones.load_backbone("mobilenet_v1_0.25", args.weights)
    out["backbone_load_s"] = time.perf_counter() - t
    ds = dataset.scan(Path(args.data))
    paths = [s.path for s in ds.samples][: args.images]
    prep = bb.preprocessing

    # decode + resize, per image
    decode, resize = [], []
    resized = []
    for p in paths:
        t0 = time.perf_counter()
        rgb = dataset.load_rgb(p)
        t1 = time.perf_counter()
        resized.append(preprocess.resize(rgb, prep))
        resize.append(time.perf_counter() - t1)
        decode.append(t1 - t0)
    out["decode_ms_per_image"] = statistics.median(decode) * 1000
    out["resize_ms_per_image"] = statistics.median(resize) * 1000
    out["decode_resize_ms_per_image"] = out["decode_ms_per_image"] + out["resize_ms_per_image"]
    pixels = preprocess.normalize(np.stack(resized), prep)
    x = np.concatenate([pixels] * (-(-args.throughput_images // len(pixels))))[: args.throughput_images]

    macs = count_macs(bb.model)
    out["macs_per_image"] = macs["total"]
    out["macs_by_kind"] = macs["by_kind"]
    out["params"] = int(bb.model.count_params())
    out["feature_shape"] = list(bb.feature_shape)

    # the model `build` extracts features with: the backbone as served, batch-norm and padding
    # folded into the convs (pipeline/fold.py), unless --no-fold
    model, report = bb.model, None
    if not args.no_fold:
        from tfjs_transfer import fold

        model, report = fold.fold_batch_norms(bb.model, pixels[:8])
    plain = lambda b: inference.predict_batches(model, b, len(b))  # noqa: E731  the pipeline's own path
    if args.call != "pipeline":
        variant = call_variant(model, args.call)
        out["call"] = args.call
        out["call_max_abs_diff"] = float(np.abs(variant(x[:32]) - plain(x[:32])).max())
        plain = variant
    tf_path = plain  # TF's path (predict_batches), timed beside the engine the build runs
    if args.engine == "tflite" and args.call == "pipeline":
        from tfjs_transfer import tflite_engine

        t = time.perf_counter()
        runner = tflite_engine.Runner(tflite_engine.convert(model))
        out["tflite_convert_s"] = time.perf_counter() - t
        plain = lambda b: runner.predict(b, len(b))  # noqa: E731  what features.extract runs (engine tflite)
        out["engine_max_abs_diff_vs_tf"] = float(np.abs(plain(x[:32]) - tf_path(x[:32])).max())
    out["engine"] = args.engine if args.call == "pipeline" else "tf"
    xla = tf.function(lambda b: model(b, training=False), jit_compile=True)
    batches = [int(b) for b in args.batches.split(",")]
    xla_batches = [int(b) for b in args.xla_batches.split(",") if b]
    for b in xla_batches:  # compile outside the timing (one XLA program per input shape)
        t = time.perf_counter()
        xla(tf.constant(x[:b])).numpy()
        out.setdefault("xla_compile_s", {})[str(b)] = time.perf_counter() - t
    ips, ips_xla, peaks = {str(b): [] for b in batches}, {str(b): [] for b in xla_batches}, []
    ips_tf = {str(b): [] for b in batches}
    for _ in range(args.reps):
        peaks.append(matmul_gflops())
        for b in batches:
            ips[str(b)].append(_throughput(plain, x, b, 1))
            if plain is not tf_path:
                ips_tf[str(b)].append(_throughput(tf_path, x, b, 1))
        for b in xla_batches:
            ips_xla[str(b)].append(_throughput(lambda v: xla(tf.constant(v)), x, b, 1))
    out["matmul_gflops"] = statistics.median(peaks)
    out["memory_gbps"] = memory_gbps()  # one thread, 128 MB: the figure earlier rounds printed
    out["bandwidths_gbps"] = bandwidths(max(1, args.intra or os.cpu_count() or 1))
    out["matmul_gflops_runs"] = peaks
    out["images_per_s"] = {b: statistics.median(v) for b, v in ips.items()}
    out["images_per_s_xla"] = {b: statistics.median(v) for b, v in ips_xla.items()}
    flop = 2 * macs["total"]
    out["achieved_gflops"] = {b: v * flop / 1e9 for b, v in out["images_per_s"].items()}
    out["fraction_of_peak"] = {b: v / out["matmul_gflops"] for b, v in out["achieved_gflops"].items()}
    out["fraction_of_peak_xla"] = {b: v * flop / 1e9 / out["matmul_gflops"] for b, v in out["images_per_s_xla"].items()}
    if plain is not tf_path:  # the TF path's figures, named, beside the engine's
        out["images_per_s_tf"] = {b: statistics.median(v) for b, v in ips_tf.items()}
        out["fraction_of_peak_tf"] = {b: v * flop / 1e9 / out["matmul_gflops"] for b, v in out["images_per_s_tf"].items()}
        out["engine_vs_tf"] = {b: statistics.median(e / t for e, t in zip(ips[b], ips_tf[b])) for b in ips}

    if args.unfolded and report is not None:
        # before/after pipeline/fold.py: the backbone as trained, paired with the folded one
        out["folded"] = {"batch_norms": report.batch_norms, "paddings": report.paddings,
                         "layers": len(model.layers), "original_layers": len(bb.model.layers),
                         "max_abs_diff": report.max_abs_diff}
        unfolded = lambda b: inference.predict_batches(bb.model, b, len(b))  # noqa: E731
        got = {"1": [], "32": [], "folded32": []}
        for _ in range(max(3, args.reps)):
            got["folded32"].append(_throughput(tf_path, x, 32, 1))
            got["32"].append(_throughput(unfolded, x, 32, 1))
            got["1"].append(_throughput(unfolded, x, 1, 1))
        out["folded"]["unfolded_images_per_s"] = {"1": statistics.median(got["1"]), "32": statistics.median(got["32"])}
        out["folded"]["unfolded_vs_folded_batch32"] = statistics.median(
            a / b for a, b in zip(got["32"], got["folded32"]))
        out["folded"]["unfolded_fraction_of_peak"] = {b: v * flop / 1e9 / out["matmul_gflops"]
                                                      for b, v in out["folded"]["unfolded_images_per_s"].items()}
        if args.unfolded_out:
            from tfjs_transfer import convert

            info = convert.to_tfjs(bb.model, Path(args.unfolded_out))
            out["folded"]["unfolded_tfjs_bytes"] = info["bytes"]

    if args.extras:
        out["layers"] = layer_breakdown(model, pixels[:32])
        # the highest peak and copy bandwidth measured in this process (the lowest floor): the
        # peak again right before the layers, as the load of a shared machine moves
        peak = max(out["matmul_gflops"], matmul_gflops())
        out["roofline"] = layer_roofline(model, x[:32], peak, max(out["bandwidths_gbps"].values()))
        # the browser's training workload in Python: manifest default head, 20 epochs, all images, batch 32
        import tf_keras as keras

        feats = inference.predict_batches(model, pixels, 32)
        y = np.array([ds.labels.index(s.label) for s in ds.samples][: len(feats)])
        recipe = heads.RECIPES["default"]
        head = heads.build_head(heads.head_layers(recipe, len(ds.labels)), feats.shape[1:], 0)
        head.compile(keras.optimizers.Adam(recipe.learning_rate), "categorical_crossentropy")
        yc = keras.utils.to_categorical(y, len(ds.labels))
        t = time.perf_counter()
        head.fit(feats, yc, batch_size=32, epochs=20, shuffle=True, verbose=0)
        out["head_train_20_epochs_ms"] = (time.perf_counter() - t) * 1000
        out["head_train_rows"] = int(len(feats))
    return out


# ---------------------------------------------------------------- quantization worker


def quant(args) -> dict:
    """Re-convert a float32 site's Keras models at each quantization; score held-out images
    with the dequantized TF.js weights (Predictor(source="tfjs")) against float32."""
    import numpy as np

    from tfjs_transfer import convert
    from tfjs_transfer.build import quiet_tensorflow
    from tfjs_transfer.predict import Predictor

    quiet_tensorflow()
    import tf_keras as keras

    site = Path(args.site)
    tests = json.loads(Path(args.test_list).read_text())  # [[path, label], ...]
    paths = [p for p, _ in tests]
    results = {}
    site_manifest = json.loads((site / "manifest.json").read_text())  # the Keras copies live beside the site
    backbone = keras.models.load_model(site / site_manifest["backbone"]["keras_path"], compile=False)  # folded
    head = keras.models.load_model(site / site_manifest["head"]["keras_path"], compile=False)
    # uint8 is served from the unfolded backbone with equalized channel ranges, as `build
    # --quantize uint8` does (per-tensor uint8 of folded kernels would lose most accuracy)
    from tfjs_transfer import backbones, quantize

    manifest = json.loads((site / "manifest.json").read_text())
    unfolded = backbones.load_backbone(manifest["backbone"]["name"], args.weights, manifest["backbone"]["cut_layer"]).model
    for_uint8, _ = quantize.equalize(unfolded)
    reference = None
    # (name, backbone quantization, head quantization): both quantized as `build --quantize`
    # does, then each model alone to see which one costs the accuracy
    variants = [("float32", None, None), ("float16", "float16", "float16"), ("uint8", "uint8", "uint8"),
                ("uint8 backbone only", "uint8", None), ("uint8 head only", None, "uint8")]
    for q, q_backbone, q_head in variants:
        copy = Path(args.work) / q.replace(" ", "-")
        shutil.rmtree(copy, ignore_errors=True)
        (copy / "models").mkdir(parents=True)
        shutil.copy2(site / "manifest.json", copy / "manifest.json")
        entry = {}
        for name, model, qm in (("backbone", for_uint8 if q_backbone == "uint8" else backbone, q_backbone),
                                ("head", head, q_head)):
            t = time.perf_counter()
            info = convert.to_tfjs(model, copy / "models" / name, qm)
            entry[f"{name}_convert_s"] = time.perf_counter() - t
            entry[f"{name}_bytes"] = info["bytes"]
            entry[f"{name}_weights_bytes"] = info["weights_bytes"]
        pred = Predictor(copy, source="tfjs")
        probs = pred.probabilities(paths)
        labels = np.array([pred.labels.index(l) for _, l in tests])
        entry["accuracy"] = float(np.mean(probs.argmax(1) == labels))
        if reference is None:
            reference = probs
            keras_probs = Predictor(site).probabilities(paths)
            entry["max_abs_prob_diff_vs_keras"] = float(np.abs(probs - keras_probs).max())
        entry["agreement_with_float32"] = float(np.mean(probs.argmax(1) == reference.argmax(1)))
        entry["max_abs_prob_diff_vs_float32"] = float(np.abs(probs - reference).max())
        results[q] = entry
    for q, e in results.items():
        e["accuracy_change_points"] = (e["accuracy"] - results["float32"]["accuracy"]) * 100
    return {"held_out": len(paths), "quantizations": results}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--weights", required=True)
    w.add_argument("--data", required=True)
    w.add_argument("--intra", type=int, default=0)
    w.add_argument("--inter", type=int, default=0)
    w.add_argument("--images", type=int, default=90, help="images decoded (and extracted by the extras)")
    w.add_argument("--throughput-images", type=int, default=128, help="images per throughput pass")
    w.add_argument("--batches", default="1,32")
    w.add_argument("--xla-batches", default="32")
    w.add_argument("--reps", type=int, default=3)
    w.add_argument("--call", choices=("pipeline", "whole", "frozen"), default="pipeline",
                   help="how a batch runs (call_variant); pipeline = inference.predict_batches")
    w.add_argument("--engine", choices=("tflite", "tf"), default="tflite",
                   help="what runs the backbone (build --engine); tflite also times TF's path beside it")
    w.add_argument("--extras", action="store_true", help="layer breakdown and head training too")
    w.add_argument("--no-fold", action="store_true", help="time the backbone as trained (build --no-fold)")
    w.add_argument("--unfolded", action="store_true", help="also time the backbone as trained, paired with the "
                   "folded one the build uses (the before/after of pipeline/fold.py)")
    w.add_argument("--unfolded-out", help="with --unfolded: write the backbone as trained (not folded, as the site "
                   "shipped it before pipeline/fold.py) as a TF.js model here, for the browser's before/after")
    q = sub.add_parser("quant")
    q.add_argument("--weights", required=True, help="the backbone weights the site was built from")
    q.add_argument("--site", required=True)
    q.add_argument("--test-list", required=True)
    q.add_argument("--work", required=True)
    from bench import engines, xnnpack

    engines.add_arguments(sub.add_parser("engines", help="other native engines vs the pipeline (bench/engines.py)"))
    xnnpack.add_arguments(sub.add_parser("xnnpack", help="XNNPACK variants vs the pipeline (bench/xnnpack.py)"))
    args = p.parse_args(argv)
    result = {"worker": worker, "quant": quant, "engines": engines.engines, "xnnpack": xnnpack.xnnpack}[args.cmd](args)
    print(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

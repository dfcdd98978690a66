"""Ways to get more from XNNPACK on the machine's cores, running the build's folded backbone,
against the pipeline's TF path (inference.predict_batches), in one process, interleaved round
by round, each as a fraction of the same matmul peak (bench/python.py matmul_gflops).

    python bench/python.py xnnpack --weights H5 --data DIR [--threads 2] [--reps 5]

Variants: one interpreter on N threads at batch 32 and 64; N single-thread interpreters, each
on its share of every batch (invoke() releases the GIL, so Python threads run them side by
side) or on whole batches in turn; the pipeline's Runner with pieces of 16 (a batch's halves)
down to 1 image per invoke; the interpreter's options (the delegate's latest
features, delegate clustering off). tf.lite and ai-edge-litert (if importable) alike. The
model is converted once with a free batch dimension (resize_tensor_input per shape). With
--layers (make bench: its first round), one lane layer by layer against one core's peak.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.engines import TOLERANCE, folded_backbone, installed

BATCH = 32


def interpreter(blob: bytes, threads: int, batch: int, module: str = "tensorflow", **options):
    if module == "tensorflow":
        import tensorflow as tf
        cls = tf.lite.Interpreter
    else:
        from ai_edge_litert.interpreter import Interpreter as cls
    it = cls(model_content=blob, num_threads=threads, **options)
    i = it.get_input_details()[0]
    it.resize_tensor_input(i["index"], [batch, *i["shape"][1:]])
    it.allocate_tensors()
    o = it.get_output_details()[0]["index"]

    def run(b):
        it.set_tensor(i["index"], b)
        it.invoke()
        return it.get_tensor(o)
    run.invoke = it.invoke  # the model again on the input last set, nothing copied
    return run


def split_runner(blob: bytes, parts: int, batch: int, module: str, **options):
    """`parts` one-thread interpreters, each on its slice of every batch, in Python threads."""
    size = batch // parts
    runs = [interpreter(blob, 1, size, module, **options) for _ in range(parts)]
    pool = ThreadPoolExecutor(parts)

    def run(b):
        import numpy as np
        outs = pool.map(lambda k: runs[k](b[k * size:(k + 1) * size]), range(parts))
        return np.concatenate(list(outs))
    return run


def alternate_runner(blob: bytes, parts: int, batch: int, module: str, **options):
    """`parts` one-thread interpreters taking whole batches in turn (run over a list of batches)."""
    import numpy as np
    runs = [interpreter(blob, 1, batch, module, **options) for _ in range(parts)]
    pool = ThreadPoolExecutor(parts)

    def run_many(batches):
        def lane(k):
            return [runs[k](batches[j]) for j in range(k, len(batches), parts)]
        lanes = list(pool.map(lane, range(parts)))
        out = [None] * len(batches)
        for k, got in enumerate(lanes):
            out[k::parts] = got
        return np.concatenate(out)
    return run_many


def xnnpack(args) -> dict:
    import numpy as np

    from bench.python import _timeit, matmul_gflops
    from tfjs_transfer import inference, tflite_engine

    x, folded, keras_ref, flop = folded_backbone(args)
    t = time.perf_counter()
    blob = tflite_engine.convert(folded)
    convert_s = time.perf_counter() - t
    n = args.threads

    # name -> (make, batches it takes: "one" = one batch per call, "many" = the whole list)
    variants = {"TF (pipeline: predict_batches)": (lambda: lambda b: inference.predict_batches(folded, b, len(b)),
                                                   BATCH, "one")}
    modules = ["tensorflow"] + (["ai_edge_litert"] if installed("ai_edge_litert") else [])
    for m in modules:
        tag = "tf.lite" if m == "tensorflow" else "litert"
        variants[f"{tag} {n} threads, batch 32"] = (lambda m=m: interpreter(blob, n, 32, m), 32, "one")
        variants[f"{tag} {n} threads, batch 64"] = (lambda m=m: interpreter(blob, n, 64, m), 64, "one")
        variants[f"{tag} 1 thread, batch 32"] = (lambda m=m: interpreter(blob, 1, 32, m), 32, "one")
        variants[f"{tag} {n} x 1-thread, halves of batch 32"] = (lambda m=m: split_runner(blob, n, 32, m), 32, "one")
        variants[f"{tag} {n} x 1-thread, halves of batch 64"] = (lambda m=m: split_runner(blob, n, 64, m), 64, "one")
        variants[f"{tag} {n} x 1-thread, alternate batches of 32"] = (
            lambda m=m: alternate_runner(blob, n, 32, m), 32, "many")
        variants[f"{tag} {n} threads, batch 32, latest features"] = (
            lambda m=m: interpreter(blob, n, 32, m, experimental_default_delegate_latest_features=True), 32, "one")
        variants[f"{tag} {n} threads, batch 32, no delegate clustering"] = (
            lambda m=m: interpreter(blob, n, 32, m, experimental_disable_delegate_clustering=True), 32, "one")
    for piece in sorted({BATCH // n, 8, tflite_engine.PIECE, 2, 1}, reverse=True):
        tag = " (the pipeline's)" if piece == tflite_engine.PIECE else ""
        variants[f"pipeline: tflite_engine.Runner, {n} lanes, pieces of {piece}{tag}"] = (
            lambda p=piece: (lambda r: lambda b: r.predict(b, BATCH))(tflite_engine.Runner(blob, n, p)), 32, "one")

    if getattr(args, "only", None):
        keep = [k for k in args.only.split(",") if k]
        variants = {k: v for i, (k, v) in enumerate(variants.items()) if i == 0 or any(w in k for w in keep)}
    data = np.concatenate([x] * (args.batches_per_rep * 2))[:BATCH * args.batches_per_rep * 2]
    runners, info = {}, {}
    for name, (make, batch, kind) in variants.items():
        try:
            run = make()
            bs = [data[s:s + batch] for s in range(0, len(data), batch)]
            out = run(bs) if kind == "many" else np.concatenate([np.asarray(run(b)) for b in bs])
            diff = np.abs(out[:BATCH].reshape(keras_ref.shape) - keras_ref)
            info[name] = {"status": "ok", "max_abs_diff_vs_keras": float(diff.max()), "batch": batch}
            runners[name] = (run, bs, kind)
        except Exception as e:  # noqa: BLE001 - a variant that cannot run is a result
            info[name] = {"status": f"failed: {type(e).__name__}: {str(e)[:200]}"}

    times = {k: [] for k in runners}
    peaks = []
    for _ in range(args.reps):
        peaks.append(matmul_gflops())
        for name, (run, bs, kind) in runners.items():
            go = (lambda run=run, bs=bs: run(bs)) if kind == "many" else (
                lambda run=run, bs=bs: [np.asarray(run(b)) for b in bs])
            times[name].append(_timeit(go, 1))
    peak = statistics.median(peaks)
    base = "TF (pipeline: predict_batches)"
    for name, ts in times.items():
        e = info[name]
        e["images_per_s"] = statistics.median(len(data) / t for t in ts)
        e["fraction_of_peak"] = e["images_per_s"] * flop / 1e9 / peak
        e["vs_tf"] = statistics.median(t0 / t for t, t0 in zip(ts, times[base]))
        e["within_tolerance"] = e["max_abs_diff_vs_keras"] <= TOLERANCE
    out = {"threads": n, "reps": args.reps, "matmul_gflops": peak, "matmul_gflops_runs": peaks,
           "tflite_convert_s": convert_s, "tolerance": TOLERANCE, "variants": info}
    if getattr(args, "layers", False):
        out["lane_layers"] = lane_layers(folded, x, tflite_engine.PIECE)
    return out


def core_peak_gflops(size: int = 1024, batch: int = 256) -> float:
    """One core's matmul peak on this engine: XNNPACK's fully connected kernel, one thread."""
    import numpy as np
    import tf_keras as keras

    from tfjs_transfer import tflite_engine

    inp = keras.Input((size,))
    blob = tflite_engine.convert(keras.Model(inp, keras.layers.Dense(size, use_bias=False)(inp)))
    run = interpreter(blob, 1, batch)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size)).astype(np.float32)
    run(x)
    return 2 * batch * size * size / _best_of(lambda: run(x), 20) / 1e9


def _best_of(go, n: int, rounds: int = 5) -> float:
    """Seconds of one go(), the best mean of `rounds` runs of n."""
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            go()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def lane_layers(folded, x, piece: int) -> dict:
    """The pipeline's lane measured layer by layer: each conv (with what follows it up to the
    next: bias, ReLU6 folded in) converted alone and invoked on one thread, `piece` images, on
    its real input (set once: invoke alone is timed); beside it the whole model's invoke alone,
    and with the input set and the output read as tflite_engine.Runner's lanes do. Each figure
    against one core's peak (core_peak_gflops): where the engine's time goes, and whether a
    kernel could do better (a layer far below the peak and below any cache's bandwidth is not
    bound by memory)."""
    import numpy as np
    import tf_keras as keras

    from bench.python import _kind, conv_groups, layer_macs
    from tfjs_transfer import tflite_engine

    groups = conv_groups(folded)
    # every part converted and run once first, then all timed: TF's threads (the converter's)
    # idle by then, not spinning beside the one being timed
    parts, h = [], x[:piece]
    for group in groups:
        inp = keras.Input(h.shape[1:])
        t = inp
        for layer in group:
            t = layer(t)
        run = interpreter(tflite_engine.convert(keras.Model(inp, t)), 1, piece)
        out = np.asarray(run(h))
        nbytes = 4 * (h.size + out.size + sum(int(np.prod(w.shape)) for layer in group for w in layer.weights))
        parts.append((group[0], run, 2 * layer_macs(group[0])[1] * piece, nbytes))
        h = out
    blob = tflite_engine.convert(folded)
    whole = interpreter(blob, 1, piece)
    whole(x[:piece])
    lane = tflite_engine.Runner(blob, lanes=1, piece=piece)
    lane.predict(x[:piece], piece)

    peak = core_peak_gflops()
    invoke_s = _best_of(whole.invoke, 40)
    run_s = _best_of(lambda: lane.predict(x[:piece], piece), 40)
    rows = []
    for first, run, flops, nbytes in parts:
        seconds = _best_of(run.invoke, 40)
        rows.append({"name": first.name, "kind": _kind(first), "ms": seconds * 1e3, "mflop": flops / 1e6,
                     "gflops": flops / seconds / 1e9, "fraction_of_core_peak": flops / seconds / 1e9 / peak,
                     "gb_per_s": nbytes / seconds / 1e9})
    flops = sum(r["mflop"] for r in rows) * 1e6
    total_ms = sum(r["ms"] for r in rows)
    kinds: dict[str, dict] = {}
    for r in rows:
        k = kinds.setdefault(r["kind"], {"layers": 0, "ms": 0.0, "gflop": 0.0})
        k["layers"] += 1
        k["ms"] += r["ms"]
        k["gflop"] += r["mflop"] / 1e3
    for k in kinds.values():
        k["time_share"] = k["ms"] / total_ms
        k["fraction_of_core_peak"] = k["gflop"] / (k["ms"] / 1e3) / peak
    return {"piece": piece, "core_peak_gflops": peak, "layers": rows, "kinds": kinds, "layers_ms": total_ms,
            "invoke_ms": invoke_s * 1e3, "lane_run_ms": run_s * 1e3,
            "invoke_fraction_of_core_peak": flops / invoke_s / 1e9 / peak,
            "lane_run_fraction_of_core_peak": flops / run_s / 1e9 / peak}


def median_runs(runs: list[dict]) -> dict:
    """Each variant's figures as medians over processes (make bench: one a round)."""
    import statistics

    med = lambda vs: statistics.median(vs) if vs else None  # noqa: E731
    out = {**runs[0], "matmul_gflops": med([r["matmul_gflops"] for r in runs]),
           "tflite_convert_s": med([r["tflite_convert_s"] for r in runs]), "reps": sum(r["reps"] for r in runs)}
    out["variants"] = {}
    for name, first in runs[0]["variants"].items():
        rows = [r["variants"].get(name, {}) for r in runs if r["variants"].get(name, {}).get("status") == "ok"]
        e = dict(first)
        for k in ("images_per_s", "fraction_of_peak", "vs_tf", "max_abs_diff_vs_keras"):
            e[k] = med([x[k] for x in rows if k in x])
        out["variants"][name] = e
    return out


def report(r: dict) -> str:
    lines = [f"  XNNPACK variants (bench/xnnpack.py: folded backbone, {r['threads']} threads, interleaved "
             f"{r['reps']} rounds; peak {r['matmul_gflops']:.0f} GFLOP/s; convert {r['tflite_convert_s']:.1f} s):",
             f"    {'variant':<58} {'img/s':>6} {'of peak':>8} {'vs TF':>6} {'max diff':>9}"]
    for name, e in r["variants"].items():
        if e["status"] != "ok":
            lines.append(f"    {name:<58} {e['status']}")
            continue
        lines.append(f"    {name:<58} {e['images_per_s']:6.0f} {e['fraction_of_peak']:8.0%} "
                     f"{e['vs_tf']:5.2f}x {e['max_abs_diff_vs_keras']:9.1e}")
    if r.get("lane_layers"):
        lines.append(lane_report(r["lane_layers"]))
    return "\n".join(lines)


def lane_report(ll: dict) -> str:
    lines = [f"  One lane by layer (bench/xnnpack.py lane_layers: one thread, pieces of {ll['piece']}; one core's "
             f"peak {ll['core_peak_gflops']:.0f} GFLOP/s, XNNPACK's own matmul): the whole model's invoke "
             f"{ll['invoke_ms']:.2f} ms = {ll['invoke_fraction_of_core_peak']:.0%} of it, with the lane's input and "
             f"output copies {ll['lane_run_ms']:.2f} ms = {ll['lane_run_fraction_of_core_peak']:.0%}",
             f"    {'kind':<26} {'layers':>6} {'time':>6} {'of core peak':>13}"]
    for kind, k in ll["kinds"].items():
        lines.append(f"    {kind:<26} {k['layers']:6d} {k['time_share']:6.0%} {k['fraction_of_core_peak']:13.0%}")
    return "\n".join(lines)


def add_arguments(p) -> None:
    p.add_argument("--weights", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--batches-per-rep", type=int, default=4, help="batches of 32 timed per variant per round")
    p.add_argument("--layers", action="store_true", help="also time one lane layer by layer (lane_layers)")
    p.add_argument("--only", help="comma-separated substrings: run only the variants whose name holds one "
                   "(the TF path always runs: the ratios' base)")

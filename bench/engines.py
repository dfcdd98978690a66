"""Other native engines running the build's folded backbone, against the pipeline's own path
(inference.predict_batches through TensorFlow/oneDNN), in one process, batch 32, interleaved
round by round, each as a fraction of the same matmul peak (bench/python.py matmul_gflops).

    python bench/python.py engines --weights H5 --data DIR [--threads 2] [--reps 5]

An engine whose package is not importable is reported as "not installed" (none is a
dependency of the project: install one into a folder of its own and put it on PYTHONPATH,
e.g. `pip install --target /tmp/ov openvino`, PYTHONPATH=/tmp/ov). Each engine gets its model
from the folded Keras backbone: a .tflite from TF's own converter (the converter's float32
default; "optimized" is Optimize.DEFAULT, which stores int8 weights), an ONNX file from
tf2onnx. Features are compared with the Keras backbone as trained (not folded), the reference
the tests hold the pipeline to (5e-3).
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BATCH = 32
TOLERANCE = 5e-3  # features vs Keras, as tests/test_fold.py and the page's parity tests


def package_mb(module: str) -> float | None:
    """Disk size of an importable package's folder, MB (what installing it adds, less its deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2 ** 20


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# ---------------------------------------------------------------- conversions (timed by the caller)


def to_tflite(model, optimize: bool = False) -> bytes:
    """The folded backbone as a .tflite at a fixed batch of 32 (XNNPACK plans per shape)."""
    import tensorflow as tf

    fn = tf.function(lambda v: model(v, training=False),
                     input_signature=[tf.TensorSpec([BATCH, *model.input_shape[1:]], tf.float32)])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    if optimize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


def to_onnx(model, path: Path) -> Path:
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec([BATCH, *model.input_shape[1:]], tf.float32, name="input"),)
    fn = tf.function(lambda v: model(v, training=False))
    tf2onnx.convert.from_function(fn, input_signature=spec, opset=17, output_path=str(path))
    return path


# ---------------------------------------------------------------- runners: batch (32, H, W, 3) -> features


def tflite_runner(blob: bytes, threads: int, module: str = "tensorflow", xnnpack: bool = True):
    if module == "tensorflow":
        import tensorflow as tf
        interp = tf.lite.Interpreter
        resolver = tf.lite.experimental.OpResolverType
    else:
        from ai_edge_litert import interpreter as litert
        interp = litert.Interpreter
        resolver = litert.OpResolverType
    kind = resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = interp(model_content=blob, num_threads=threads, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def run(b):
        it.set_tensor(i, b)
        it.invoke()
        return it.get_tensor(o)
    return run


def openvino_runner(model_path: Path, threads: int, precision: str = "f32"):
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(model_path)), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
    req = compiled.create_infer_request()
    return lambda b: req.infer([b])[0].copy()


def onnxruntime_runner(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda b: sess.run(None, {name: b})[0]


# ---------------------------------------------------------------- the worker


def folded_backbone(args):
    """TF on args.threads threads; a batch of BATCH preprocessed logos, the
    folded model (what the pipeline extracts with), Keras' features of the batch and the
    model's FLOPs per image: what every engine here is measured on."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import numpy as np

    from bench.python import count_macs
    from tfjs_transfer import backbones, dataset, fold, preprocess
    from tfjs_transfer.build import quiet_tensorflow

    quiet_tensorflow()
    bb = backbones.load_backbone("mobilenet_v1_0.25", args.weights)
    prep = bb.preprocessing
    paths = [s.path for s in dataset.scan(Path(args.data)).samples][:BATCH]
    x = preprocess.normalize(np.stack([preprocess.resize(dataset.load_rgb(p), prep) for p in paths]), prep)
    x = np.ascontiguousarray(x, np.float32)
    folded, _ = fold.fold_batch_norms(bb.model, x[:8])
    keras_ref = bb.model.predict(x, batch_size=BATCH, verbose=0)
    return x, folded, keras_ref, 2 * count_macs(bb.model)["total"]


def engines(args) -> dict:
    if not args.work:
        with tempfile.TemporaryDirectory() as tmp:
            args.work = tmp
            return engines(args)
    import numpy as np
    import tensorflow as tf

    from bench.python import _timeit, matmul_gflops
    from tfjs_transfer import inference

    x, folded, keras_ref, flop = folded_backbone(args)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    runners, info = {}, {}

    def add(name, module, make):
        """Convert + load one engine; failures are recorded, never fatal."""
        if module and not installed(module):
            info[name] = {"status": "not installed"}
            return
        try:
            t = time.perf_counter()
            run = make()
            out = np.asarray(run(x))  # first call outside the timing (plans, JIT)
            diff = np.abs(out.reshape(keras_ref.shape) - keras_ref)
            info[name] = {"status": "ok", "prepare_s": time.perf_counter() - t,
                          "max_abs_diff_vs_keras": float(diff.max()), "mean_abs_diff_vs_keras": float(diff.mean())}
            if module:
                info[name]["package_mb"] = package_mb(module)
            runners[name] = run
        except Exception as e:  # noqa: BLE001 - an engine that cannot run this model is a result
            info[name] = {"status": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}

    add("TF (pipeline: predict_batches)", None, lambda: lambda b: inference.predict_batches(folded, b, BATCH))
    blobs = {}
    for opt in (False, True):
        t = time.perf_counter()
        blobs[opt] = to_tflite(folded, opt)
        info[f"tflite_convert{'_optimized' if opt else ''}_s"] = time.perf_counter() - t
        (work / f"backbone{'_opt' if opt else ''}.tflite").write_bytes(blobs[opt])
    info["tflite_float32_bytes"], info["tflite_optimized_bytes"] = len(blobs[False]), len(blobs[True])
    for th in sorted({1, args.threads}):
        add(f"tf.lite XNNPACK, {th} thread{'s' * (th > 1)}", None, lambda th=th: tflite_runner(blobs[False], th))
    add(f"tf.lite without XNNPACK (builtin kernels), {args.threads} threads", None,
        lambda: tflite_runner(blobs[False], args.threads, xnnpack=False))
    add(f"tf.lite XNNPACK, Optimize.DEFAULT (int8 weights), {args.threads} threads", None,
        lambda: tflite_runner(blobs[True], args.threads))
    for th in sorted({1, args.threads}):
        add(f"ai-edge-litert XNNPACK, {th} thread{'s' * (th > 1)}", "ai_edge_litert",
            lambda th=th: tflite_runner(blobs[False], th, module="ai_edge_litert"))
    for precision in ("f32", "bf16"):
        add(f"OpenVINO CPU ({precision}, .tflite), {args.threads} threads", "openvino",
            lambda p=precision: openvino_runner(work / "backbone.tflite", args.threads, p))
    onnx_path = work / "backbone.onnx"
    if installed("tf2onnx"):
        try:
            t = time.perf_counter()
            to_onnx(folded, onnx_path)
            info["onnx_convert_s"] = time.perf_counter() - t
            info["tf2onnx_mb"] = package_mb("tf2onnx") + (package_mb("onnx") or 0)
        except Exception as e:  # noqa: BLE001
            info["onnx_convert"] = f"failed: {type(e).__name__}: {e}"[:300]
    else:
        info["onnx_convert"] = "tf2onnx not installed"
    if onnx_path.exists():
        add(f"onnxruntime CPU (tf2onnx), {args.threads} threads", "onnxruntime",
            lambda: onnxruntime_runner(onnx_path, args.threads))
        add(f"OpenVINO CPU (f32, .onnx), {args.threads} threads", "openvino",
            lambda: openvino_runner(onnx_path, args.threads))
    elif installed("onnxruntime"):
        info[f"onnxruntime CPU (tf2onnx), {args.threads} threads"] = {"status": "no ONNX model (tf2onnx)"}

    # interleaved: every round the peak, then each engine once over the same batches
    times = {n: [] for n in runners}
    cpu = {n: [] for n in runners}  # process CPU seconds: moves less than wall time with the load
    peaks = []
    batches = np.concatenate([x] * args.batches_per_rep)
    for _ in range(args.reps):
        peaks.append(matmul_gflops())
        for name, run in runners.items():
            def go(run=run):
                for s in range(0, len(batches), BATCH):
                    np.asarray(run(batches[s:s + BATCH]))
            c = time.process_time()
            times[name].append(_timeit(go, 1))
            cpu[name].append((time.process_time() - c) / 2)  # _timeit ran go twice
    peak = statistics.median(peaks)
    base = "TF (pipeline: predict_batches)"
    for name, ts in times.items():
        ips = [len(batches) / t for t in ts]
        e = info[name]
        e["images_per_s_batch32"] = statistics.median(ips)
        e["ms_per_image"] = 1000 / e["images_per_s_batch32"]
        e["fraction_of_peak"] = e["images_per_s_batch32"] * flop / 1e9 / peak
        e["images_per_cpu_s"] = statistics.median(len(batches) / c for c in cpu[name])
        if base in times:
            e["vs_tf"] = statistics.median(t0 / t for t, t0 in zip(ts, times[base]))
        e["within_tolerance"] = e["max_abs_diff_vs_keras"] <= TOLERANCE
    return {"threads": args.threads, "batch": BATCH, "reps": args.reps, "matmul_gflops": peak,
            "matmul_gflops_runs": peaks, "gflop_per_image": flop / 1e9, "tolerance": TOLERANCE,
            "engines": {k: v for k, v in info.items() if isinstance(v, dict)},
            "conversion": {k: v for k, v in info.items() if not isinstance(v, dict)},
            "cpus": os.cpu_count(), "tf": tf.__version__, "python": sys.version.split()[0]}


def add_arguments(p) -> None:
    p.add_argument("--weights", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--batches-per-rep", type=int, default=4, help="batches of 32 timed per engine per round")
    p.add_argument("--work", help="keep the converted models here (default: a temporary folder)")

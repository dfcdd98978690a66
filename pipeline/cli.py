"""The `tfjs-transfer` command: argument parsing and error reporting, nothing else."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .errors import UserError
from .tfquiet import import_tensorflow_quietly


def _int_at_least(low: int, *, or_zero: bool = False):
    """An argparse type: an int >= low (or exactly 0 when `or_zero`), else argparse's usage + error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low and not (or_zero and value == 0):
            raise argparse.ArgumentTypeError(f"must be {'0 or ' if or_zero else ''}at least {low}, got {value}")
        return value
    return parse


def _port(text: str) -> int:
    value = _int_at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, got {value}")
    return value


def _number_in(low: float, high: float | None = None):
    """An argparse type: a float in [low, high) (high None: no upper bound)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value >= low and (high is None or value < high)):
            bounds = f"at least {low:g}" + (f" and below {high:g}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value
    return parse


def _recipe_flag_type(f):
    """A Recipe setting's flag type: its declared type, never negative (a batch of 0 or a hold-out
    of all the data is not a setting either)."""
    if f.metadata["cli_type"] is int:
        return _int_at_least(1 if f.name == "batch_size" else 0)
    if f.metadata["cli_type"] is float:
        return _number_in(0.0, 1.0 if f.name == "validation_split" else None)
    return f.metadata["cli_type"]


def _check_inputs(args) -> None:
    """Paths that must exist, checked before TensorFlow's import makes a typo cost seconds."""
    def need(path: str, what: str) -> None:
        if not Path(path).exists():
            raise UserError(f"{path}: no such {what}")

    if args.command == "predict":
        if not args.imagenet:
            need(args.site, "site folder")
        elif args.site not in ("imagenet", "none"):
            need(args.site, "weights file")
        for image in args.images:
            need(image, "image")
    elif args.command == "evaluate":
        need(args.site, "site folder")
        need(args.data, "folder")
    elif args.command == "compare":
        need(args.data, "folder")
    elif args.command == "export":
        need(args.site, "site folder")
    elif args.command == "extract" and "://" not in args.data:
        need(args.data, "folder")


def build_config(args):
    """The BuildConfig for parsed `build` arguments."""
    from .build import BuildConfig
    from .features import default_cache_dir
    from .heads import overridable_fields

    cfg = BuildConfig(
        data=None if args.data is None else Path(args.data), weights=args.weights, out=Path(args.out), backbone=args.backbone, cut=args.cut,
        recipe=args.recipe,
        recipe_overrides={f.name: getattr(args, f.name) for f in overridable_fields()
                          if getattr(args, f.name) is not None},
        flip=args.flip, init_from=args.init_from, cv_folds=args.folds, quantize=args.quantize,
        fold_batch_norms=not args.no_fold, fit=args.fit,
        cache_dir=None if args.no_cache else Path(args.cache or default_cache_dir()),
        strict=args.strict, seed=args.seed, verbose=0 if args.quiet else 1, force=args.force,
        backbone_only=args.backbone_only,
        runner=args.runner, beam_options=shlex.split(args.beam_options or ""),
        stream_features=args.stream_features, site_images_per_class=args.site_images_per_class,
        feature_dtype=args.feature_dtype, engine=args.engine)
    if args.web_dist:
        cfg.web_dist = Path(args.web_dist)
    return cfg


def _build(args) -> int:
    from .build import build

    build(build_config(args))
    return 0


def _extract(args) -> int:
    from .build import BuildConfig, beam_extract_module
    from .heads import overridable_fields

    beam = beam_extract_module()
    cfg = BuildConfig(
        data=Path(args.data), weights=args.weights, out=Path("."), backbone=args.backbone, cut=args.cut,
        recipe=args.recipe, recipe_overrides={f.name: getattr(args, f.name) for f in overridable_fields()
                                              if getattr(args, f.name) is not None},
        flip=args.flip, init_from=args.init_from, quantize=args.quantize, fold_batch_norms=not args.no_fold,
        fit=args.fit, cache_dir=Path(args.cache), seed=args.seed, verbose=0 if args.quiet else 1,
        feature_dtype=args.feature_dtype)
    counts = beam.extract_command(cfg, args.data, shlex.split(args.beam_options or ""))
    if not args.quiet:
        print(f"cache {args.cache}: {beam.describe(counts)}")
    return 0


def _predict(args) -> int:
    from .predict import Predictor, imagenet_predict

    if args.imagenet:
        results = imagenet_predict(args.site, args.images, top_k=args.top_k or 5, backbone=args.backbone)
    else:
        predictor = Predictor(args.site, source="auto")
        results = predictor.predict(args.images, top_k=args.top_k or min(3, len(predictor.labels)))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"{r['image']}: error: {r['error']}")
                continue
            best = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top"])
            print(f"{r['image']}: {best}")
    return 1 if any("error" in r for r in results) else 0


def _evaluate(args) -> int:
    from .evaluate import evaluate, write_report

    report = evaluate(args.site, args.data)
    written = write_report(report, args.report) if args.report else []
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=2))
        return 0
    print(f"accuracy {report['accuracy']:.1%} on {report['count']} images ({report['split']})")
    width = max(len(l) for l in report["labels"])
    print(f"{'class':{width}}  precision  recall     f1  support")
    for label, m in report["per_class"].items():
        print(f"{label:{width}}  {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f} {m['support']:8d}")
    print("confusion matrix (rows: true, columns: predicted):")
    for label, row in zip(report["labels"], report["confusion_matrix"]):
        print(f"  {label:{width}} " + " ".join(f"{v:4d}" for v in row))
    for w in report["worst"][:5]:
        print(f"  worst: {w['image']} ({w['label']}) -> {w['predicted']}, p({w['label']}) = {w['probability_of_label']:.2f}")
    for p in written:
        print(f"wrote {p}")
    return 0


def _compare(args) -> int:
    from .compare import compare

    compare(Path(args.data), args.weights, Path(args.out), recipe=args.recipe, folds=args.folds,
            backbone=args.backbone, web_dist=args.web_dist, json_out=args.json)
    return 0


def _export(args) -> int:
    from .export import export

    export(args.site, args.format, args.out, quantize=args.quantize)
    return 0


def _serve(args) -> int:
    from .serve import run

    run(args.site, host=args.host, port=args.port)
    return 0


# Each subcommand's --help ends with an example: a command line (a test parses it), then a note.
EXAMPLES = {
    "build": "tfjs-transfer build --data my_images --weights imagenet --out site\n"
             "  (my_images/<class>/*.jpg; 'imagenet' downloads MobileNet into ~/.keras/models once)",
    "extract": "tfjs-transfer extract --data my_images --cache features --weights imagenet "
               "--beam-options '--direct_num_workers 2 --direct_running_mode multi_processing'\n"
               "  (then: tfjs-transfer build --data my_images --weights imagenet --cache features)",
    "predict": "tfjs-transfer predict site photo1.jpg photo2.jpg --top-k 3",
    "evaluate": "tfjs-transfer evaluate site my_images/test --report reports/eval",
    "compare": "tfjs-transfer compare my_images --weights imagenet --folds 5 --out reports/compare",
    "serve": "tfjs-transfer serve site --port 8000\n  (then open http://127.0.0.1:8000/)",
    "export": "tfjs-transfer export site --format tflite --quantize int8 --out exports/tflite-int8\n"
              "  (formats: keras = model.keras for Keras 3 + model.h5, savedmodel, tflite)",
}


def _subcommand(sub, name: str, summary: str) -> argparse.ArgumentParser:
    """A subparser whose --help ends with EXAMPLES[name], kept as written."""
    return sub.add_parser(name, help=summary, epilog="example:\n  " + EXAMPLES[name],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def parser() -> argparse.ArgumentParser:
    from . import __version__
    from .backbones import REGISTRY
    from .heads import overridable_fields

    p = argparse.ArgumentParser(prog="tfjs-transfer", description=(
        "Turn a folder of labelled images into a transfer-learning classifier served as a static TF.js site."),
        epilog="example:\n  " + EXAMPLES["build"].split("\n")[0] + " && tfjs-transfer serve site\n"
               "each command's --help ends with its own example",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    b = _subcommand(sub, "build", "dataset -> features -> head -> TF.js site")
    b.add_argument("--data", help="folder per class, label-N.ext files, train/valid/test, or a project zip "
                                   "(or its folder) exported by the page")
    b.add_argument("--backbone-only", action="store_true",
                   help="no --data: a site with the backbone and no head, opening into an empty project")
    b.add_argument("--weights", required=True, help="a Keras .h5/.keras file, 'imagenet' (download) or 'none'")
    b.add_argument("--out", default="site", help="site folder to (re)place atomically (default: site)")
    b.add_argument("--backbone", choices=sorted(REGISTRY), help="default: read from the weights file, else mobilenet_v1_0.25")
    b.add_argument("--cut", help="layer to cut the backbone at (default: the backbone's, e.g. conv_pw_13_relu)")
    b.add_argument("--recipe", default="default", help="head recipe: default, pooled, tutorial, finetune")
    for f in overridable_fields():  # every overridable Recipe setting, declared once in heads.Recipe
        b.add_argument("--" + f.name.replace("_", "-"), type=_recipe_flag_type(f), help=f.metadata["help"])
    b.add_argument("--init-from", help="copy weights by layer name from a related task's .h5/.keras")
    b.add_argument("--flip", action="store_true", help="let augmentation flip images left-right")
    b.add_argument("--folds", type=_int_at_least(2, or_zero=True), default=0,
                   help="also report K-fold cross-validated accuracy")
    b.add_argument("--quantize", choices=["float16", "uint8"], help="quantize the TF.js weights")
    b.add_argument("--no-fold", action="store_true",
                   help="serve the backbone as trained, without folding batch-norms and paddings into convs")
    b.add_argument("--fit", choices=["stretch", "crop_or_pad"], default="stretch", help="how images reach the input size")
    b.add_argument("--cache", help="feature cache folder (default: ~/.cache/tfjs-transfer/features)")
    b.add_argument("--no-cache", action="store_true", help="compute every feature afresh")
    b.add_argument("--strict", action="store_true", help="refuse the build on any undecodable image")
    b.add_argument("--stream-features", choices=["auto", "on", "off"], default="auto",
                   help="train the head from the feature cache through tf.data instead of from memory "
                        "(auto: when the features would take over a quarter of this machine's memory)")
    b.add_argument("--feature-dtype", choices=["float32", "float16"], default="float32",
                   help="store cached features as float16: half the disk and reads (see README \"Large datasets\")")
    b.add_argument("--site-images-per-class", type=_int_at_least(0), default=50, metavar="N",
                   help="serve at most N images per class to the page (a seeded sample; 0: all)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--web-dist", help="the built page bundle (default: web/dist in a checkout, "
                                      "else the page installed with the package)")
    b.add_argument("--force", action="store_true", help="rebuild even if the site is up to date")
    b.add_argument("--quiet", action="store_true")
    b.add_argument("--engine", choices=["tflite", "tf"], default="tflite",
                   help="what runs the backbone over the images in this process: TFLite's XNNPACK kernels "
                        "(TensorFlow when the backbone does not convert, or for fine-tuning), or TensorFlow")
    b.add_argument("--runner", choices=["inprocess", "beam"], default="inprocess",
                   help="where features are extracted: in this process, or on Apache Beam (the beam extra)")
    b.add_argument("--beam-options", metavar="OPTIONS",
                   help="with --runner beam: Beam pipeline options, e.g. '--direct_num_workers 2 "
                        "--direct_running_mode multi_processing' (default runner: FnApiRunner, in-process)")
    b.set_defaults(func=_build)

    xt = _subcommand(sub, "extract", "fill the feature cache on Apache Beam (the build's extraction step only)")
    xt.add_argument("--data", required=True, help="a dataset folder as for build, or a URL such as gs://bucket/images")
    xt.add_argument("--cache", required=True, help="the feature cache folder builds read (build --cache)")
    xt.add_argument("--weights", required=True, help="as for build")
    xt.add_argument("--backbone", choices=sorted(REGISTRY))
    xt.add_argument("--cut")
    xt.add_argument("--recipe", default="default", help="as for build: its augmented views are extracted too")
    for f in overridable_fields():
        xt.add_argument("--" + f.name.replace("_", "-"), type=_recipe_flag_type(f), help=f.metadata["help"])
    xt.add_argument("--init-from")
    xt.add_argument("--flip", action="store_true")
    xt.add_argument("--quantize", choices=["float16", "uint8"])
    xt.add_argument("--no-fold", action="store_true")
    xt.add_argument("--fit", choices=["stretch", "crop_or_pad"], default="stretch")
    xt.add_argument("--seed", type=int, default=0)
    xt.add_argument("--feature-dtype", choices=["float32", "float16"], default="float32", help="as for build")
    xt.add_argument("--beam-options", metavar="OPTIONS", help="Beam pipeline options (default runner: FnApiRunner)")
    xt.add_argument("--quiet", action="store_true")
    xt.set_defaults(func=_extract)

    pr = _subcommand(sub, "predict", "classify images with a built site's models")
    pr.add_argument("site", help="a built site, or with --imagenet the backbone weights (path or 'imagenet')")
    pr.add_argument("images", nargs="+")
    pr.add_argument("--imagenet", action="store_true", help="ImageNet classes from the backbone's own top")
    pr.add_argument("--backbone", choices=sorted(REGISTRY), help="with --imagenet: the architecture")
    pr.add_argument("--top-k", type=_int_at_least(1))
    pr.add_argument("--json", action="store_true", help='print [{"image", "top": [{"label", "probability"}]}]')
    pr.set_defaults(func=_predict)

    ev = _subcommand(sub, "evaluate", "accuracy, per-class precision/recall, confusion matrix")
    ev.add_argument("site")
    ev.add_argument("data")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--report", help="folder for confusion_matrix.png, training_curves.png, report.json")
    ev.set_defaults(func=_evaluate)

    cp = _subcommand(sub, "compare", "the same data with and without transfer (ImageNet vs random weights)")
    cp.add_argument("data")
    cp.add_argument("--weights", required=True, help="the pretrained weights (path or 'imagenet')")
    cp.add_argument("--backbone", choices=sorted(REGISTRY))
    cp.add_argument("--recipe", default="default")
    cp.add_argument("--folds", type=_int_at_least(2), default=5)
    cp.add_argument("--out", default="reports/compare", help="folder for the two sites, curves and compare.json")
    cp.add_argument("--web-dist", help="as for build")
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(func=_compare)

    from .export import BROWSER_FORMATS, FORMATS, QUANTIZATIONS

    ex = _subcommand(sub, "export", "the site's backbone + head as one model in another format, checked by loading it back")
    ex.add_argument("site")
    ex.add_argument("--format", required=True, choices=sorted(FORMATS | BROWSER_FORMATS))
    ex.add_argument("--out", required=True, help="a new (or empty) folder for the model, labels.txt and README.md")
    ex.add_argument("--quantize", choices=sorted({q for qs in QUANTIZATIONS.values() for q in qs}),
                    help="tflite: float32 (default), float16 or int8 (calibrated on the site's training images)")
    ex.set_defaults(func=_export)

    sv = _subcommand(sub, "serve", "serve a site with Flask + CORS under waitress")
    sv.add_argument("site", nargs="?", default="site")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=_port, default=8000, help="0 picks a free port (default: 8000)")
    sv.set_defaults(func=_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, run, and turn every UserError into one `error:` line and exit code 2 (argparse
    does the same for what it refuses itself, after its usage block)."""
    args = parser().parse_args(argv)
    try:
        _check_inputs(args)
        if args.command not in ("serve", "build", "extract"):  # build and extract import it only when the site is out of date
            import_tensorflow_quietly()
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the previous site (if any) is untouched", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Figures for every export format (issue 15's closing note), run alone (not a `make bench`
phase: it builds two sites and runs about twenty consumer processes and two browsers):

    .venv/bin/python bench/exports.py [--json exports.json]

Builds the logo site and the sign-digit site (418 images) in a temporary folder, exports
each in every format and, per format: its size; its load time in its consumer (Keras 3,
tf_keras, tf.saved_model, the TFLite interpreter, each in a fresh Python process as
`export` checks them; `@teachablemachine/image` 0.8.5 and ml5.js 1.4 in Chromium for `tm`);
the max |difference| of its probabilities against the site's own Keras models on the 4
test logos and on the 418 sign digits (the site's copies, preprocessed as the site does;
TM and ml5 get the image files and prepare them their own way); the held-out accuracy
(the build's validation split) of TFLite float32 / float16 / int8 on the sign digits; and
the top class and probability TM and ml5 give each test logo.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import (BRAND_TEST, BRAND_TRAIN, MOBILENET_H5, SIGN_DIGITS, chromium_missing,  # noqa: E402
                           launch_chromium, serve_folder)

# (format, quantize) in the order printed
PYTHON_FORMATS = [("keras", "float32"), ("savedmodel", "float32"), ("tflite", "float32"), ("tflite", "float16"),
                  ("tflite", "int8")]
TEST_LOGOS = ["android.jpg", "apple-reverse.jpg", "apple8.0.jpeg", "windows.png"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_site(data: Path, out: Path, cache: Path) -> Path:
    from tfjs_transfer.build import BuildConfig, build

    build(BuildConfig(data=data, weights=str(MOBILENET_H5), out=out, cache_dir=cache, seed=0, verbose=0))
    return out


def site_images(site: Path) -> list[dict]:
    """images.json's entries (path, label, role) of the site's own copies."""
    from tfjs_transfer import manifest

    m = manifest.load(site)
    return manifest.parse(site / m["images"]["path"])["images"]


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def python_formats(site: Path, sets: dict[str, np.ndarray], work: Path) -> tuple[list[dict], dict, list[str]]:
    """Each format written by its exporter and run by its consumer in a fresh process on each
    set (as `export` checks it, without its tolerances: the figures are what is measured here);
    returns the rows, the site's own probabilities per set and its labels."""
    from tfjs_transfer.export import FORMATS, SiteModels, run_in_fresh_process

    models = SiteModels.load(site)
    references = {name: models.merged().predict(x, batch_size=32, verbose=0) for name, x in sets.items()}
    rows = []
    for fmt, quantize in PYTHON_FORMATS:
        folder = work / f"{fmt}-{quantize}"
        folder.mkdir()
        written = FORMATS[fmt](models, folder, {"quantize": quantize})
        for check in written["check"]:
            measured = {"format": f"{fmt} {check['path']}" + (f" {quantize}" if fmt == "tflite" else ""),
                        "consumer": check["consumer"], "bytes": size_of(folder / check["path"]), "probs": {}}
            for name, x in sets.items():
                probs, load_seconds = run_in_fresh_process(check, folder, x)
                measured[f"max_abs_diff_{name}"] = float(np.abs(probs - references[name]).max())
                measured[f"load_seconds_{name}"] = load_seconds
                measured["probs"][name] = probs
            rows.append(measured)
            log(f"  {measured['format']} ({check['consumer']}): {measured['bytes'] / 1e6:.2f} MB")
    return rows, references, models.labels


def tm_in_browsers(tm_folder: Path, images: dict[str, list[Path]], labels: list[str]) -> dict:
    """TM and ml5 load the `tm` export in Chromium and classify each set's image files:
    {consumer: {"load_ms", "tfjs", "probs": {set: [n, classes] in label order}}}."""
    from playwright.sync_api import sync_playwright

    from tests.browser.test_tm_export import LIBS, ML5_SCRIPT, PAGE, TM_SCRIPT, _install_consumers

    modules = _install_consumers()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "lib").mkdir()
        for name, rel in LIBS.items():
            shutil.copy(modules / rel, root / "lib" / name)
        shutil.copytree(tm_folder, root / "tm")
        srcs = {}
        for set_name, paths in images.items():
            (root / "img" / set_name).mkdir(parents=True)
            srcs[set_name] = []
            for i, p in enumerate(paths):
                dest = root / "img" / set_name / f"{i:04d}{p.suffix.lower()}"
                shutil.copy(p, dest)
                srcs[set_name].append(f"img/{set_name}/{dest.name}")
        tm_scripts = '<script src="lib/tf-1.3.1.min.js"></script>\n<script src="lib/teachablemachine-image.min.js"></script>'
        (root / "tm.html").write_text(PAGE.format(title="tm", scripts=tm_scripts))
        (root / "ml5.html").write_text(PAGE.format(title="ml5", scripts='<script src="lib/ml5.min.js"></script>'))
        every = [s for group in srcs.values() for s in group]
        out = {}
        with serve_folder(root) as base, sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                for consumer in ("tm", "ml5"):
                    page = browser.new_page()
                    page.set_default_timeout(600_000)
                    page.goto(base + f"{consumer}.html")
                    got = (page.evaluate(TM_SCRIPT, [every]) if consumer == "tm"
                           else page.evaluate(ML5_SCRIPT, [base + "tm/model.json", every]))
                    page.close()
                    probs = {s: np.array([[dict(got["out"][src])[label] for label in labels] for src in group])
                             for s, group in srcs.items()}
                    out[consumer] = {"load_ms": got["loadMs"], "tfjs": got["tfjs"], "backend": got["backend"],
                                     "probs": probs}
            finally:
                browser.close()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    reason = chromium_missing()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2

    from tfjs_transfer.dataset import load_rgb
    from tfjs_transfer.export_tm import export_tm
    from tfjs_transfer.preprocess import prepare

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
        work = Path(tmp)
        log("building the logo and sign-digit sites…")
        logos = build_site(BRAND_TRAIN, work / "logos", work / "cache")
        digits = build_site(SIGN_DIGITS, work / "digits", work / "cache")
        for site_name, site in (("logos", logos), ("digits", digits)):
            from tfjs_transfer.predict import Predictor

            prep = Predictor(site, source="keras").preprocessing
            entries = site_images(site)
            sets_paths = ({"test4": [BRAND_TEST / n for n in TEST_LOGOS]} if site_name == "logos"
                          else {"all418": [site / e["path"] for e in entries]})
            sets = {k: np.stack([prepare(load_rgb(p), prep) for p in v]) for k, v in sets_paths.items()}
            log(f"{site_name}: exporting {len(PYTHON_FORMATS)} formats…")
            (work / f"exp-{site_name}").mkdir()
            rows, refs, labels = python_formats(site, sets, work / f"exp-{site_name}")
            tm_dir = work / f"exp-{site_name}" / "tm"
            report = export_tm(site, tm_dir)
            browsers = tm_in_browsers(tm_dir, sets_paths, labels)
            for consumer, got in browsers.items():
                rows.append({"format": "tm (model.json + weights.bin)", "consumer": consumer,
                             "bytes": report["bytes"] - report["files"]["README.md"] - report["files"]["labels.txt"],
                             **{f"max_abs_diff_{k}": float(np.abs(v - refs[k]).max()) for k, v in got["probs"].items()},
                             **{f"load_seconds_{k}": got["load_ms"] / 1000 for k in got["probs"]},
                             "probs": got["probs"]})
            results[site_name] = {"labels": labels, "rows": rows, "refs": refs, "entries": entries}

    # ---- print ----
    logo_rows = {(r["format"], r["consumer"]): r for r in results["logos"]["rows"]}
    digit_rows = {(r["format"], r["consumer"]): r for r in results["digits"]["rows"]}
    lines = ["| format | consumer | size (logo site) | load (s) | max |diff| 4 test logos | max |diff| 418 sign digits "
             "| top-1 agreement 418 |", "|---|---|---|---|---|---|---|"]
    site_top = results["digits"]["refs"]["all418"].argmax(1)
    for key, r in logo_rows.items():
        d = digit_rows[key]
        agreement = float((d["probs"]["all418"].argmax(1) == site_top).mean())
        lines.append(f"| {key[0]} | {key[1]} | {r['bytes'] / 1e6:.2f} MB | {r['load_seconds_test4']:.3f} | "
                     f"{r['max_abs_diff_test4']:.2g} | {d['max_abs_diff_all418']:.2g} | {agreement:.2%} |")
    entries = results["digits"]["entries"]
    labels = results["digits"]["labels"]
    valid = np.array([e.get("role") == "valid" for e in entries])
    truth = np.array([labels.index(e["label"]) for e in entries])
    lines += ["", "| sign digits, held-out (build's validation split) | accuracy | change vs float32 |", "|---|---|---|"]
    site_acc = float((results["digits"]["refs"]["all418"].argmax(1)[valid] == truth[valid]).mean())
    lines.append(f"| the site (Keras) | {site_acc:.2%} ({valid.sum()} images) | |")
    f32 = None
    for key, r in digit_rows.items():
        if key[0].startswith("tflite"):
            acc = float((r["probs"]["all418"].argmax(1)[valid] == truth[valid]).mean())
            f32 = acc if f32 is None else f32
            lines.append(f"| {key[0]} | {acc:.2%} | {100 * (acc - f32):+.2f} points |")
    lines += ["", "| test logo | " + " | ".join(c for c in ("tm", "ml5")) + " |", "|---|---|---|"]
    logo_labels = results["logos"]["labels"]
    for i, name in enumerate(TEST_LOGOS):
        cells = []
        for consumer in ("tm", "ml5"):
            p = logo_rows[("tm (model.json + weights.bin)", consumer)]["probs"]["test4"][i]
            cells.append(f"{logo_labels[int(p.argmax())]} {p.max():.6f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.json:
        def plain(o):
            if isinstance(o, np.ndarray):
                return o.round(6).tolist()
            raise TypeError(type(o))
        Path(args.json).write_text(json.dumps({k: {"rows": v["rows"]} for k, v in results.items()}, default=plain,
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

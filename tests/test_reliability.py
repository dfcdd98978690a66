"""Build-side reliability, end to end through the command: a corpus of bad inputs generated
here (never downloaded), class-count extremes, builds killed mid-way, a corrupt feature
cache, and reproducible builds."""

import contextlib
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfjs_transfer import cli, features
from tfjs_transfer.predict import Predictor

from .conftest import MOBILENET_H5, ROOT
from .helpers import make_folders, make_tiny, shape_image

pytestmark = pytest.mark.slow

# A cheap head: these tests are about what the build does with its inputs, not accuracy.
FAST = ("--recipe", "pooled", "--epochs", "2", "--augment-copies", "0")
FEATURES_LOG = re.compile(r"features: (\d+) computed, (\d+) from cache")


@pytest.fixture(scope="module")
def web_dist(tmp_path_factory):
    """A stand-in page bundle: these tests are about the Python side of the site."""
    d = tmp_path_factory.mktemp("web")
    (d / "index.html").write_text("<!doctype html><title>stand-in</title>")
    return d


def build_args(data, out, cache, web_dist, *extra) -> list[str]:
    return ["build", "--data", str(data), "--weights", str(MOBILENET_H5), "--out", str(out),
            *(["--no-cache"] if cache is None else ["--cache", str(cache)]), "--web-dist", str(web_dist), *extra]


def run_build(data, out, cache, web_dist, *extra) -> tuple[int, str, str]:
    """`tfjs-transfer build` in this process: (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(build_args(data, out, cache, web_dist, *extra))
    return code, stdout.getvalue(), stderr.getvalue()


def manifest(site: Path) -> dict:
    return json.loads((site / "manifest.json").read_text(encoding="utf-8"))


def cache_entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.npy"))


def entry_array(p: Path) -> np.ndarray:
    """A cache entry's array (layout: 8-byte magic, 32-byte sha256, .npy payload)."""
    return np.load(io.BytesIO(p.read_bytes()[40:]), allow_pickle=False)


# --- 1. the corpus of bad inputs -----------------------------------------------------------

# path in the dataset -> how the manifest's skip reason starts
BAD = {
    "red/empty.jpg": "cannot decode image",
    "red/empty.png": "cannot decode image",  # the same (zero) bytes as empty.jpg: skipped for the same reason
    "green/truncated.jpg": "cannot decode image (image file is truncated",
    "blue/truncated.png": "cannot decode image (image file is truncated",
    "blue/text.jpg": "cannot decode image (cannot identify image file",
    # ': ' in a name once leaked half the name into the reason
    "blue/broken: not an image.jpg": "cannot decode image (cannot identify image file",
    "red/bomb.png": "refused as a decompression bomb",  # 12000x12000 in 18 KB: 144 MP at ~8000 pixels per byte
    "red/huge.png": "40000x30000 is 1200 megapixels, over the 1000-megapixel limit",  # a bare header
    "green/link-outside.png": "symlink pointing outside the dataset",
    "red/notes.txt": "not an image file extension",
}
# odd but good: kept, decoded to RGB
KEPT = ("red/cmyk.jpg", "green/grey16.png", "blue/animated.gif", "red/rotated.jpg",
        "green/ünïcødé näme 1.png", "green/with spaces 2.png", "blue/same-bytes-as-red0.png")


def make_corpus(tmp: Path) -> Path:
    data = make_folders(tmp / "data", labels=("red", "green", "blue"), per_class=3)
    good_jpg = tmp / "good.jpg"
    shape_image("green", 40, size=128).save(good_jpg, quality=95)
    good_png = (data / "blue" / "blue0.png").read_bytes()
    (data / "red" / "empty.jpg").write_bytes(b"")
    (data / "red" / "empty.png").write_bytes(b"")
    (data / "green" / "truncated.jpg").write_bytes(good_jpg.read_bytes()[: good_jpg.stat().st_size // 2])
    (data / "blue" / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    (data / "blue" / "text.jpg").write_text("a text file, not a JPEG")
    (data / "blue" / "broken: not an image.jpg").write_text("another text file")
    Image.new("1", (12000, 12000)).save(data / "red" / "bomb.png")
    Image.new("1", (30, 40)).save(data / "red" / "huge.png")
    png = bytearray((data / "red" / "huge.png").read_bytes())  # its header made to claim 40000x30000
    png[16:24] = struct.pack(">II", 40000, 30000)
    png[29:33] = struct.pack(">I", zlib.crc32(png[12:29]))
    (data / "red" / "huge.png").write_bytes(png)
    shape_image("red", 40).save(tmp / "outside.png")
    (data / "green" / "link-outside.png").symlink_to(tmp / "outside.png")
    (data / "red" / "notes.txt").write_text("not an image")

    shape_image("red", 41).convert("CMYK").save(data / "red" / "cmyk.jpg", quality=95)
    grey = np.asarray(shape_image("green", 42).convert("L"), np.uint16) * 257
    Image.fromarray(grey).save(data / "green" / "grey16.png")  # mode I;16
    frames = [Image.new("RGB", (40, 40), c) for c in ((40, 60, 220), (220, 30, 30))]
    frames[0].save(data / "blue" / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    stored = Image.new("RGB", (60, 30), (220, 30, 30))  # left half red, right half blue, as stored
    stored.paste((40, 60, 220), (30, 0, 60, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: 30 wide, 60 high, red on top
    stored.save(data / "red" / "rotated.jpg", exif=exif, quality=95)
    shape_image("green", 43).save(data / "green" / "ünïcødé näme 1.png")
    shape_image("green", 44).save(data / "green" / "with spaces 2.png")
    (data / "blue" / "same-bytes-as-red0.png").write_bytes((data / "red" / "red0.png").read_bytes())
    return data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, web_dist):
    """The corpus built once through the command, with a fresh cache and a spy on extraction."""
    tmp = tmp_path_factory.mktemp("corpus")
    data = make_corpus(tmp)
    extracted = []

    def spy(*a, **k):
        extracted.append(real_extract(*a, **k))
        return extracted[-1]

    real_extract = features.extract
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(features, "extract", spy)
        code, out, err = run_build(data, tmp / "site", tmp / "cache", web_dist, *FAST, "--epochs", "10", "--quiet")
    return {"data": data, "site": tmp / "site", "cache": tmp / "cache", "code": code, "stdout": out,
            "stderr": err, "features": extracted[0] if extracted else None}


def test_corpus_builds_and_warns_about_each_bad_file_by_name(corpus):
    assert corpus["code"] == 0, corpus["stderr"]
    assert "Traceback" not in corpus["stderr"] and corpus["stdout"] == ""  # --quiet
    for rel in BAD:
        assert f"warning: skipping {corpus['data'] / rel}: " in corpus["stderr"], rel
    for rel in KEPT:
        assert str(corpus["data"] / rel) not in corpus["stderr"], rel


def test_corpus_manifest_lists_each_skipped_file_with_its_reason(corpus):
    m = manifest(corpus["site"])
    skipped = {Path(s["path"]).relative_to(corpus["data"]).as_posix(): s["reason"] for s in m["dataset"]["skipped"]}
    assert set(skipped) == set(BAD)
    for rel, start in BAD.items():
        assert skipped[rel].startswith(start), (rel, skipped[rel])
    assert m["dataset"]["count"] == 9 + len(KEPT)
    assert m["dataset"]["per_class"] == {"blue": 5, "green": 6, "red": 5}


def test_corpus_keeps_the_odd_but_good_images_as_rgb(corpus):
    site = corpus["site"]
    index = json.loads((site / "images.json").read_text(encoding="utf-8"))
    served = {(e["label"], e["source"]): site / e["path"] for e in index["images"]}
    assert len(served) == len(index["images"]) == 9 + len(KEPT)
    for rel in KEPT:
        label, name = rel.split("/")
        assert (label, name) in served, rel
        with Image.open(served[label, name]) as im:
            assert im.mode == "RGB", rel

    def rgb(label, name):
        with Image.open(served[label, name]) as im:
            return np.asarray(im, np.int16)

    rotated = rgb("red", "rotated.jpg")
    assert rotated.shape == (60, 30, 3)  # EXIF orientation applied to the served image
    assert rotated[5, 15, 0] > 180 and rotated[55, 15, 2] > 180  # red on top, blue below
    grey = rgb("green", "grey16.png")
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert np.abs(grey[..., 0] - np.asarray(shape_image("green", 42).convert("L"), np.int16)).max() <= 1
    assert np.abs(rgb("blue", "animated.gif")[0, 0] - (40, 60, 220)).max() <= 8  # the first frame
    assert np.abs(rgb("red", "cmyk.jpg").mean((0, 1)) - np.asarray(shape_image("red", 41), np.int16).mean((0, 1))).max() < 10


def test_corpus_duplicates_keep_both_labels_and_are_computed_once(corpus):
    index = json.loads((corpus["site"] / "images.json").read_text(encoding="utf-8"))
    sources = {(e["label"], e["source"]) for e in index["images"]}
    assert {("red", "red0.png"), ("blue", "same-bytes-as-red0.png")} <= sources  # one image, two labels
    f = corpus["features"]
    kept = 9 + len(KEPT)
    assert (f.computed, f.cached) == (kept - 1, 1)  # the copy shares the original's features
    names = [s.path.name for s in f.samples]
    i, j = names.index("red0.png"), names.index("same-bytes-as-red0.png")
    np.testing.assert_array_equal(f.features[i], f.features[j])
    assert len(cache_entries(corpus["cache"])) == kept - 1


# --- 2. class counts -----------------------------------------------------------------------

def test_a_class_left_with_one_usable_image_is_refused_by_name_and_two_of_two_work(tmp_path, feature_cache, web_dist):
    data = make_folders(tmp_path / "data", labels=("red", "green"), per_class=2)
    (data / "green" / "green1.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG signature and nothing else
    code, _, err = run_build(data, tmp_path / "site", feature_cache, web_dist, *FAST, "--quiet")
    assert code == 2 and f"warning: skipping {data / 'green' / 'green1.png'}" in err
    assert "error: " in err and "'green' has 1" in err and "'red'" not in err
    assert not (tmp_path / "site").exists()
    shape_image("green", 1).save(data / "green" / "green1.png")  # the smallest trainable dataset: 2 x 2
    code, _, err = run_build(data, tmp_path / "site", feature_cache, web_dist, *FAST, "--quiet")
    assert code == 0, err
    m = manifest(tmp_path / "site")
    assert m["labels"] == ["green", "red"] and m["dataset"]["per_class"] == {"green": 2, "red": 2}


def test_a_hundred_classes_of_two_images(tmp_path, feature_cache, web_dist):
    labels = [f"class {k:03d}" for k in range(100)]
    data = make_tiny(tmp_path / "data", labels, per_class=2)
    code, _, err = run_build(data, tmp_path / "site", feature_cache, web_dist, *FAST, "--quiet")
    assert code == 0, err
    m = manifest(tmp_path / "site")
    assert m["labels"] == labels and m["head"]["layers"][-1]["units"] == 100
    assert m["dataset"]["count"] == 200 and set(m["dataset"]["per_class"].values()) == {2}
    probs = Predictor(tmp_path / "site").probabilities([data / labels[7] / "0.png"])
    assert probs.shape == (1, 100) and abs(probs.sum() - 1) < 1e-4


# --- 3. builds killed mid-way --------------------------------------------------------------

def spawn_build(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "tfjs_transfer.cli", *args], cwd=ROOT, stdout=f,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def kill_when(proc: subprocess.Popen, ready, what: str, timeout: float = 300) -> None:
    """SIGKILL `proc` as soon as ready() holds; fail if the build ended before that moment."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the build ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no sign of {what} after {timeout}s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, f"the build finished before it could be killed {what}"


def assert_previous_site_intact(out: Path, before: bytes, image: Path) -> None:
    assert (out / "manifest.json").read_bytes() == before
    assert json.loads((out.parent / f"{out.name}.python" / "models.json").read_text())["fingerprint"] == \
        manifest(out)["fingerprint"]
    probs = Predictor(out).probabilities([image])
    assert probs.shape == (1, 2) and abs(probs.sum() - 1) < 1e-4


def test_killed_builds_leave_the_previous_site_and_the_next_build_reuses_their_work(tmp_path, feature_cache, web_dist):
    out = tmp_path / "site"
    small = make_folders(tmp_path / "small", labels=("red", "green"), per_class=3)
    code, _, err = run_build(small, out, feature_cache, web_dist, *FAST, "--quiet")
    assert code == 0, err
    before = (out / "manifest.json").read_bytes()
    # two chunks of extraction (256 images each), so features are cached while more remain to compute
    big = make_tiny(tmp_path / "big", ("red", "green"), per_class=200)
    cache = tmp_path / "cache"
    args = build_args(big, out, cache, web_dist, *FAST)
    staging = lambda: sorted(tmp_path.glob(".site.building-*"))

    # (a) killed mid-extraction: the first chunk's features are in the cache, the rest are not
    proc = spawn_build(args, tmp_path / "a.log")
    kill_when(proc, lambda: any(cache.rglob("*.npy")), "mid-extraction")
    done_a = len(cache_entries(cache))
    assert 0 < done_a < 400, done_a
    assert staging() == []  # staging only starts after training
    assert_previous_site_intact(out, before, small / "red" / "red0.png")

    # (b) killed mid-conversion: its staging folder holds the site's models/ already
    proc = spawn_build(args, tmp_path / "b.log")
    kill_when(proc, lambda: any(p.is_dir() for p in tmp_path.glob(".site.building-*/site/models")), "mid-conversion")
    log_b = (tmp_path / "b.log").read_text(errors="replace")
    computed, cached = map(int, FEATURES_LOG.search(log_b).groups())
    assert cached == done_a and computed == 400 - done_a, log_b
    left = staging()
    assert len(left) == 1 and left[0].name.startswith(f".site.building-{proc.pid}-")  # left behind by SIGKILL
    assert_previous_site_intact(out, before, small / "red" / "red0.png")

    # the next build completes from the cache and clears the dead build's staging folder
    code, stdout, err = run_build(big, out, cache, web_dist, *FAST)
    assert code == 0, err
    assert FEATURES_LOG.search(stdout).groups() == ("0", "400")
    assert staging() == [] and not list(tmp_path.glob(".site.*"))  # nor moved-aside folders, nor the lock
    assert manifest(out)["dataset"]["count"] == 400
    assert Predictor(out).probabilities([big / "red" / "0.png"]).shape == (1, 2)


# --- 4. a corrupt cache entry --------------------------------------------------------------

def test_a_corrupt_cache_entry_is_reported_recomputed_and_equal(tmp_path, web_dist):
    data = make_folders(tmp_path / "data", labels=("red", "green"), per_class=3)
    cache = tmp_path / "cache"
    code, _, err = run_build(data, tmp_path / "clean", cache, web_dist, *FAST, "--quiet")
    assert code == 0, err
    clean = {p: entry_array(p) for p in cache_entries(cache)}
    assert len(clean) == 6
    victim = sorted(clean)[2]
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    blob[-1] ^= 0x01
    victim.write_bytes(bytes(blob))
    code, stdout, err = run_build(data, tmp_path / "again", cache, web_dist, *FAST)
    assert code == 0, err
    assert f"warning: corrupt feature cache entry {victim} (checksum mismatch); recomputing" in err
    assert FEATURES_LOG.search(stdout).groups() == ("1", "5")
    assert cache_entries(cache) == sorted(clean)
    # the recomputed view ran alone, the clean ones in a batch of 6: TF's CPU kernels do not
    # promise the same sums for every batch size (3.2e-5 apart on an AVX2 host; within 1e-5 on
    # the AVX-512 hosts before), and a wrong entry would be off by far more
    for p, arr in clean.items():
        np.testing.assert_allclose(entry_array(p), arr, atol=1e-4, err_msg=str(p))
    images = sorted(data.rglob("*.png"))
    np.testing.assert_allclose(Predictor(tmp_path / "again").probabilities(images),
                               Predictor(tmp_path / "clean").probabilities(images), atol=1e-5)


# --- 5. determinism ------------------------------------------------------------------------

# Differ between two builds of the same inputs by nature: when and how long. Everything else
# (fingerprint, dataset, training history and metrics, model sizes, versions) must be equal.
VOLATILE = ("built_at", "timings")


def test_the_same_inputs_and_seed_build_the_same_site(tmp_path, web_dist):
    data = make_folders(tmp_path / "data", labels=("red", "green"), per_class=5)
    extra = ("--epochs", "4", "--augment-copies", "1", "--seed", "3", "--quiet")
    # one build in a fresh process, one here; neither uses a cache, so features are computed twice
    # the same OUT name in two folders: the manifest names the Python folder beside the site by it
    site_a, site_b = tmp_path / "a" / "site", tmp_path / "b" / "site"
    site_a.parent.mkdir()
    site_b.parent.mkdir()
    r = subprocess.run([sys.executable, "-m", "tfjs_transfer.cli", *build_args(data, site_a, None, web_dist, *extra)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from tfjs_transfer import heads

    heads.build_head([{"type": "dense", "units": 2}], (4,))  # as if this process had built a head before
    code, _, err = run_build(data, site_b, None, web_dist, *extra)
    assert code == 0, err
    a, b = manifest(site_a), manifest(site_b)
    for k in VOLATILE:
        a.pop(k), b.pop(k)
    assert a == b
    for rel in ("models/backbone", "models/head", "images"):
        files = sorted(p.relative_to(site_a) for p in (site_a / rel).rglob("*") if p.is_file())
        assert files and all((site_a / f).read_bytes() == (site_b / f).read_bytes() for f in files), rel
    images = sorted(data.rglob("*.png"))
    np.testing.assert_allclose(Predictor(site_a).probabilities(images), Predictor(site_b).probabilities(images),
                               atol=1e-6)

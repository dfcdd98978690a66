"""Feature extraction on Apache Beam (FnApiRunner, in-process) against the in-process path: the
same cache entries, only the missing ones computed on a rerun, bad files reported alike."""

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from tfjs_transfer import cli, dataset, features
from tfjs_transfer.augment import Augmentation

from .conftest import BRAND_TRAIN, MOBILENET_H5, ROOT
from .helpers import make_folders

AUGMENT = Augmentation(copies=1)  # two views an image: the augmented path is covered, the test stays short
WARNING = re.compile(r"^warning: skipping .*$", re.M)


@pytest.fixture(scope="module")
def beam():
    pytest.importorskip("apache_beam")
    from tfjs_transfer import beam_extract

    return beam_extract


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """~200 files: the 90 logos and a rotated copy of each (180 contents), 12 duplicates under
    other names and classes, 3 undecodable files (2 contents), a name Beam's glob would
    misread, and a symlink out of the dataset."""
    root = tmp_path_factory.mktemp("beam") / "data"
    logos = sorted(BRAND_TRAIN.iterdir())
    labels = sorted({src.stem.rsplit("-", 1)[0] for src in logos})
    for label in labels:
        (root / label).mkdir(parents=True)
    for i, src in enumerate(logos):
        label = src.stem.rsplit("-", 1)[0]
        shutil.copy(src, root / label / src.name)
        with Image.open(src) as im:
            im.convert("RGB").transpose(Image.Transpose.ROTATE_90).save(root / label / f"{src.stem}-r.png")
        if i % 8 == 0:
            other = "windows" if label != "windows" else "apple"
            shutil.copy(src, root / other / f"dup-{src.name}")
    (root / "apple" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (root / "android" / "broken-copy.jpg").write_bytes(b"not a jpeg at all")
    png = (root / "android" / f"{logos[0].stem}-r.png").read_bytes()
    (root / "windows" / "truncated.png").write_bytes(png[: len(png) // 3])
    shutil.copy(logos[1], root / "windows" / "odd [1] *.jpg")
    outside = root.parent / "outside.jpg"
    shutil.copy(logos[2], outside)
    (root / "apple" / "link.jpg").symlink_to(outside)
    return root


@pytest.fixture(scope="module")
def served():
    """The backbone as the build serves it (folded), like build.py step 3."""
    from tfjs_transfer import backbones, fold

    bb = backbones.load_backbone(None, str(MOBILENET_H5))
    folded, _ = fold.fold_batch_norms(bb.model)
    return bb, folded


def run_beam(beam, bb, model, samples, cache, **kw):
    return beam.run(bb, beam.local_patterns(s.path for s in samples), cache, model, "folded", AUGMENT,
                    ["--runner", "FnApiRunner"], **kw)


@pytest.mark.slow
def test_beam_fills_the_cache_the_build_reads_with_equal_features(beam, data, served, tmp_path, capfd):
    bb, model = served
    ds = dataset.scan(data)
    assert any("outside the dataset" in s.reason for s in ds.skipped)  # never listed, never read
    capfd.readouterr()
    counts = run_beam(beam, bb, model, ds.samples, tmp_path / "cache")
    beam_warnings = sorted(WARNING.findall(capfd.readouterr().err))
    unique = len({features.file_digest(s.path) for s in ds.samples})
    assert counts["files"] == len(ds.samples) and counts["duplicates"] == len(ds.samples) - unique
    assert counts["undecodable"] == 3 and counts["computed"] == (unique - 2) * 2 and counts["cached"] == 0

    from_cache = features.extract(bb, ds.samples, tmp_path / "cache", augment=AUGMENT, verbose=0,
                                  model=model, model_tag="folded")
    local_warnings = sorted(WARNING.findall(capfd.readouterr().err))
    assert from_cache.computed == 0 and from_cache.cached == (len(ds.samples) - 3) * 2
    in_process = features.extract(bb, ds.samples, None, augment=AUGMENT, verbose=0, model=model, model_tag="folded")
    np.testing.assert_allclose(from_cache.features, in_process.features, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(from_cache.augmented, in_process.augmented, rtol=1e-5, atol=1e-5)
    # the same lines as the in-process build prints, one per undecodable file
    assert beam_warnings == local_warnings and len(beam_warnings) == 3
    assert {p.name for p in (tmp_path / "cache").rglob(".tmp-*")} == set()


@pytest.mark.slow
def test_a_rerun_computes_only_what_an_interrupted_run_left(beam, data, served, tmp_path, monkeypatch):
    bb, model = served
    samples = dataset.scan(data).samples
    unique = len({features.file_digest(s.path) for s in samples}) - 2  # decodable contents
    first = run_beam(beam, bb, model, samples[: len(samples) // 3], tmp_path / "cache", report=False)
    assert first["computed"] > 0

    # then a run killed part way: the write step fails after 40 more entries
    put, written = features.ViewCache.put, []

    def failing_put(self, digest, view, f):
        if len(written) == 40:
            raise RuntimeError("killed")
        put(self, digest, view, f)
        written.append((digest, view))

    monkeypatch.setattr(features.ViewCache, "put", failing_put)
    with pytest.raises(Exception, match="killed"):
        run_beam(beam, bb, model, samples, tmp_path / "cache", report=False)
    monkeypatch.undo()
    assert len(written) == 40

    again = run_beam(beam, bb, model, samples, tmp_path / "cache", report=False)
    assert again["computed"] == unique * 2 - first["computed"] - 40
    assert again["cached"] == first["computed"] + 40
    last = run_beam(beam, bb, model, samples, tmp_path / "cache", report=False)
    assert (last["computed"], last["cached"]) == (0, unique * 2)


def test_without_apache_beam_the_commands_say_how_to_get_it(tmp_path, monkeypatch, capsys):
    import sys

    import tfjs_transfer

    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam -> ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "tfjs_transfer.beam_extract", raising=False)
    monkeypatch.delattr(tfjs_transfer, "beam_extract", raising=False)
    data = tmp_path / "d"
    data.mkdir()
    assert cli.main(["extract", "--data", str(data), "--cache", str(tmp_path / "c"), "--weights", "none"]) == 2
    assert capsys.readouterr().err == "error: apache-beam is not installed; install the beam extra: " \
                                      "pip install 'tfjs-transfer[beam]'\n"
    assert cli.main(["build", "--data", str(data), "--weights", "none", "--out", str(tmp_path / "s"),
                     "--runner", "beam"]) == 2
    assert "install the beam extra" in capsys.readouterr().err


def test_runner_beam_refuses_no_cache(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    assert cli.main(["build", "--data", str(data), "--weights", "none", "--out", str(tmp_path / "s"),
                     "--runner", "beam", "--no-cache"]) == 2
    assert capsys.readouterr().err.startswith("error: --runner beam fills the feature cache")


def test_the_default_path_never_imports_beam():
    import subprocess
    import sys

    code = ("import sys; from tfjs_transfer import build, cli; cli.parser(); "
            "sys.exit('apache_beam' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.slow
def test_build_runner_beam_extracts_on_beam_then_builds_from_the_cache(beam, tmp_path, capsys):
    data = make_folders(tmp_path / "data", labels=("red", "green"), per_class=4)
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>stand-in</title>")
    assert cli.main(["build", "--data", str(data), "--weights", str(MOBILENET_H5), "--out", str(tmp_path / "site"),
                     "--cache", str(tmp_path / "cache"), "--web-dist", str(web), "--recipe", "pooled",
                     "--augment-copies", "1", "--epochs", "2", "--runner", "beam",
                     "--beam-options", "--runner FnApiRunner"]) == 0
    out = capsys.readouterr().out
    assert "features on Beam: 16 views computed, 0 from cache, 8 files" in out
    assert "features: 0 computed, 16 from cache" in out
    assert (tmp_path / "site" / "manifest.json").exists()


@pytest.mark.slow
def test_a_project_zip_is_read_in_place_on_beam_like_in_process(beam, served, tmp_path, capfd):
    """--data x.zip --runner beam: the zip's entries enter the pipeline beside listed files,
    with the in-process path's digests, features and warnings (naming the zip and the entry)."""
    import zipfile

    bb, model = served
    logos = sorted(BRAND_TRAIN.iterdir())[::9]
    zpath = tmp_path / "p.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for src in logos:
            zf.writestr(f"{src.stem.rsplit('-', 1)[0]}/{src.name}", src.read_bytes())
        zf.writestr(f"apple/dup-{logos[0].name}", logos[0].read_bytes())
        zf.writestr("apple/broken.png", b"not a png")
    ds = dataset.scan(zpath)
    assert len(ds.samples) == len(logos) + 2
    capfd.readouterr()
    counts = run_beam(beam, bb, model, ds.samples, tmp_path / "cache")
    # Pillow's reason names the reader object by its address: the same words, another address
    found = lambda err: sorted(re.sub(r" at 0x[0-9a-f]+", "", w) for w in WARNING.findall(err))
    beam_warnings = found(capfd.readouterr().err)
    assert (counts["files"], counts["duplicates"], counts["undecodable"]) == (len(logos) + 2, 1, 1)
    assert counts["computed"] == len(logos) * 2
    from_cache = features.extract(bb, ds.samples, tmp_path / "cache", augment=AUGMENT, verbose=0,
                                  model=model, model_tag="folded")
    assert from_cache.computed == 0 and beam_warnings == found(capfd.readouterr().err)
    assert beam_warnings == [f"warning: skipping {zpath}/apple/broken.png: " + beam_warnings[0].split(": ", 2)[2]]
    in_process = features.extract(bb, ds.samples, None, augment=AUGMENT, verbose=0, model=model, model_tag="folded")
    np.testing.assert_allclose(from_cache.features, in_process.features, rtol=1e-5, atol=1e-5)

"""A project made in the page as a build's --data: its zip read in place (or unzipped), the
project file's class order, names and roles honoured, and hostile archives refused or their
bad entries skipped, each naming the zip and the entry."""

import io
import json
import stat
import struct
import zipfile

import numpy as np
import pytest

from tfjs_transfer import archive, cli, dataset, features, project
from tfjs_transfer.errors import UserError

from .conftest import BRAND_TEST, BRAND_TRAIN, MOBILENET_H5
from .helpers import shape_image


def png_bytes(label: str, i: int) -> bytes:
    buf = io.BytesIO()
    shape_image(label, i).save(buf, "PNG")
    return buf.getvalue()


def project_spec(classes, examples):
    return {"format": project.FORMAT, "name": "test", "created_by": "tfjs-transfer page",
            "classes": [{"name": n, "folder": f} for n, f in classes],
            "examples": [{"path": p, "role": r} for p, r in examples]}


def write_zip(path, entries, spec=None):
    """entries: {name: bytes}; spec: project.json's object (or None)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if spec is not None:
            zf.writestr(project.FILENAME, json.dumps(spec))
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


# Red is "Red: warm/bright" in the page, kept in the safe folder "Red_ warm_bright"; the
# project lists green first: neither the folder names nor their sorted order are the labels.
CLASSES = [("green", "green"), ("Red: warm/bright", "Red_ warm_bright")]


def small_project(tmp_path, **extra_entries):
    entries, examples = {}, []
    for name, folder in CLASSES:
        for i in range(4):
            path = f"{folder}/{i}.png"
            entries[path] = png_bytes("green" if name == "green" else "red", i)
            examples.append((path, "valid" if i == 3 else "train"))
    entries.update(extra_entries)
    return write_zip(tmp_path / "p.zip", entries, project_spec(CLASSES, examples)), entries, examples


def test_project_file_sets_class_order_names_and_roles(tmp_path):
    zpath, _, examples = small_project(tmp_path, **{"green/notes.txt": b"hi", "green/extra.png": png_bytes("green", 9)})
    ds = dataset.scan(zpath)
    assert ds.layout == "project"
    assert ds.labels == ["green", "Red: warm/bright"]
    assert [(s.path.member, s.split) for s in ds.samples] == examples
    assert {s.label for s in ds.samples if s.path.member.startswith("Red_")} == {"Red: warm/bright"}
    reasons = {s.path.member: s.reason for s in ds.skipped}
    assert reasons == {"green/extra.png": "not listed in project.json", "green/notes.txt": "not listed in project.json"}
    assert str(ds.skipped[0].path).startswith(f"{zpath}/")


def test_an_unzipped_project_folder_reads_the_same(tmp_path):
    zpath, _, _ = small_project(tmp_path)
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(zpath).extractall(folder)
    from_zip, from_folder = dataset.scan(zpath), dataset.scan(folder)
    assert from_folder.layout == "project" and from_folder.labels == from_zip.labels
    assert [(str(s.path.relative_to(folder)), s.label, s.split) for s in from_folder.samples] == \
           [(s.path.member, s.label, s.split) for s in from_zip.samples]


def test_a_zip_without_project_file_is_class_folders_even_wrapped_in_one_folder(tmp_path):
    entries = {f"export/{c}/{i}.png": png_bytes(c, i) for c in ("red", "blue") for i in range(2)}
    entries["export/readme.txt"] = b"top-level file"
    entries["__MACOSX/export/._x"] = b"resource fork"
    ds = dataset.scan(write_zip(tmp_path / "c.zip", entries))
    assert ds.layout == "folders" and ds.labels == ["blue", "red"]
    assert {s.split for s in ds.samples} == {"train"} and len(ds.samples) == 4
    assert [s.reason for s in ds.skipped] == ["file outside any class folder ignored"]


def test_utf8_names_match_project_json_with_or_without_the_zip_utf8_flag(tmp_path):
    classes = [("Café ☕", "Café ☕"), ("thé", "thé")]
    entries = {f"{f}/{i}.png": png_bytes("red" if n == "thé" else "blue", i) for n, f in classes for i in range(2)}
    spec = project_spec(classes, [(p, "train") for p in entries])
    zpath = write_zip(tmp_path / "u.zip", entries, spec)
    assert dataset.scan(zpath).labels == ["Café ☕", "thé"]
    raw = bytearray(zpath.read_bytes())
    for sig, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # clear the UTF-8 flag everywhere
        at = raw.find(sig)
        while at >= 0:
            struct.pack_into("<H", raw, at + flags_at, struct.unpack_from("<H", raw, at + flags_at)[0] & ~0x800)
            at = raw.find(sig, at + 4)
    zpath.write_bytes(bytes(raw))
    with zipfile.ZipFile(zpath) as zf:
        assert "Café ☕/0.png" not in zf.namelist()  # zipfile now reads the names as cp437
    ds = dataset.scan(zpath)
    assert ds.labels == ["Café ☕", "thé"] and len(ds.samples) == 4
    assert dataset.load_rgb(ds.samples[0].path).shape == (64, 64, 3)


def test_an_entry_decodes_and_digests_exactly_like_the_same_file(tmp_path):
    """Same bytes, same pixels, same digest: the feature cache is shared with a folder."""
    src = sorted(BRAND_TRAIN.iterdir())[0]
    zpath = write_zip(tmp_path / "x.zip", {f"android/{src.name}": src.read_bytes()})
    member = dataset.scan(zpath).samples[0].path
    assert isinstance(member, archive.ZipMember)
    assert np.array_equal(dataset.load_rgb(member), dataset.load_rgb(src))
    assert features.file_digest(member) == features.file_digest(src)


def test_a_large_photo_in_a_zip_is_decoded_reduced_like_a_file(tmp_path):
    buf = io.BytesIO()
    shape_image("red", 0, size=2400).save(buf, "JPEG", quality=90)
    zpath = write_zip(tmp_path / "big.zip", {"red/big.jpg": buf.getvalue()})
    rgb = dataset.load_rgb(archive.ZipMember(zpath, "red/big.jpg"))
    assert dataset.MIN_SIDE <= min(rgb.shape[:2]) < 2 * dataset.MIN_SIDE


def test_a_class_without_enough_training_examples_is_named(tmp_path):
    zpath, entries, examples = small_project(tmp_path)
    spec = project_spec(CLASSES + [("empty one", "empty one")], examples)
    write_zip(zpath, entries, spec)
    with pytest.raises(UserError, match=r"at least 2 usable training images; 'empty one' has 0"):
        dataset.scan(zpath).check_trainable()


# ---------- hostile archives: the whole input refused, one line naming the zip and the entry ----------

@pytest.mark.parametrize("name, problem", [
    ("../evil/0.png", "escapes its folder"),
    ("red/../../0.png", "escapes its folder"),
    ("/etc/red/0.png", "absolute path"),
    ("C:/red/0.png", "drive letter"),
    ("red\\..\\0.png", "backslash"),
])
def test_entries_escaping_their_folder_refuse_the_zip(tmp_path, capsys, name, problem):
    entries = {f"red/{i}.png": png_bytes("red", i) for i in range(2)}
    entries.update({f"blue/{i}.png": png_bytes("blue", i) for i in range(2)})
    entries[name] = png_bytes("red", 5)
    zpath = write_zip(tmp_path / "evil.zip", entries)
    assert cli.main(["build", "--data", str(zpath), "--weights", "none", "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {zpath}: entry '{name}'") and problem in err[0]
    assert not (tmp_path / "site").exists() and not (tmp_path / "evil").exists()


def craft(path, infos):
    """A zip of (ZipInfo, bytes) written as given."""
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in infos:
            zf.writestr(info, data)
    return path


def info(name, *, mode=None, compress=zipfile.ZIP_STORED):
    i = zipfile.ZipInfo(name)
    i.compress_type = compress
    if mode is not None:
        i.external_attr = mode << 16
    return i


def test_symlinks_nested_zips_encrypted_and_non_images_are_skipped_by_name(tmp_path):
    good = [(info(f"{c}/{i}.png"), png_bytes(c, i)) for c in ("red", "blue") for i in range(2)]
    zpath = craft(tmp_path / "mixed.zip", good + [
        (info("red/link.png", mode=stat.S_IFLNK | 0o777), b"/etc/passwd"),
        (info("red/inner.zip"), b"PK\x05\x06" + b"\0" * 18),
        (info("blue/notes.txt"), b"text"),
    ])
    with zipfile.ZipFile(zpath, "a") as zf:  # zipfile cannot encrypt; the flag is what readers go by
        enc = info("blue/secret.png")
        zf.writestr(enc, png_bytes("blue", 7))
    raw = bytearray(zpath.read_bytes())
    at = raw.find(b"PK\x01\x02")
    while raw[at + 46:at + 46 + len(b"blue/secret.png")] != b"blue/secret.png":
        at = raw.find(b"PK\x01\x02", at + 4)
    struct.pack_into("<H", raw, at + 8, struct.unpack_from("<H", raw, at + 8)[0] | 1)  # central entry's flags
    zpath.write_bytes(bytes(raw))
    ds = dataset.scan(zpath)
    assert len(ds.samples) == 4
    reasons = {s.path.member: s.reason for s in ds.skipped}
    assert reasons == {"red/link.png": "a symlink inside the zip, not followed",
                       "red/inner.zip": "a nested archive, not opened",
                       "blue/notes.txt": "not an image file extension",
                       "blue/secret.png": "an encrypted zip entry"}


def test_a_zip_bomb_is_refused_from_its_central_directory(tmp_path, monkeypatch):
    zeros = b"\0" * (4 * 1024 * 1024)  # deflates about 1000:1
    zpath = write_zip(tmp_path / "bomb.zip", {"red/0.png": png_bytes("red", 0), "red/big.bmp": zeros})
    with pytest.raises(UserError, match=r"bomb.zip: entry 'red/big.bmp' is compressed [\d,]+:1, over the limit of 100:1"):
        dataset.scan(zpath)
    monkeypatch.setattr(archive, "MAX_RATIO", 10_000)
    monkeypatch.setattr(archive, "MAX_ENTRY_BYTES", 1024 * 1024)
    with pytest.raises(UserError, match=r"entry 'red/big.bmp' unpacks to 4,194,304 bytes, over the limit"):
        dataset.scan(zpath)
    monkeypatch.setattr(archive, "MAX_ENTRY_BYTES", 8 * 1024 * 1024)
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 4 * 1024 * 1024)
    with pytest.raises(UserError, match=r"over 4,194,304 bytes in all, at entry 'red/big.bmp'"):
        dataset.scan(zpath)


def test_an_entry_whose_header_understates_its_size_is_read_only_that_far(tmp_path):
    """Headers can lie: reading stops at the declared size and the entry is refused as corrupt."""
    real = b"\0" * (8 * 1024 * 1024)
    zpath = write_zip(tmp_path / "liar.zip", {"red/0.bmp": real, "red/1.png": png_bytes("red", 1)})
    raw = bytearray(zpath.read_bytes())
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        at = raw.find(sig)
        struct.pack_into("<I", raw, at + size_at, 1000)
    zpath.write_bytes(bytes(raw))
    member = archive.ZipMember(zpath, "red/0.bmp")
    with member.open() as f:
        with pytest.raises(OSError, match="corrupt zip entry"):
            while f.read(64 * 1024):
                assert f.tell() <= 1000
    with pytest.raises(UserError, match=r"liar.zip/red/0.bmp: cannot decode image \(corrupt zip entry"):
        dataset.load_rgb(member)
    with pytest.raises(OSError, match="corrupt zip entry"):  # the build's digest skips it as unreadable
        features.file_digest(member)


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s["examples"].append({"path": "green/missing.png", "role": "train"}),
     r"project.json lists 'green/missing.png', which is not in"),
    (lambda s: s["examples"][0].update(role="holdout"), r"role 'holdout'; expected one of train, valid, test"),
    (lambda s: s["classes"].append({"name": "green", "folder": "green2"}), r"class 'green' is listed twice"),
    (lambda s: s["classes"][1].update(folder="../up"), r"not a plain folder name"),
    (lambda s: s["examples"][0].update(path="nowhere/0.png"), r"in folder 'nowhere', which no class has"),
    (lambda s: s.update(format="tfjs-transfer-project/9"), r"format 'tfjs-transfer-project/9'"),
])
def test_a_project_file_that_contradicts_the_files_refuses_the_whole_input(tmp_path, mutate, message):
    zpath, entries, examples = small_project(tmp_path)
    spec = project_spec(CLASSES, examples)
    mutate(spec)
    write_zip(zpath, entries, spec)
    with pytest.raises(UserError, match=message):
        dataset.scan(zpath)


def test_corrupt_zips_and_duplicate_entries_are_refused(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(UserError, match=r"broken.zip: not a readable zip"):
        dataset.scan(bad)
    with zipfile.ZipFile(tmp_path / "dup.zip", "w") as zf:
        zf.writestr("red/0.png", png_bytes("red", 0))
        with pytest.warns(UserWarning):
            zf.writestr("red/0.png", png_bytes("red", 1))
    with pytest.raises(UserError, match=r"dup.zip: entry 'red/0.png' appears twice"):
        dataset.scan(tmp_path / "dup.zip")
    (tmp_path / "junk.zip").write_text("{}")
    with pytest.raises(UserError, match="junk.zip: not a readable zip"):
        dataset.scan(tmp_path / "junk.zip")
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr(project.FILENAME, "{not json")
    with pytest.raises(UserError, match=r"bad.zip: project.json is not readable JSON"):
        dataset.scan(tmp_path / "bad.zip")


# ---------- end to end: the page's project zip -> build -> the site the page opens ----------

LOGO_CLASSES = [("Windows (Microsoft)", "Windows (Microsoft)"), ("Apple: macOS/iOS", "Apple_ macOS_iOS"),
                ("android", "android")]


@pytest.mark.slow
def test_build_from_a_project_zip_keeps_its_classes_order_and_roles(tmp_path, feature_cache):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>stand-in</title>")
    entries, examples = {}, []
    for name, folder in LOGO_CLASSES:
        stem = name.split()[0].split(":")[0].lower()
        for i in range(30):
            path = f"{folder}/{stem}-{i}.jpg"
            entries[path] = (BRAND_TRAIN / f"{stem}-{i}.jpg").read_bytes()
            examples.append((path, "valid" if i % 6 == 0 else "test" if i % 10 == 9 else "train"))
    zpath = write_zip(tmp_path / "project.zip", entries, project_spec(LOGO_CLASSES, examples))
    out = tmp_path / "site"
    assert cli.main(["build", "--data", str(zpath), "--weights", str(MOBILENET_H5), "--out", str(out),
                     "--cache", str(feature_cache), "--web-dist", str(web), "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["labels"] == [n for n, _ in LOGO_CLASSES]
    assert m["dataset"]["layout"] == "project" and m["dataset"]["per_split"] == {"train": 66, "valid": 15, "test": 9}
    assert m["training"]["metrics"]["val_count"] == 15 and m["training"]["metrics"]["test_count"] == 9
    images = json.loads((out / "images.json").read_text())
    role_of = dict(examples)
    folder_of = {n: f for n, f in LOGO_CLASSES}
    assert images["labels"] == m["labels"]
    assert [e["role"] for e in images["images"]] == \
           [role_of[f"{folder_of[e['label']]}/{e['source']}"] for e in images["images"]]
    from tfjs_transfer.predict import Predictor

    predicted = Predictor(out).predict([BRAND_TEST / "android.jpg", BRAND_TEST / "windows.png"], top_k=1)
    assert [r["top"][0]["label"] for r in predicted] == ["android", "Windows (Microsoft)"]
    # evaluate reads the same zip: its test-role images, under the project's class names
    from tfjs_transfer.evaluate import evaluate

    report = evaluate(out, zpath)
    assert report["split"] == "test" and report["count"] == 9 and report["labels"] == m["labels"]

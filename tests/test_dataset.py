import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfjs_transfer import dataset
from tfjs_transfer.errors import UserError

from .conftest import BRAND_TRAIN, MOBILENET_H5, ROOT, SIGN_DIGITS
from .helpers import make_flat, make_folders, make_splits, shape_image


def test_flat_layout_of_the_original_tutorial():
    ds = dataset.scan(BRAND_TRAIN)
    assert ds.layout == "flat"
    assert ds.labels == ["android", "apple", "windows"]
    assert ds.counts() == {"android": 30, "apple": 30, "windows": 30}


def test_folder_per_class_layout_is_sorted_and_stable():
    ds = dataset.scan(SIGN_DIGITS)
    assert ds.layout == "folders"
    assert ds.labels == [str(i) for i in range(10)]
    assert len(ds.samples) == 418
    assert [s.path for s in ds.samples] == [s.path for s in dataset.scan(SIGN_DIGITS).samples]


def test_splits_layout(tmp_path):
    ds = dataset.scan(make_splits(tmp_path / "d"))
    assert ds.layout == "splits"
    assert ds.counts("train") == {"green": 6, "red": 6}
    assert len(ds.split("valid")) == 4 and len(ds.split("test")) == 4


def test_val_is_an_alias_and_unknown_test_class_is_refused(tmp_path):
    root = make_splits(tmp_path / "d", counts=(("train", 3), ("val", 1)))
    assert len(dataset.scan(root).split("valid")) == 2
    (root / "val" / "purple").mkdir()
    shape_image("purple", 0).save(root / "val" / "purple" / "x.png")
    with pytest.raises(UserError, match="purple.*not in train"):
        dataset.scan(root)


def test_flat_names_that_do_not_parse_are_reported(tmp_path):
    root = make_flat(tmp_path / "d")
    (root / "notes.txt").write_text("hi")
    shape_image("red", 0).save(root / "nolabel.png")
    ds = dataset.scan(root)
    reasons = {s.path.name: s.reason for s in ds.skipped}
    assert "not an image" in reasons["notes.txt"] and "label-N" in reasons["nolabel.png"]


@pytest.mark.parametrize("problem", ["missing", "file", "empty"])
def test_unusable_roots_are_refused_with_the_path(tmp_path, problem):
    root = tmp_path / "d"
    if problem == "file":
        root.write_text("x")
    elif problem == "empty":
        root.mkdir()
    with pytest.raises(UserError, match=str(root)):
        dataset.scan(root)


def test_trainability_checks_name_the_class(tmp_path):
    one = dataset.scan(make_folders(tmp_path / "one", labels=("red",)))
    with pytest.raises(UserError, match="at least 2 classes"):
        one.check_trainable()
    root = make_folders(tmp_path / "few", labels=("red", "green"))
    for p in list((root / "green").iterdir())[1:]:
        p.unlink()
    with pytest.raises(UserError, match="'green' has 1"):
        dataset.scan(root).check_trainable()


def test_symlink_outside_the_dataset_is_not_followed(tmp_path):
    root = make_folders(tmp_path / "d", labels=("red", "green"), per_class=2)
    outside = tmp_path / "outside.png"
    shape_image("blue", 0).save(outside)
    (root / "red" / "link.png").symlink_to(outside)
    ds = dataset.scan(root)
    assert all(s.path.name != "link.png" for s in ds.samples)
    assert any("outside the dataset" in s.reason for s in ds.skipped)


def _save(tmp_path, name, im, **kw):
    p = tmp_path / name
    im.save(p, **kw)
    return p


def test_decoding_makes_rgb_from_every_mode(tmp_path):
    base = shape_image("red", 0)
    rgba = base.convert("RGBA")
    rgba.putalpha(0)  # fully transparent -> white
    cases = {
        "palette.png": base.convert("P"),
        "grey.png": base.convert("L"),
        "cmyk.jpg": base.convert("CMYK"),
        "alpha.png": rgba,
        "i16.png": Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257)),
    }
    for name, im in cases.items():
        a = dataset.load_rgb(_save(tmp_path, name, im))
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3, name
    assert dataset.load_rgb(tmp_path / "alpha.png").min() == 255
    grey16 = dataset.load_rgb(tmp_path / "i16.png")
    assert np.abs(grey16[..., 0].astype(int) - np.asarray(base.convert("L"), int)).max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    p = tmp_path / "rotated.jpg"
    im.save(p, exif=exif)
    assert dataset.load_rgb(p).shape == (40, 20, 3)


@pytest.mark.parametrize("content,reason", [
    (b"", "cannot decode"),
    (b"this is text, not a jpeg", "cannot decode"),
])
def test_undecodable_files_name_path_and_problem(tmp_path, content, reason):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(UserError, match=f"{p}: {reason}"):
        dataset.load_rgb(p)


def test_truncated_jpeg_is_refused(tmp_path):
    good = _save(tmp_path, "good.jpg", shape_image("red", 0, size=128), quality=95)
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated.jpg"):
        dataset.load_rgb(bad)


def test_decompression_bomb_is_refused_with_the_numbers(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(p)  # 100 megapixels in ~12 KB: ~8000 pixels per byte
    with pytest.raises(UserError, match=rf"{p}: refused as a decompression bomb: 10000x10000 \(100 megapixels\) "
                                        r"from [\d,]+ bytes is \d+ pixels per byte"):
        dataset.load_rgb(p)


def _png(path, width, height, rows=b""):
    """A 1-bit greyscale PNG declaring width x height, its IDAT the given compressed rows (none: a bare header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + (chunk(b"IDAT", rows) if rows else b"") + chunk(b"IEND", b""))
    return path


def test_a_900_megapixel_one_colour_png_is_a_bomb(tmp_path):
    z = zlib.compressobj(9)  # 30000 rows of 30000 black pixels: 110 KB (Pillow takes seconds to write it)
    rows = b"".join(z.compress(bytes(1 + 30000 // 8)) for _ in range(30000)) + z.flush()
    p = _png(tmp_path / "flat.png", 30000, 30000, rows)
    with pytest.raises(UserError, match=rf"{p}: refused as a decompression bomb: 30000x30000 \(900 megapixels\) "
                                        rf"from {p.stat().st_size:,} bytes is \d+ pixels per byte"):
        dataset.load_rgb(p)


def test_over_the_hard_cap_is_refused_whatever_the_file_size(tmp_path):
    p = _png(tmp_path / "huge.png", 40000, 30000)  # a crafted header costs nothing to make
    with pytest.raises(UserError, match=rf"{p}: 40000x30000 is 1200 megapixels, over the 1000-megapixel limit"):
        dataset.load_rgb(p)
    # the rule reads the file's size: were this header backed by 20 MB it would still be refused
    dataset.check_decoding_cost(p, (20000, 20000), 20_000_000)  # 400 MP at 20 px/byte: fine
    with pytest.raises(UserError, match="over the 1000-megapixel limit"):
        dataset.check_decoding_cost(p, (40000, 30000), 500_000_000)
    # Pillow's own limit agrees with ours, so it never refuses first with a vaguer message
    assert Image.MAX_IMAGE_PIXELS == dataset.MAX_PIXELS


def test_the_bomb_rule_spares_small_and_real_images():
    check = dataset.check_decoding_cost
    check(Path("flat.png"), (8000, 8000), 23_000)        # 64 MP flat 1-bit PNG: 2800 px/byte, but cheap
    check(Path("phone.jpg"), (16320, 12240), 21_000_000)  # a 200 MP photo: ~10 px/byte
    check(Path("flat.jpg"), (16320, 12240), 3_100_000)    # even a flat-colour 200 MP JPEG: 64 px/byte
    with pytest.raises(UserError, match="refused as a decompression bomb"):
        check(Path("flat.png"), (9000, 9000), 240_000)    # 81 MP flat RGB PNG: 340 px/byte


def test_a_flat_8000x8000_png_decodes_reduced(tmp_path):
    p = tmp_path / "flat.png"
    Image.new("L", (8000, 8000), 128).save(p)  # 64 megapixels in 80 KB
    a = dataset.load_rgb(p)
    assert a.shape == (616, 616, 3) and (a == 128).all()  # box-reduced by 8000 // MIN_SIDE = 13


def _photo(size, seed=0):
    """A photo-like image: smooth structure, no flat areas (compresses like a photo, ~10 px/byte as JPEG)."""
    rng = np.random.default_rng(seed)
    tile = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return Image.fromarray(tile).resize((size[0] // 16, size[1] // 16), Image.BICUBIC).resize(size, Image.BILINEAR)


def test_a_54_megapixel_phone_jpeg_decodes_reduced_in_the_decoder(tmp_path):
    p = tmp_path / "phone.jpg"
    _photo((9000, 6000)).save(p, quality=90)
    # DCT-scaled by 1/8 while decoding (short side 750 >= MIN_SIDE); a box reduce after a
    # full decode would have divided by 6000 // MIN_SIDE = 10 instead
    assert dataset.load_rgb(p).shape == (750, 1125, 3)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_decoded_short_side_ends_between_min_side_and_twice_it(tmp_path, fmt):
    for w, h in [(599, 400), (1199, 1199), (1600, 1200), (4032, 3024), (9000, 6000)]:
        p = tmp_path / f"{w}x{h}.{fmt}"
        Image.new("RGB", (w, h), (10, 120, 250)).save(p)
        rows, cols, _ = dataset.load_rgb(p).shape
        if min(w, h) < 2 * dataset.MIN_SIDE:
            assert (cols, rows) == (w, h)
        else:
            assert dataset.MIN_SIDE <= min(rows, cols) < 2 * dataset.MIN_SIDE, (w, h, rows, cols)
            assert abs(cols / rows - w / h) < 0.01


def test_small_and_medium_images_are_not_resampled(tmp_path):
    im = _photo((1199, 900))
    im.save(tmp_path / "medium.png")
    np.testing.assert_array_equal(dataset.load_rgb(tmp_path / "medium.png"), np.asarray(im))


def test_large_non_jpeg_is_box_reduced_after_decoding(tmp_path):
    im = _photo((3000, 2000))
    im.save(tmp_path / "large.png", compress_level=1)
    a = dataset.load_rgb(tmp_path / "large.png")
    np.testing.assert_array_equal(a, np.asarray(im.reduce(3)))  # 2000 // 600 = 3


def test_exif_orientation_survives_reduced_decoding(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    p = tmp_path / "rotated.jpg"
    _photo((4800, 2400)).save(p, exif=exif)
    assert dataset.load_rgb(p).shape == (1200, 600, 3)  # stored 4800x2400, decoded at 1/4, shown upright


@pytest.mark.slow
def test_a_200_megapixel_jpeg_decodes_in_bounded_memory(tmp_path):
    """Decoded in a fresh process so its peak memory is this decode's alone."""
    p = tmp_path / "200mp.jpg"
    _photo((16320, 12240)).save(p, quality=90)  # 200 MP, ~20 MB, as a 200 MP phone takes them
    # VmHWM: this process's peak resident memory (ru_maxrss would carry over the forking parent's)
    code = ("import re, sys; from tfjs_transfer import dataset; a = dataset.load_rgb(sys.argv[1]); "
            "print(a.shape, re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])")
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.split()
    assert " ".join(out[:3]) == "(765, 1020, 3)"  # 1/8 in the decoder, then 1/2 by box filter
    # the full image alone would be 600 MB (800 MB in Pillow's RGBX); measured ~70 MB peak
    assert int(out[3]) * 1024 < 250e6


@pytest.mark.slow
def test_features_of_a_large_photo_match_the_same_photo_pre_shrunk(tmp_path):
    """Reduced decoding changes nothing the model sees: a real photo (a sign digit) blown up to
    54 MP with sensor-like noise gives the features of that photo shrunk beforehand. (Decoded
    at full size it would not: the bilinear resize to 224 then aliases, cosine ~0.91.)"""
    from tfjs_transfer import backbones, preprocess

    bb = backbones.load_backbone(None, str(MOBILENET_H5))
    rng = np.random.default_rng(0)
    src = sorted((SIGN_DIGITS / "3").iterdir())[0]
    big = np.asarray(Image.open(src).convert("RGB").resize((9000, 6000), Image.BICUBIC), np.int16)
    big = Image.fromarray(np.clip(big + rng.integers(-8, 9, (6000, 9000, 1), dtype=np.int16), 0, 255).astype(np.uint8))
    big.save(tmp_path / "big.jpg", quality=92)
    big.resize((1500, 1000), Image.LANCZOS).save(tmp_path / "shrunk.jpg", quality=92)

    def features(path):
        x = preprocess.prepare(dataset.load_rgb(path), bb.preprocessing)[None]
        return bb.model.predict(x, verbose=0).ravel()

    a, b = features(tmp_path / "big.jpg"), features(tmp_path / "shrunk.jpg")
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.99


def test_animated_gif_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    a = dataset.load_rgb(p)
    assert a.shape == (16, 16, 3) and a[0, 0, 0] > 200 and a[0, 0, 2] < 50

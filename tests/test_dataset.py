import numpy as np
import pytest
from PIL import Image

from tfjs_transfer import dataset
from tfjs_transfer.errors import UserError

from .conftest import BRAND_TRAIN, SIGN_DIGITS
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


def test_decompression_bomb_is_refused(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(p)  # 100 megapixels, a few KB on disk
    with pytest.raises(UserError, match="too large|bomb"):
        dataset.load_rgb(p)


def test_animated_gif_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    a = dataset.load_rgb(p)
    assert a.shape == (16, 16, 3) and a[0, 0, 0] > 200 and a[0, 0, 2] < 50

"""The served images packed into shards (site.write_images): each image's slice of its shard
is its PNG byte for byte, images.json says where, and a rebuild swaps in a consistent pair."""

import json

from tfjs_transfer import site
from tfjs_transfer.dataset import Sample

from .harness import SHARED

BRAND = SHARED / "brand" / "train"


def brand_samples(n):
    paths = sorted(BRAND.glob("*.jpg"))[:n]
    return [Sample(p, p.name.split("-")[0]) for p in paths]


def check_packs(out):
    """Every entry's pack slice equals its image file; the shards hold nothing else."""
    index = json.loads((out / "images.json").read_text())
    shards = [(out / p).read_bytes() for p in index["packs"]]
    assert index["packs"] == [f"images/pack-{i}.bin" for i in range(len(shards))]
    used = [0] * len(shards)
    for e in index["images"]:
        shard, offset, length = e["pack"]
        assert shards[shard][offset:offset + length] == (out / e["path"]).read_bytes(), e["path"]
        assert offset == used[shard], "slices follow one another"
        used[shard] += length
    assert used == [len(s) for s in shards]
    return index


def test_each_pack_slice_is_the_image_file_byte_for_byte(tmp_path):
    samples = brand_samples(12)
    labels = sorted({s.label for s in samples})
    index = site.write_images(samples, labels, tmp_path, ["train"] * len(samples))
    assert index == json.loads((tmp_path / "images.json").read_text())
    assert check_packs(tmp_path)["packs"] == ["images/pack-0.bin"]  # a few hundred KB: one shard
    assert len(index["images"]) == 12


def test_shards_are_cut_at_the_size_limit_between_images(tmp_path, monkeypatch):
    samples = brand_samples(9)
    monkeypatch.setattr(site, "PACK_SHARD_BYTES", 1)  # every image gets its own shard
    index = site.write_images(samples, sorted({s.label for s in samples}), tmp_path, ["train"] * 9)
    check_packs(tmp_path)
    assert [e["pack"][:2] for e in index["images"]] == [[i, 0] for i in range(9)]
    sizes = [e["pack"][2] for e in index["images"]]
    monkeypatch.setattr(site, "PACK_SHARD_BYTES", sizes[0] + sizes[1] + sizes[2])
    out = tmp_path / "b"
    out.mkdir()
    index = site.write_images(samples, sorted({s.label for s in samples}), out, ["train"] * 9)
    check_packs(out)
    assert [e["pack"][0] for e in index["images"]][:4] == [0, 0, 0, 1]


def test_a_rebuild_swaps_in_packs_that_match_its_images(tmp_path):
    out = tmp_path / "site"
    labels = ["android", "apple", "windows"]
    samples = brand_samples(90)
    for per_class in (0, 2):
        with site.exclusive(out), site.staging(out) as staged:
            site.manifest.write(staged.site, {"fingerprint": str(per_class)})
            site.write_images(samples, labels, staged.site, ["train"] * len(samples), per_class=per_class)
        index = check_packs(out)
        assert len(index["images"]) == (90 if per_class == 0 else 6)
        assert sorted(p.name for p in (out / "images").glob("pack-*")) == ["pack-0.bin"]

"""Hypothesis property tests: mask PNGs round-trip through the export writers and ``read_mask``, and the pairs
layout finds exactly the expected image/mask pairs in random folder trees (test_metrics.py has the metric ones)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from segstudio.core.data.imageio import read_image, read_mask
from segstudio.core.data.local_folders import find_pairs, pairs_report
from segstudio.core.data.sources import load_source
from segstudio.core.export.writers import png_bytes, save_png
from segstudio.core.labels.label_map import LabelConvention

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))


@SETTINGS
@given(st.data())
def test_uint8_and_16_bit_masks_round_trip(data) -> None:
    dtype = data.draw(st.sampled_from([np.uint8, np.uint16]))
    mask = data.draw(arrays(dtype, shapes))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m ü.png"
        save_png(path, mask)
        back = read_mask(path)
    assert back.dtype == dtype and back.shape == mask.shape
    assert np.array_equal(back, mask)


@SETTINGS
@given(arrays(np.uint8, shapes, elements=st.integers(0, 254)), st.booleans())
def test_model_ids_survive_the_convention_and_the_png(model_ids, reduce_labels) -> None:
    """Model ids -> dataset ids (export) -> PNG -> read_mask -> model ids again (255 stays ignored)."""
    convention = LabelConvention(reduce_labels=reduce_labels)
    ids = model_ids.copy()
    if reduce_labels:
        ids[ids == 254] = 255  # with reduce_labels, 254 + 1 does not fit: use the ignore index instead
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.png"
        save_png(path, convention.to_dataset_ids(ids))
        assert np.array_equal(convention.to_model_ids(read_mask(path)), ids)


@SETTINGS
@given(arrays(np.uint8, st.tuples(st.integers(1, 16), st.integers(1, 16), st.just(3))))
def test_rgb_pngs_round_trip_through_read_image(rgb) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.PNG"
        path.write_bytes(png_bytes(rgb))
        assert np.array_equal(np.asarray(read_image(path)), rgb)


# --- random folder trees ------------------------------------------------------------------------------------

_letters = st.sampled_from(list("abcXYZ019 _-éüß名"))
stems = st.text(_letters, min_size=1, max_size=8).map(str.strip).filter(lambda s: s and not s.startswith("."))
image_suffixes = st.sampled_from([".jpg", ".JPG", ".png", ".PNG", ".jpeg", ".webp", ".bmp", ".Tif"])
mask_suffixes = st.sampled_from([".png", ".PNG"])
subfolders = st.sampled_from(["", "sub", "Sub Dir", "ünï/deep"])
strays = st.sampled_from(["notes.txt", "Thumbs.db", "README", "data.json", "x.gif"])


@st.composite
def folder_trees(draw):
    """(images: relative path -> has mask, stray files, orphan masks) with stems unique case-insensitively."""
    count = draw(st.integers(1, 6))
    keys = draw(st.lists(st.tuples(subfolders, stems), min_size=count, max_size=count,
                         unique_by=lambda k: f"{k[0]}/{k[1]}".casefold()))
    images = {}
    for sub, stem in keys:
        name = f"{sub}/{stem}" if sub else stem
        images[name + draw(image_suffixes)] = (draw(st.booleans()), draw(mask_suffixes))
    if not any(has for has, _ in images.values()):  # a pairs folder needs at least one mask
        first = next(iter(images))
        images[first] = (True, images[first][1])
    orphans = draw(st.lists(stems.map(lambda s: f"orphan {s}.png"), max_size=2, unique=True))
    return images, draw(st.lists(strays, max_size=3, unique=True)), orphans


def _write(path: Path, image: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF"}.get(path.suffix.lower())
    image.save(path, format=fmt or "PNG")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(folder_trees(), st.sampled_from(["images", "Images", "imgs"]), st.sampled_from(["masks", "Labels", "gt"]))
def test_pairs_discovery_finds_exactly_the_expected_pairs(tree, image_dir, mask_dir) -> None:
    images, stray_files, orphans = tree
    root = Path(tempfile.mkdtemp(prefix="tree ä "))
    try:
        for i, (name, (has_mask, mask_suffix)) in enumerate(images.items()):
            _write(root / image_dir / name, Image.new("RGB", (5 + i, 4), (i * 30, 10, 200)))
            if has_mask:
                mask = Image.fromarray(np.full((4, 5 + i), i, np.uint8))
                _write(root / mask_dir / Path(name).with_suffix(mask_suffix), mask)
        for stray in stray_files:
            (root / image_dir / stray).write_text("not an image")
            (root / mask_dir / stray).write_text("not a mask")
        for orphan in orphans:
            _write(root / mask_dir / orphan, Image.fromarray(np.zeros((2, 2), np.uint8)))
        data = load_source(str(root))
        assert list(data.splits) == ["train"]
        split = data.splits["train"]
        expected = sorted(f"{image_dir}/{name}" for name in images)
        assert sorted(split["file_name"]) == expected  # every image, nothing else (no stray file, no orphan)
        by_name = {row["file_name"]: row for row in split}
        for i, (name, (has_mask, _)) in enumerate(images.items()):
            row = by_name[f"{image_dir}/{name}"]
            assert (row["annotation"] is not None) == has_mask, name
            if has_mask:  # the mask paired with it is its own (each image's mask holds its index)
                assert np.unique(np.asarray(row["annotation"])).tolist() == [i]
                assert np.asarray(row["annotation"]).shape == (row["image"].height, row["image"].width)
        report = pairs_report(root, find_pairs(root))  # and the rest is reported, not silently dropped
        assert sorted(report.without_mask) == sorted(f"{image_dir}/{n}" for n, (has, _) in images.items() if not has)
        assert sorted(report.without_image) == sorted(f"{mask_dir}/{name}" for name in orphans)
        assert sorted(report.ignored) == sorted(f"{d}/{name}" for d in (image_dir, mask_dir) for name in stray_files)
        assert (report.summary() is None) == (not report.without_mask and not orphans and not stray_files)
    finally:
        shutil.rmtree(root, ignore_errors=True)

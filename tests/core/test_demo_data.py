"""The synthetic demo: deterministic, in the scene_parse_150 schema, every class present, cached, round-trips."""

from __future__ import annotations

import time

import datasets
import numpy as np
import pytest

from segstudio.core.data import demo_dataset as demo_data
from segstudio.core.data.demo_dataset import load_demo, make_demo
from segstudio.core.data.demo_scenes import CLASS_NAMES, SCENES
from segstudio.core.data.sources import load_source, write_ade_folder
from segstudio.core.labels.label_map import LabelMap


@pytest.fixture(scope="module")
def small():
    return make_demo(train=8, validation=4, test=2)


def _raw(split: datasets.Dataset, column: str) -> list:
    return [cell["bytes"] if cell else None for cell in split.cast_column(column, datasets.Image(decode=False))[column]]


def test_same_seed_same_bytes_other_seed_other_images(small):
    again = make_demo(train=8, validation=4, test=2)
    for name in ("train", "validation", "test"):
        assert _raw(small.splits[name], "image") == _raw(again.splits[name], "image")
        assert _raw(small.splits[name], "annotation") == _raw(again.splits[name], "annotation")
    other = make_demo(train=8, validation=0, test=0, seed=1)
    assert _raw(other.splits["train"], "image") != _raw(small.splits["train"], "image")
    assert set(other.splits) == {"train"}


def test_schema_sizes_and_convention(small):
    assert small.sizes() == {"train": 8, "validation": 4, "test": 2}
    features = small.splits["train"].features
    assert isinstance(features["image"], datasets.Image) and isinstance(features["annotation"], datasets.Image)
    assert isinstance(features["scene_category"], datasets.ClassLabel)
    assert small.scene_names("validation") == SCENES == ["lakeside", "park", "room", "street"]
    assert small.convention.reduce_labels is True and small.convention.ignore_index == 255
    assert [small.label_map.name(i) for i in range(10)] == CLASS_NAMES
    ade = LabelMap.ade20k()
    for i, name in enumerate(CLASS_NAMES):
        assert (small.label_map.palette[i] == ade.palette[ade.label2id[name]]).all()
    row = small.splits["train"][0]
    assert row["image"].mode == "RGB" and row["image"].size == (256, 256)
    assert row["annotation"].mode == "L" and row["annotation"].size == (256, 256)
    assert row["file_name"] == "images/training/demo_train_00000001.jpg"
    assert small.splits["test"]["annotation"] == [None, None]


def test_every_class_appears_and_other_is_a_small_share():
    demo = make_demo(train=32, validation=0, test=0)
    counts = np.zeros(256, np.int64)
    for annotation in demo.splits["train"]["annotation"]:
        counts += np.bincount(np.asarray(annotation).ravel(), minlength=256)
    assert counts[11:].sum() == 0
    assert (counts[1:11] > 0).all()
    assert 0 < counts[0] / counts.sum() < 0.05
    scenes = demo.splits["train"]["scene_category"]
    assert sorted(set(scenes)) == [0, 1, 2, 3] and max(np.bincount(scenes)) == 8


def test_write_ade_folder_round_trip(small, tmp_path):
    out = write_ade_folder(small, tmp_path / "ADEChallengeData2016")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    back = load_source(str(out))
    assert back.sizes() == small.sizes()
    assert back.label_map.id2label == small.label_map.id2label
    assert back.convention == small.convention
    for name, split in small.splits.items():
        for mine, theirs in zip(split, back.splits[name], strict=True):
            assert mine["file_name"] == theirs["file_name"]
            assert small.scene_names(name)[mine["scene_category"]] == back.scene_names(name)[theirs["scene_category"]]
            if mine["annotation"] is None:
                assert theirs["annotation"] is None
            else:
                assert np.array_equal(np.asarray(mine["annotation"]), np.asarray(theirs["annotation"]))
            diff = np.abs(np.asarray(mine["image"], np.int16) - np.asarray(theirs["image"], np.int16))
            assert diff.mean() < 2.0
    assert not (out / "annotations" / "testing").exists()


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_data, "DEFAULT_COUNTS", {"train": 4, "validation": 2, "test": 1})
    folder = tmp_path / "demo-v1"
    first = load_demo(folder)
    assert first.sizes() == {"train": 4, "validation": 2, "test": 1}
    images = _raw(first.splits["train"], "image")
    for arrow in (folder / "train").glob("*.arrow"):  # new files (new inodes): the open dataset keeps its map
        (folder / "garbage").write_bytes(b"garbage")
        (folder / "garbage").replace(arrow)
    rebuilt = load_demo(folder)
    assert rebuilt.sizes() == first.sizes()
    assert _raw(rebuilt.splits["train"], "image") == images
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_folder_the_cache_did_not_write_is_never_deleted(tmp_path, monkeypatch):
    """$SEGSTUDIO_CACHE may name any folder: a demo-v1 folder in it without the cache's marker is someone's files."""
    monkeypatch.setattr(demo_data, "DEFAULT_COUNTS", {"train": 4, "validation": 2, "test": 1})
    folder = tmp_path / "demo-v1"
    (folder / "train").mkdir(parents=True)
    (folder / "thesis.tex").write_text("precious", encoding="utf-8")
    (folder / "train" / "data-00000-of-00001.arrow").write_bytes(b"mine")
    demo = load_demo(folder)
    assert demo.sizes() == {"train": 4, "validation": 2, "test": 1}
    assert (folder / "thesis.tex").read_text(encoding="utf-8") == "precious"
    assert (folder / "train" / "data-00000-of-00001.arrow").read_bytes() == b"mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_cache_path_that_cannot_be_written_gives_the_demo_from_memory(tmp_path, monkeypatch):
    """$SEGSTUDIO_CACHE naming a file (or a folder that cannot be made) is no traceback: the demo is made in memory."""
    monkeypatch.setattr(demo_data, "DEFAULT_COUNTS", {"train": 4, "validation": 2, "test": 1})
    (tmp_path / "a-file").write_text("mine", encoding="utf-8")
    monkeypatch.setenv("SEGSTUDIO_CACHE", str(tmp_path / "a-file"))
    assert load_demo().sizes() == {"train": 4, "validation": 2, "test": 1}
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_full_default_demo_is_cached():
    """The real demo (600 / 48 / 20), from the session's cache ($SEGSTUDIO_CACHE): generated at most once."""
    load_demo()
    start = time.perf_counter()
    demo = load_source("demo")
    assert time.perf_counter() - start < 1.0
    assert demo.sizes() == {"train": 600, "validation": 48, "test": 20}
    assert demo.source == "demo" and demo.root is None
    present = np.zeros(11, bool)
    for annotation in demo.splits["train"].select(range(0, 600, 5))["annotation"]:
        present |= np.bincount(np.asarray(annotation).ravel(), minlength=11)[:11] > 0
    assert present.all()
    assert all(a is None for a in demo.splits["test"]["annotation"])

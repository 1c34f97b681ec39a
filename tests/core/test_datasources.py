"""Every local source read into the common schema, option overrides, and the offline Hub message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from segstudio.core.data import hub as hub_source
from segstudio.core.data.sources import (
    DataSourceError,
    SourceOptions,
    load_source,
    scan_annotation_values,
    write_ade_folder,
)
from segstudio.core.labels.label_map import LabelConvention

OBJECT_INFO = "Idx\tRatio\tTrain\tVal\tName\n1\t0.5\t2\t1\twall\n2\t0.3\t2\t1\tbuilding;edifice\n3\t0.2\t1\t1\tsky\n"


def _image(path: Path, seed: int, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def _mask(path: Path, values: list[int], size: int = 32) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.asarray(values, np.uint8)[np.arange(size * size).reshape(size, size) % len(values)]
    Image.fromarray(mask).save(path)
    return mask


@pytest.fixture
def ade(tmp_path) -> Path:
    root = tmp_path / "ADEChallengeData2016"
    for split, prefix, n in (("training", "train", 3), ("validation", "val", 2)):
        for i in range(1, n + 1):
            stem = f"ADE_{prefix}_{i:08d}"
            _image(root / "images" / split / f"{stem}.jpg", i)
            if not (split == "training" and i == 3):
                _mask(root / "annotations" / split / f"{stem}.png", [0, 1, 2, 3])
    (root / "objectInfo150.txt").write_text(OBJECT_INFO, encoding="utf-8")
    (root / "sceneCategories.txt").write_text(
        "ADE_train_00000001 street\nADE_train_00000002 bathroom\nADE_val_00000001 street\n", encoding="utf-8"
    )
    return root


def test_ade_folder(ade):
    data = load_source(str(ade))
    assert data.sizes() == {"train": 3, "validation": 2}
    assert data.label_map.id2label == {0: "wall", 1: "building", 2: "sky"}
    assert data.convention == LabelConvention(reduce_labels=True)
    assert data.root == ade and data.source == str(ade)
    train = data.splits["train"]
    assert train["file_name"] == [f"images/training/ADE_train_{i:08d}.jpg" for i in (1, 2, 3)]
    assert [data.scene_names("train")[s] for s in train["scene_category"]] == ["street", "bathroom", "unknown"]
    assert train[2]["annotation"] is None
    assert np.asarray(train[0]["annotation"]).max() == 3
    assert isinstance(train.features["image"], datasets.Image)


def test_ade_folder_defaults_and_parent_folder(ade):
    (ade / "objectInfo150.txt").unlink()
    (ade / "sceneCategories.txt").unlink()
    data = load_source(str(ade.parent))  # the folder the zip was extracted into
    assert data.label_map.num_labels == 150 and data.label_map.name(2) == "sky"
    assert data.scene_names("validation") == ["unknown"]
    assert data.root == ade


def test_options_override_defaults(ade, tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"id2label": {"0": "a", "1": "b"}}), encoding="utf-8")
    options = SourceOptions(reduce_labels=False, ignore_index=0, label_map_path=str(labels))
    data = load_source(str(ade), options)
    assert data.convention == LabelConvention(reduce_labels=False, ignore_index=0)
    assert data.label_map.id2label == {0: "a", 1: "b"}
    with pytest.raises(DataSourceError, match="label map not found"):
        load_source(str(ade), SourceOptions(label_map_path=str(tmp_path / "missing.json")))
    with pytest.raises(DataSourceError, match="ignore index"):
        load_source(str(ade), SourceOptions(ignore_index=-1))


def _saved(tmp_path: Path, columns: dict[str, str], single: bool = False) -> Path:
    paths = []
    for i in range(3):
        _image(tmp_path / "src" / f"im{i}.png", i)
        _mask(tmp_path / "src" / f"m{i}.png", [0, 1, 2, 200])
        paths.append(i)
    features = datasets.Features({columns["image"]: datasets.Image(), columns["mask"]: datasets.Image(),
                                  "scene": datasets.Value("string"), "extra": datasets.Value("int64")})

    def split(ids):
        return datasets.Dataset.from_dict({
            columns["image"]: [str(tmp_path / "src" / f"im{i}.png") for i in ids],
            columns["mask"]: [str(tmp_path / "src" / f"m{i}.png") for i in ids],
            "scene": ["kitchen", "street", "kitchen"][: len(ids)], "extra": list(ids),
        }, features=features)

    out = tmp_path / "saved"
    (split([0, 1, 2]) if single else datasets.DatasetDict({"train": split([0, 1]), "val": split([2])})).save_to_disk(
        str(out))
    return out


def test_save_to_disk_folder(tmp_path):
    folder = _saved(tmp_path, {"image": "img", "mask": "label"})
    (folder / "labels.json").write_text(json.dumps({"id2label": {"0": "x", "1": "y", "2": "z"}}), encoding="utf-8")
    data = load_source(str(folder))
    assert data.sizes() == {"train": 2, "validation": 1}
    assert data.splits["train"].column_names == ["image", "annotation", "scene_category", "file_name"]
    assert data.label_map.id2label == {0: "x", 1: "y", 2: "z"}
    assert data.convention.reduce_labels is False
    assert data.scene_names("train") == ["kitchen", "street", "unknown"]
    assert data.splits["train"]["file_name"][0].endswith("im0.png")
    assert np.asarray(data.splits["validation"][0]["annotation"]).max() == 200  # never clipped
    assert scan_annotation_values(data.splits["train"], None) == {0: 512, 1: 512, 2: 512, 200: 512}


def test_save_to_disk_columns_from_options(tmp_path):
    folder = _saved(tmp_path, {"image": "photo", "mask": "seg_map"}, single=True)
    with pytest.raises(DataSourceError, match="--image-column"):
        load_source(str(folder))
    data = load_source(str(folder), SourceOptions(image_column="photo", mask_column="seg_map", reduce_labels=True))
    assert data.sizes() == {"train": 3}
    assert data.label_map.num_labels == 150 and data.convention.reduce_labels is True
    with pytest.raises(DataSourceError, match="no mask column 'nope'"):
        load_source(str(folder), SourceOptions(image_column="photo", mask_column="nope"))


def test_pairs_folder_with_split_folders(tmp_path):
    root = tmp_path / "pairs"
    _image(root / "images" / "train" / "a" / "x.jpg", 1)
    _mask(root / "masks" / "train" / "a" / "x.png", [0, 1, 7])
    _image(root / "images" / "train" / "y.png", 2)  # no mask
    _image(root / "images" / "val" / "z.jpg", 3)
    _mask(root / "masks" / "val" / "z.png", [1, 255])
    data = load_source(str(root))
    assert data.sizes() == {"train": 2, "validation": 1}
    assert data.convention.reduce_labels is False and data.label_map.num_labels == 150
    train = data.splits["train"]
    assert train["file_name"] == ["images/train/a/x.jpg", "images/train/y.png"]
    assert train[0]["annotation"] is not None and train[1]["annotation"] is None
    (root / "labels.json").write_text(json.dumps({"id2label": {"0": "bg", "1": "cat"}, "reduce_labels": True}))
    relabelled = load_source(str(root))
    assert relabelled.label_map.id2label == {0: "bg", 1: "cat"} and relabelled.convention.reduce_labels is True


def test_pairs_folder_layouts(tmp_path):
    flat = tmp_path / "flat"
    _image(flat / "imgs" / "p.jpg", 1)
    _mask(flat / "labels" / "p.png", [0, 1])
    assert load_source(str(flat)).sizes() == {"train": 1}
    nested = tmp_path / "nested"
    for split in ("training", "test"):
        _image(nested / split / "images" / "q.jpg", 2)
        _mask(nested / split / "gt" / "q.png", [0, 1])
    assert load_source(str(nested)).sizes() == {"train": 1, "test": 1}
    mixed = tmp_path / "mixed"
    _image(mixed / "images" / "train" / "r.jpg", 3)
    _image(mixed / "images" / "loose.jpg", 4)
    _mask(mixed / "masks" / "train" / "r.png", [0])
    with pytest.raises(DataSourceError, match="mixed"):
        load_source(str(mixed))


def test_bad_specs_raise_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    cases = [(str(tmp_path / "nope"), "not found"), (str(tmp_path / "empty"), "not a dataset folder"),
             (str(tmp_path / "file.txt"), "is a file"), ("  ", "no dataset given")]
    for spec, message in cases:
        with pytest.raises(DataSourceError, match=message) as info:
            load_source(spec)
        assert "\n" not in str(info.value)


def test_write_ade_folder_converts_a_non_reduced_dataset(tmp_path):
    root = tmp_path / "pairs"
    _image(root / "images" / "val" / "z.png", 3)
    mask = _mask(root / "masks" / "val" / "z.png", [0, 1, 2, 255])
    source = load_source(str(root))
    out = write_ade_folder(source, tmp_path / "out")
    back = load_source(str(out))
    written = np.asarray(back.splits["validation"][0]["annotation"])
    assert np.array_equal(back.convention.to_model_ids(written), source.convention.to_model_ids(mask))
    assert back.label_map.num_labels == 150
    with pytest.raises(DataSourceError, match="not empty"):
        write_ade_folder(source, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "pairs"]


def test_hub_errors_are_one_line(monkeypatch):
    from datasets.exceptions import DatasetNotFoundError

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'x' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataSourceError, match="not in the local Hugging Face cache"):
        load_source("someone/segments")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)

    def missing(*args, **kwargs):
        raise DatasetNotFoundError("Dataset 'someone/nothing' doesn't exist on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", missing)
    with pytest.raises(DataSourceError, match="was not found on the Hugging Face Hub"):
        load_source("hub:someone/nothing")
    assert hub_source.SCENE_PARSE_CONFIG == "scene_parsing" and hub_source.PARQUET_REVISION == "refs/convert/parquet"


def test_scene_parse_150_offline_with_an_empty_cache(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")}
    code = (
        "from segstudio.core.data.sources import DataSourceError, load_source\n"
        "try:\n    load_source('scene_parse_150')\nexcept DataSourceError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    assert "scene_parse_150" in lines[0] and "not in the local Hugging Face cache" in lines[0]
    assert "unreachable" in lines[0] and "'demo'" in lines[0]


def _png_cell(array: np.ndarray, path: str | None) -> dict:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": path}


def test_scene_parse_150_reads_the_parquet_conversion_layout(tmp_path, monkeypatch):
    """The Hub's parquet branch holds CONFIG/SPLIT/NNNN.parquet; a local copy of that layout stands in for it."""
    repo = tmp_path / "repo"
    features = datasets.Features({"image": datasets.Image(), "annotation": datasets.Image(),
                                  "scene_category": datasets.ClassLabel(names=["airport_terminal", "street"])})
    for config in ("scene_parsing", "instance_segmentation"):
        for split in ("train", "validation", "test"):
            rows = {"image": [_png_cell(np.zeros((8, 8, 3), np.uint8), f"ADE_{split}_0001.jpg"),
                              _png_cell(np.ones((8, 8, 3), np.uint8), None)],
                    "annotation": [None if split == "test" else _png_cell(np.full((8, 8), 3, np.uint8), None)] * 2,
                    "scene_category": [1, 0]}
            (repo / config / split).mkdir(parents=True)
            datasets.Dataset.from_dict(rows, features=features).to_parquet(str(repo / config / split / "0000.parquet"))
    monkeypatch.setattr(hub_source, "SCENE_PARSE_REPO", str(repo))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    data = load_source("scene_parse_150")
    assert data.source == "hub:scene_parse_150" and data.root is None
    assert data.sizes() == {"train": 2, "validation": 2, "test": 2}
    assert data.convention.reduce_labels is True and data.label_map.num_labels == 150
    assert data.splits["validation"]["file_name"] == ["ADE_validation_0001.jpg", "validation/000002"]
    assert data.scene_names("train") == ["airport_terminal", "street"]
    assert data.splits["test"]["annotation"] == [None, None]
    assert np.asarray(data.splits["train"][0]["annotation"]).max() == 3


def test_a_save_to_disk_folder_with_an_empty_split_is_named_not_an_index_error(tmp_path):
    features = datasets.Features({"image": datasets.Image(), "annotation": datasets.Image()})
    rows = {"image": [Image.new("RGB", (4, 4))], "annotation": [Image.new("L", (4, 4))]}
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict(rows, features=features),
        "validation": datasets.Dataset.from_dict({"image": [], "annotation": []}, features=features),
    }).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(IndexError):  # what datasets itself gives for such a folder
        datasets.load_from_disk(str(tmp_path / "saved"))
    with pytest.raises(DataSourceError, match=r"holds splits with no rows \(validation\): save the dataset again"):
        load_source(str(tmp_path / "saved"))

"""scene_parse_150 as users download it: folders of Parquet files (both layouts) and ``save_to_disk`` folders.

The fixtures are built as the real files are: ``datasets`` writes Parquet with scene_parse_150's features (image,
annotation, a ``scene_category`` ClassLabel of the release's 1,055 scene names) and the devkit's real validation
images and annotations as rows. ``datasets.load_dataset("parquet", data_dir=...)`` is the reference for split names
and row counts, transformers' SegFormer image processor the reference for the ADE20K label reduction.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from segstudio.core.data.sources import DataSourceError, SourceOptions, load_source

DEVKIT = Path(__file__).resolve().parents[1] / "fixtures" / "ade20k-devkit"
STEMS = ["ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003"]


def scene_names() -> list[str]:
    return (DEVKIT / "scene_names.txt").read_text(encoding="utf-8").split()


def scene_parse_features(names: list[str]) -> datasets.Features:
    """scene_parse_150's features, as its loading script declares them."""
    return datasets.Features({"image": datasets.Image(), "annotation": datasets.Image(),
                              "scene_category": datasets.ClassLabel(names=names)})


def devkit_rows(names: list[str], count: int = 3) -> datasets.Dataset:
    """Rows of the devkit's real samples: encoded bytes and the file's base name, as the Hub's Parquet stores them."""
    cells = {"image": [], "annotation": [], "scene_category": []}
    for i in range(count):
        stem = STEMS[i % len(STEMS)]
        for column, suffix in (("image", ".jpg"), ("annotation", ".png")):
            cells[column].append({"bytes": (DEVKIT / f"{stem}{suffix}").read_bytes(), "path": f"{stem}{suffix}"})
        cells["scene_category"].append(i % len(names))
    return datasets.Dataset.from_dict(cells, features=scene_parse_features(names))


def write_parquet(root: Path, files: dict[str, list[int]], rows: datasets.Dataset) -> Path:
    """Each relative path gets the given rows."""
    for relative, indices in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.select(indices).to_parquet(str(path))
    return root


# (files -> rows, the folder to open, datasets' split name -> ours)
LAYOUTS = {
    "hub data/ shards": ({"data/train-00000-of-00001.parquet": [0, 1], "data/validation-00000-of-00001.parquet": [2]},
                         "", {"train": "train", "validation": "validation"}),
    "refs/convert/parquet": ({"scene_parsing/train/0000.parquet": [0, 1], "scene_parsing/train/0001.parquet": [2],
                              "scene_parsing/validation/0000.parquet": [1, 2]},
                             "", {"train": "train", "validation": "validation"}),
    "one configuration's folder": ({"scene_parsing/train/0000.parquet": [0], "scene_parsing/validation/0000.parquet":
                                    [1, 2], "scene_parsing/test/0000.parquet": [0]},
                                   "scene_parsing", {"train": "train", "validation": "validation", "test": "test"}),
    "val shards": ({"data/train-00000-of-00002.parquet": [0], "data/train-00001-of-00002.parquet": [1],
                    "data/val-00000-of-00001.parquet": [2]}, "", {"train": "train", "val": "validation"}),
    "valid and dev folders": ({"train/0000.parquet": [0, 1], "valid/0000.parquet": [2]},
                              "", {"train": "train", "validation": "validation"}),
    "split in file names": ({"train.parquet": [0, 1, 2], "dev.parquet": [0]}, "",
                            {"train": "train", "validation": "validation"}),
}


@pytest.fixture(autouse=True)
def private_datasets_cache(tmp_path, monkeypatch):
    """datasets converts Parquet files into its cache: the test's own, never the user's."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")


@pytest.fixture(scope="module")
def rows() -> datasets.Dataset:
    return devkit_rows(scene_names())


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_parquet_folders_open_with_the_splits_and_rows_datasets_reads(layout, rows, tmp_path):
    files, folder, expected_names = LAYOUTS[layout]
    root = write_parquet(tmp_path / "download", files, rows) / folder
    reference = datasets.load_dataset("parquet", data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    assert set(reference) == set(expected_names)
    data = load_source(str(root))
    assert data.sizes() == {expected_names[name]: len(split) for name, split in reference.items()}
    assert data.convention.reduce_labels is True
    assert "scene_parse_150" in data.notice and "reduce_labels=True" in data.notice


@pytest.mark.slow  # imports transformers
def test_rows_are_the_devkit_files_and_reduce_as_transformers_reduces(rows, tmp_path):
    from transformers.models.segformer.image_processing_pil_segformer import SegformerImageProcessorPil

    root = write_parquet(tmp_path, {"data/validation-00000-of-00001.parquet": [0, 1, 2]}, rows)
    data = load_source(str(root))
    split = data.splits["validation"]
    assert list(split["file_name"]) == [f"{stem}.jpg" for stem in STEMS]
    assert data.scene_names("validation") == scene_names()
    reduce = SegformerImageProcessorPil(do_reduce_labels=True).reduce_label
    for stem, row in zip(STEMS, split, strict=True):
        stored = np.asarray(Image.open(DEVKIT / f"{stem}.png"))
        assert np.array_equal(np.asarray(row["annotation"]), stored)
        assert np.array_equal(np.asarray(row["image"]), np.asarray(Image.open(DEVKIT / f"{stem}.jpg")))
        assert np.array_equal(data.convention.to_model_ids(stored), reduce(stored.copy()))


def test_an_explicit_choice_wins_and_the_notice_says_so(rows, tmp_path):
    root = write_parquet(tmp_path, {"data/train-00000-of-00001.parquet": [0, 1]}, rows)
    data = load_source(str(root), SourceOptions(reduce_labels=False))
    assert data.convention.reduce_labels is False
    assert "--no-reduce-labels" in data.notice and "reduce_labels=False" in data.notice


def test_other_parquet_data_keeps_its_ids_and_says_nothing(tmp_path):
    rows = devkit_rows(["indoor", "outdoor"])
    root = write_parquet(tmp_path, {"data/train-00000-of-00001.parquet": [0, 1, 2]}, rows)
    data = load_source(str(root))
    assert data.convention.reduce_labels is False and data.notice is None


def test_several_configurations_are_refused_with_the_folders_to_open(rows, tmp_path):
    files = {"scene_parsing/train/0000.parquet": [0], "instance_segmentation/train/0000.parquet": [1]}
    root = write_parquet(tmp_path, files, rows)
    with pytest.raises(DataSourceError, match="several configurations") as raised:
        load_source(str(root))
    assert str(root / "scene_parsing") in str(raised.value)


def test_a_save_to_disk_copy_of_the_parquet_files_uses_the_ade20k_convention(rows, tmp_path):
    """load_dataset("parquet") + save_to_disk: the saved info names the parquet builder, not scene_parse_150."""
    root = write_parquet(tmp_path / "download", {"data/train-00000-of-00001.parquet": [0, 1],
                                                 "data/validation-00000-of-00001.parquet": [2]}, rows)
    loaded = datasets.load_dataset("parquet", data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    loaded.save_to_disk(str(tmp_path / "saved"))
    data = load_source(str(tmp_path / "saved"))
    assert data.sizes() == {"train": 2, "validation": 1}
    assert data.convention.reduce_labels is True
    assert "scene_parse_150" in data.notice
    assert load_source(str(tmp_path / "saved"), SourceOptions(reduce_labels=False)).convention.reduce_labels is False

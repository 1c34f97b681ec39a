"""A dataset read with corrections: only the corrected rows change, whatever the source keeps its columns in."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

import segstudio as ss
from segstudio.core.data import DataSourceError, load_source
from segstudio.core.review import CorrectionsStore, apply_corrections, without_corrections


def _mask(cell) -> np.ndarray:
    """A mask cell decoded by the datasets library itself (PIL), not by SegStudio's reader."""
    return np.asarray(datasets.Image().decode_example(cell))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A save_to_disk folder (memory-mapped Arrow files) of 12 rows with PNG masks."""
    rng = np.random.default_rng(0)
    images, masks = [], []
    for _ in range(12):
        images.append(Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)))
        masks.append(Image.fromarray(rng.integers(0, 5, (20, 24), dtype=np.uint8), "L"))
    features = datasets.Features({"image": datasets.Image(), "annotation": datasets.Image(),
                                  "scene_category": datasets.ClassLabel(names=["street"]),
                                  "file_name": datasets.Value("string")})
    split = datasets.Dataset.from_dict({"image": images, "annotation": masks, "scene_category": [0] * 12,
                                        "file_name": [f"img{i:02d}.jpg" for i in range(12)]}, features=features)
    folder = tmp_path_factory.mktemp("saved") / "data"
    datasets.DatasetDict({"validation": split}).save_to_disk(str(folder))
    return folder


def _raw(split: datasets.Dataset) -> list[dict]:
    return list(split.cast_column("annotation", datasets.Image(decode=False))["annotation"])


def test_only_the_corrected_rows_change_and_the_source_is_left_as_it_was(saved, tmp_path) -> None:
    dataset = load_source(str(saved))
    before = _raw(dataset.splits["validation"])
    store = CorrectionsStore(tmp_path / "fixes")
    fixes = {}
    for row in (0, 5, 11):
        original = _mask(before[row])
        fixes[row] = np.where(original == 1, 4, original).astype(np.uint8)
        store.save("validation", f"img{row:02d}.jpg", fixes[row], original)
    corrected = apply_corrections(dataset, tmp_path / "fixes")
    after = _raw(corrected.splits["validation"])
    assert len(after) == 12
    assert list(corrected.splits["validation"]["file_name"]) == list(dataset.splits["validation"]["file_name"])
    for row in range(12):
        expected = fixes[row] if row in fixes else _mask(before[row])
        assert np.array_equal(_mask(after[row]), expected), row
    assert [_mask(c).tolist() for c in _raw(dataset.splits["validation"])] == [_mask(c).tolist() for c in before]
    picked = corrected.splits["validation"].select([11, 3])  # as training and evaluation index rows
    assert np.array_equal(np.asarray(picked[0]["annotation"]), fixes[11])
    assert corrected.corrections.items == 3 and corrected.corrections.sha256 == store.digest()
    assert without_corrections(corrected).splits is dataset.splits


def test_editing_a_correction_again_keeps_it_fitting_the_dataset(saved, tmp_path) -> None:
    dataset = load_source(str(saved))
    store = CorrectionsStore(tmp_path / "fixes")
    original = _mask(_raw(dataset.splits["validation"])[2])
    first = original.copy()
    first[0] = 3
    store.save("validation", "img02.jpg", first, original)
    second = first.copy()
    second[1] = 2
    store.save("validation", "img02.jpg", second, first)  # the editor's "original" is the first correction
    corrected = apply_corrections(dataset, tmp_path / "fixes")
    assert np.array_equal(np.asarray(corrected.splits["validation"][2]["annotation"]), second)
    again = apply_corrections(corrected, tmp_path / "fixes")  # re-reading a corrected dataset starts from the source
    assert again.corrections.original_splits is dataset.splits


def test_a_correction_of_a_changed_mask_is_refused(saved, tmp_path) -> None:
    dataset = load_source(str(saved))
    original = _mask(_raw(dataset.splits["validation"])[4])
    CorrectionsStore(tmp_path / "fixes").save("validation", "img04.jpg", original + 1, original + 2)
    with pytest.raises(DataSourceError, match="img04.jpg.*not the one that was corrected"):
        apply_corrections(dataset, tmp_path / "fixes")


def test_the_python_api_reads_a_dataset_with_its_corrections(saved, tmp_path) -> None:
    dataset = ss.load_dataset(str(saved))
    original = _mask(_raw(dataset.splits["validation"])[7])
    CorrectionsStore(tmp_path / "fixes").save("validation", "img07.jpg", np.zeros_like(original), original)
    corrected = ss.load_dataset(str(saved), corrections=tmp_path / "fixes")
    assert not np.asarray(corrected.splits["validation"][7]["annotation"]).any()
    with pytest.raises(DataSourceError, match="not found"):
        ss.load_dataset(str(saved), corrections=tmp_path / "missing")

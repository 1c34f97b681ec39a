"""The dataset every source produces: splits in the schema of Hugging Face ``scene_parse_150``.

Shared by the sources (``segstudio.core.data.sources`` re-exports these names): the error type, the options, the
result type, the column schema and a few helpers that normalise splits to that schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from segstudio.core.errors import SegStudioError
from segstudio.core.labels.label_map import IGNORE_INDEX, LabelConvention, LabelMap

SPLITS = ("train", "validation", "test")
# Split folder / split names as found in the wild -> ours.
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "validation": "validation", "val": "validation", "valid": "validation",
    "test": "test", "testing": "test",
}
UNKNOWN_SCENE = "unknown"
COLUMNS = ["image", "annotation", "scene_category", "file_name"]


class DataSourceError(SegStudioError):
    """A dataset cannot be opened; the message is one line, meant for the person who chose the dataset."""


def first_line(exc: BaseException) -> str:
    """The first line of a library's error message (its type name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class SourceOptions:
    """How to read a source; ``None`` leaves the choice to the source's default."""

    config: str | None = None
    revision: str | None = None
    image_column: str | None = None
    mask_column: str | None = None
    reduce_labels: bool | None = None
    ignore_index: int = IGNORE_INDEX
    label_map_path: str | None = None


@dataclass(frozen=True)
class AppliedCorrections:
    """The corrections a dataset is read with (``core.review.corrected_data``): the folder, the sha256 of the masks
    read, their count, and the splits without them (``original_splits``: where an editor finds the originals)."""

    folder: str
    sha256: str
    items: int
    original_splits: datasets.DatasetDict | None = None

    def to_json_dict(self) -> dict:
        return {"folder": self.folder, "sha256": self.sha256, "items": self.items}


@dataclass
class SegDataset:
    """Splits with columns image / annotation / scene_category / file_name, and how to read their masks."""

    splits: datasets.DatasetDict
    label_map: LabelMap
    convention: LabelConvention
    source: str
    root: Path | None = None
    notice: str | None = None  # one line on how the label convention was chosen, when the source suggests one
    corrections: AppliedCorrections | None = None  # set when corrected masks replace originals

    def scene_names(self, split: str) -> list[str]:
        """Names of the ``scene_category`` ClassLabel of a split."""
        return list(self.splits[split].features["scene_category"].names)

    def sizes(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.splits.items()}


# What a source reader returns: its splits, its label map and its default for reduce_labels.
SourceParts = tuple[datasets.DatasetDict, LabelMap, bool]


def schema_features(scene_names: list[str]) -> datasets.Features:
    """The four columns of every split."""
    return datasets.Features(
        {
            "image": datasets.Image(),
            "annotation": datasets.Image(),
            "scene_category": datasets.ClassLabel(names=list(scene_names)),
            "file_name": datasets.Value("string"),
        }
    )


def split_from_paths(
    images: list[str], masks: list[str | None], scenes: list[str], file_names: list[str], scene_names: list[str]
) -> datasets.Dataset:
    """A split built from file paths: nothing is decoded, so large folders open in seconds."""
    index = {name: i for i, name in enumerate(scene_names)}
    data = {
        "image": images,
        "annotation": masks,
        "scene_category": [index[s] for s in scenes],
        "file_name": file_names,
    }
    return datasets.Dataset.from_dict(data, features=schema_features(scene_names))


def canonical_split(name: str) -> str | None:
    """train / validation / test for a split or folder name that means one of them, else None."""
    return SPLIT_ALIASES.get(name.strip().lower())


def _mask_array(annotation) -> np.ndarray:
    """Class ids of a decoded mask, by the one mask rule (``imageio.mask_ids``); a colour image is refused."""
    from segstudio.core.data.imageio import ImageReadError, mask_ids

    if not hasattr(annotation, "mode"):
        return np.asarray(annotation)
    try:
        return mask_ids(annotation, str(getattr(annotation, "filename", "") or "an annotation"))
    except ImageReadError as exc:
        raise DataSourceError(str(exc)) from None


def _value_counts(mask: np.ndarray) -> list[tuple[int, int]]:
    """(value, pixel count) pairs; bincount for 8/16-bit masks (fast), unique for the rest."""
    if mask.dtype in (np.uint8, np.uint16):
        counts = np.bincount(mask.ravel())
        values = np.flatnonzero(counts)
        return list(zip(values.tolist(), counts[values].tolist(), strict=True))
    values, counts = np.unique(mask, return_counts=True)
    return list(zip(values.tolist(), counts.tolist(), strict=True))


def masks_in(split: datasets.Dataset, limit: int | None = None) -> int:
    """How many of the first ``limit`` rows (every row when None) have a mask, read from Arrow (nothing decoded)."""
    count = len(split) if limit is None else min(limit, len(split))
    table = split.select_columns(["annotation"]).with_format("arrow")[:count]
    return count - table.column("annotation").null_count


def scan_annotation_values(split: datasets.Dataset, sample: int | None = 64) -> dict[int, int]:
    """Dataset id -> pixel count over ``sample`` masks spread evenly over the split (all when None).

    Values are counted as stored (no reduction, no clipping), so a label-convention check can see them all.
    """
    rows = split.select_columns(["annotation"])
    count = len(rows)
    if sample is not None and sample < count:
        indices = np.unique(np.linspace(0, count - 1, max(sample, 0)).round().astype(int)).tolist()
    else:
        indices = list(range(count))
    totals: dict[int, int] = {}
    for index in indices:
        for value, n in mask_values(rows[int(index)]["annotation"]).items():
            totals[value] = totals.get(value, 0) + n
    return dict(sorted(totals.items()))


def mask_values(annotation) -> dict[int, int]:
    """Dataset id -> pixel count of one decoded mask, as stored (empty for a missing annotation)."""
    if annotation is None:
        return {}
    return {int(value): int(n) for value, n in _value_counts(_mask_array(annotation))}

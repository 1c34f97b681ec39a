"""A dataset read with its corrections: the annotation cells of corrected rows replaced by the corrected masks.

Only the corrected rows change (the column is rebuilt from zero-copy slices of the original around them), so every
reader (evaluation, training, the label check, the window, the ADE writer) sees the corrected mask through
``imageio``. A corrections folder fits a dataset when each corrected row is there and its mask is still the one
that was corrected (or already the corrected one): a folder made for another dataset is refused in one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import datasets
import pyarrow as pa
from datasets.table import InMemoryTable

from segstudio import __version__
from segstudio.core.data.ade_folder import write_ade_folder
from segstudio.core.data.imageio import ImageReadError, read_mask, stored_cells
from segstudio.core.data.schema import AppliedCorrections, DataSourceError, SegDataset
from segstudio.core.export.manifest import MANIFEST_NAME
from segstudio.core.review.corrections import (
    INDEX_NAME,
    CorrectionItem,
    CorrectionsError,
    CorrectionsStore,
    corrections_digest,
    mask_sha256,
)


def open_corrections(folder: str | Path, must_exist: bool = True) -> CorrectionsStore:
    """The store in ``folder``; DataSourceError (one line) when it is missing or not a corrections folder."""
    folder = Path(folder).expanduser()
    if must_exist and not folder.is_dir():
        raise DataSourceError(f"corrections folder not found: {folder} (give the folder the window saves "
                              "corrections to)")
    if must_exist and not (folder / INDEX_NAME).is_file():  # a mistyped folder would give the original numbers
        raise DataSourceError(f"{folder} holds no corrections (no {INDEX_NAME}): give the folder the window saved "
                              "corrections to")
    try:
        store = CorrectionsStore(folder)
        len(store)
    except CorrectionsError as exc:
        raise DataSourceError(str(exc)) from None
    return store


def apply_corrections(dataset: SegDataset, folder: str | Path, must_exist: bool = True) -> SegDataset:
    """``dataset`` with the masks of ``folder`` in place of the originals of the rows they correct."""
    store = open_corrections(folder, must_exist)
    originals = dataset.corrections.original_splits if dataset.corrections else dataset.splits
    splits, read = {}, []
    try:
        for name, split in originals.items():
            items = store.items(name)
            splits[name] = _corrected_split(store, dataset, name, split, items, read) if items else split
        unknown = sorted({item.split for item in store.items()} - set(dataset.splits))
    except CorrectionsError as exc:
        raise DataSourceError(str(exc)) from None
    if unknown:
        raise _foreign(store, dataset, f"it corrects the {unknown[0]} split, which this dataset does not have")
    applied = AppliedCorrections(str(store.path.resolve()), corrections_digest(read), len(store), originals)
    return dataclasses.replace(dataset, splits=datasets.DatasetDict(splits), corrections=applied)


def without_corrections(dataset: SegDataset) -> SegDataset:
    """``dataset`` as its source has it (itself when it was read without corrections)."""
    if dataset.corrections is None:
        return dataset
    return dataclasses.replace(dataset, splits=dataset.corrections.original_splits, corrections=None)


def _foreign(store: CorrectionsStore, dataset: SegDataset, why: str) -> DataSourceError:
    made_for = f" (made for {store.dataset})" if store.dataset and store.dataset != dataset.source else ""
    return DataSourceError(f"corrections folder {store.path}{made_for} does not fit {dataset.source}: {why}; "
                           "choose the corrections folder of this dataset")


def _corrected_split(store: CorrectionsStore, dataset: SegDataset, name: str, split: datasets.Dataset,
                     items: list[CorrectionItem], read: list) -> datasets.Dataset:
    if getattr(split, "_indices", None) is not None:
        split = split.flatten_indices()
    rows = {file_name: row for row, file_name in enumerate(split.data.column("file_name").to_pylist())}
    cells = stored_cells(split.select_columns(["annotation"]))
    replacements = {}
    for item in items:
        row = rows.get(item.file_name)
        if row is None:
            raise _foreign(store, dataset, f"it corrects {name}/{item.file_name}, which this dataset does not have")
        _check_original(store, dataset, name, item, cells[row]["annotation"])
        path = store.mask_path(name, item.file_name)
        data = path.read_bytes()
        read.append((name, item.file_name, data))
        replacements[row] = {"bytes": data, "path": str(path)}
    return _with_cells(split, replacements, corrections_digest(read))


def _check_original(store: CorrectionsStore, dataset: SegDataset, split: str, item: CorrectionItem, cell) -> None:
    """The row's mask is the one the correction was made on (or already the corrected one)."""
    if cell is None:
        raise _foreign(store, dataset, f"{split}/{item.file_name} has no mask here")
    try:
        now = mask_sha256(read_mask(cell))
    except ImageReadError:
        return  # an unreadable original is replaced by its correction; nothing to compare
    if now not in (item.original_sha256, item.corrected_sha256):
        raise _foreign(store, dataset, f"the mask of {split}/{item.file_name} is not the one that was corrected")


def _with_cells(split: datasets.Dataset, replacements: dict[int, dict], tag: str) -> datasets.Dataset:
    """``split`` with the annotation cells of the given rows replaced; the other rows' cells are not copied."""
    table = split.data.table
    position = table.column_names.index("annotation")
    column = table.column(position)
    cell_type = datasets.Image().pa_type
    if column.type != cell_type:
        column = column.cast(cell_type)
    pieces, start = [], 0
    for row in sorted(replacements):
        pieces += column.slice(start, row - start).chunks
        pieces.append(pa.array([replacements[row]], type=cell_type))
        start = row + 1
    pieces += column.slice(start).chunks
    new_table = table.set_column(position, pa.field("annotation", cell_type), pa.chunked_array(pieces, cell_type))
    fingerprint = hashlib.sha256(f"{split._fingerprint}:{tag}".encode()).hexdigest()[:16]
    return datasets.Dataset(InMemoryTable(new_table), info=split.info, split=split.split,
                            fingerprint=fingerprint)


def write_corrected_copy(dataset: SegDataset, folder: str | Path, output: str | Path) -> SegDataset:
    """Write ``dataset`` read with the corrections in ``folder`` to ``output`` in the ADE20K layout, with a
    ``manifest.json`` naming the source and the corrections' sha256; the dataset itself is only read."""
    output = Path(output).expanduser().absolute()
    corrected = apply_corrections(dataset, folder)
    for name, inside in (("dataset", dataset.root), ("corrections folder", corrected.corrections.folder)):
        if inside is not None and output.resolve().is_relative_to(Path(inside).resolve()):
            raise DataSourceError(f"{output} is inside the {name} ({inside}); write the corrected copy elsewhere")
    manifest = {"kind": "apply-corrections", "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "dataset": {"source": dataset.source, "corrections": corrected.corrections.to_json_dict()},
                "counts": {"images": sum(corrected.sizes().values()), "corrected": corrected.corrections.items},
                "versions": {"segstudio": __version__}}
    write_ade_folder(corrected, output, {MANIFEST_NAME: json.dumps(manifest, indent=2) + "\n"})
    return corrected


def default_corrections_folder(dataset: SegDataset, fallback_parent: str | Path) -> Path:
    """Where a dataset's corrections go unless a person chooses: beside a local dataset
    (``ADEChallengeData2016-corrections``), else ``fallback_parent/<source>`` for the demo and Hub datasets."""
    if dataset.root is not None:
        return dataset.root.parent / f"{dataset.root.name}-corrections"
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset.source).strip("._") or "dataset"
    return Path(fallback_parent) / name

"""ADEChallengeData2016 folders: read one into the common schema, and write any dataset as one.

Layout: ``images/{training,validation,testing}/*.jpg``, ``annotations/{training,validation}/*.png``, class names
in ``objectInfo150.txt`` (``Idx Ratio Train Val Name``, tab-separated; Name lists synonyms separated by ", ")
and scenes in ``sceneCategories.txt`` (``ADE_train_00000001 airport_terminal``). Any part may be missing.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import uuid
from pathlib import Path

import datasets
import numpy as np
from PIL import Image, ImageOps

from segstudio.core.data.schema import UNKNOWN_SCENE, DataSourceError, SegDataset, split_from_paths
from segstudio.core.labels.label_map import LabelConvention, LabelMap

ADE_SPLITS = {"training": "train", "validation": "validation", "testing": "test"}
ADE_FOLDERS = {split: folder for folder, split in ADE_SPLITS.items()}
ADE_PREFIX = {"train": "train", "validation": "val", "test": "test"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
OBJECT_INFO = "objectInfo150.txt"
SCENE_CATEGORIES = "sceneCategories.txt"
ADE_ROOT_NAME = "ADEChallengeData2016"


def is_ade_folder(root: Path) -> bool:
    """``images/`` with at least one of training / validation / testing in it."""
    return (root / "images").is_dir() and any((root / "images" / name).is_dir() for name in ADE_SPLITS)


def read_object_info(path: Path) -> list[tuple[str, ...]]:
    """Each class's synonyms in Idx order (Idx 1 is model id 0); the Name column separates them with ", "."""
    synonyms: dict[int, tuple[str, ...]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if not line.strip():
            continue
        words = tuple(word.strip() for word in re.split("[,;]", fields[-1]) if word.strip())
        try:
            synonyms[int(fields[0])] = words or (fields[-1].strip(),)
        except ValueError:
            raise DataSourceError(f"{path}:{number}: expected 'Idx<TAB>Ratio<TAB>Train<TAB>Val<TAB>Name'") from None
    if sorted(synonyms) != list(range(1, len(synonyms) + 1)):
        raise DataSourceError(f"{path}: class indices must run 1..{len(synonyms)} without gaps")
    return [synonyms[i] for i in range(1, len(synonyms) + 1)]


def read_scene_categories(path: Path) -> dict[str, str]:
    """Image stem -> scene name."""
    scenes: dict[str, str] = {}
    if not path.is_file():
        return scenes
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from None
    for line in lines:
        parts = line.split()
        if len(parts) >= 2:
            scenes[parts[0]] = parts[1]
    return scenes


def _files(folder: Path, suffixes: set[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def load_ade_folder(root: Path) -> tuple[datasets.DatasetDict, LabelMap]:
    """The splits found under ``root`` and the label map from objectInfo150.txt (ADE20K 150 without it)."""
    scenes = read_scene_categories(root / SCENE_CATEGORIES)
    found: dict[str, tuple[list[str], list[str | None], list[str], list[str]]] = {}
    for folder, split in ADE_SPLITS.items():
        images = _files(root / "images" / folder, IMAGE_SUFFIXES)
        if not images:
            continue
        mask_dir = root / "annotations" / folder
        masks = {p.relative_to(mask_dir).with_suffix("").as_posix(): p for p in _files(mask_dir, {".png"})}
        rel = [p.relative_to(root / "images" / folder).with_suffix("").as_posix() for p in images]
        found[split] = (
            [str(p) for p in images],
            [str(masks[r]) if r in masks else None for r in rel],
            [scenes.get(Path(r).name, UNKNOWN_SCENE) for r in rel],
            [p.relative_to(root).as_posix() for p in images],
        )
    if not found:
        raise DataSourceError(f"{root}: no images under images/training, images/validation or images/testing")
    scene_names = sorted({s for split in found.values() for s in split[2]})
    splits = datasets.DatasetDict({k: split_from_paths(*v, scene_names) for k, v in found.items()})
    info = root / OBJECT_INFO
    label_map = LabelMap.from_synonyms(read_object_info(info)) if info.is_file() else LabelMap.ade20k()
    return splits, label_map


def resolve_ade_root(root: Path) -> Path:
    """``root`` itself, or its ``ADEChallengeData2016`` child when the zip was extracted into ``root``."""
    child = root / ADE_ROOT_NAME
    return child if not is_ade_folder(root) and is_ade_folder(child) else root


# --- writing -------------------------------------------------------------------------------------------


def _stems(dataset: SegDataset) -> dict[str, list[str]]:
    """File stems per split: the rows' own stems when unique across the dataset, else ADE-style names."""
    own = {name: [Path(str(f)).stem for f in split["file_name"]] for name, split in dataset.splits.items()}
    flat = [s for stems in own.values() for s in stems]
    if all(flat) and len(set(flat)) == len(flat):
        return own
    return {
        name: [f"ADE_{ADE_PREFIX[name]}_{i + 1:08d}" for i in range(len(split))]
        for name, split in dataset.splits.items()
    }


def _jpeg_bytes(cell: dict) -> bytes:
    """The image as JPEG: stored JPEG bytes as they are, anything else upright RGB at quality 98, no subsampling."""
    data = cell.get("bytes")
    if data is None and cell.get("path"):
        data = Path(cell["path"]).read_bytes()
    if data is None:
        raise DataSourceError("an image has neither bytes nor a path")
    if data[:3] == b"\xff\xd8\xff":
        return data
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    buffer = io.BytesIO()
    upright.save(buffer, format="JPEG", quality=98, subsampling=0)
    return buffer.getvalue()


def _ade_mask(cell: dict, convention: LabelConvention) -> tuple[bytes, np.ndarray]:
    """The mask as an ADE PNG (0 = other, class k stored as k + 1) and its decoded ids."""
    data = cell.get("bytes")
    if data is None:
        data = Path(cell["path"]).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        ids = np.asarray(image)
    if convention == LabelConvention(reduce_labels=True) and data[:8] == b"\x89PNG\r\n\x1a\n":
        return data, ids
    ade = LabelConvention(reduce_labels=True).to_dataset_ids(convention.to_model_ids(ids))
    buffer = io.BytesIO()
    Image.fromarray(ade).save(buffer, format="PNG")
    return buffer.getvalue(), ade


class _ClassStats:
    """Pixel share and per-split image counts of each class, for objectInfo150.txt."""

    def __init__(self, num_labels: int) -> None:
        self.pixels = np.zeros(num_labels + 1, np.int64)
        self.images = {"train": np.zeros(num_labels, np.int64), "validation": np.zeros(num_labels, np.int64)}

    def add(self, split: str, ade_ids: np.ndarray) -> None:
        counts = np.bincount(ade_ids.ravel().astype(np.int64), minlength=len(self.pixels))[: len(self.pixels)]
        self.pixels += counts
        if split in self.images:
            self.images[split] += counts[1:] > 0

    def object_info(self, label_map: LabelMap) -> str:
        total = max(int(self.pixels[1:].sum()), 1)
        lines = ["Idx\tRatio\tTrain\tVal\tName"]
        for i in range(label_map.num_labels):
            name = label_map.name(i).replace("\t", " ").replace(";", ",")
            ratio = self.pixels[i + 1] / total
            lines.append(f"{i + 1}\t{ratio:.4f}\t{self.images['train'][i]}\t{self.images['validation'][i]}\t{name}")
        return "\n".join(lines) + "\n"


def _write_split(dataset: SegDataset, split: str, stems: list[str], temp: Path, stats: _ClassStats) -> list[str]:
    """Images (and masks) of one split; returns its sceneCategories.txt lines."""
    rows = dataset.splits[split].cast_column("image", datasets.Image(decode=False))
    rows = rows.cast_column("annotation", datasets.Image(decode=False))
    folder = ADE_FOLDERS[split]
    scene_names = dataset.scene_names(split)
    lines = []
    for stem, row in zip(stems, rows, strict=True):
        image_path = temp / "images" / folder / f"{stem}.jpg"
        image_path.write_bytes(_jpeg_bytes(row["image"]))
        if row["annotation"] is not None:
            mask_bytes, ade_ids = _ade_mask(row["annotation"], dataset.convention)
            (temp / "annotations" / folder / f"{stem}.png").write_bytes(mask_bytes)
            stats.add(split, ade_ids)
        scene = scene_names[row["scene_category"]] if row["scene_category"] is not None else UNKNOWN_SCENE
        lines.append(f"{stem} {scene.replace(' ', '_')}")
    return lines


def write_ade_folder(dataset: SegDataset, out_dir: Path, extra_files: dict[str, str] | None = None) -> Path:
    """Write ``dataset`` as an ADEChallengeData2016 folder (atomically: a temp sibling, then one rename);
    ``extra_files`` (name -> text, e.g. a manifest) go in with it."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataSourceError(f"{out_dir} is a file, not a folder; choose a new folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataSourceError(f"{out_dir} already exists and is not empty; choose a new folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        stats, scene_lines, stems = _ClassStats(dataset.label_map.num_labels), [], _stems(dataset)
        for split in dataset.splits:
            (temp / "images" / ADE_FOLDERS[split]).mkdir(parents=True)
            (temp / "annotations" / ADE_FOLDERS[split]).mkdir(parents=True, exist_ok=True)
            scene_lines += _write_split(dataset, split, stems[split], temp, stats)
        (temp / OBJECT_INFO).write_text(stats.object_info(dataset.label_map), encoding="utf-8")
        (temp / SCENE_CATEGORIES).write_text("\n".join(scene_lines) + "\n", encoding="utf-8")
        for name, text in (extra_files or {}).items():
            (temp / name).write_text(text, encoding="utf-8")
        _remove_empty_dirs(temp / "annotations")
        os.replace(temp, out_dir)
    except OSError as exc:
        raise DataSourceError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return out_dir


def _remove_empty_dirs(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not any(child.iterdir()):
            child.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()

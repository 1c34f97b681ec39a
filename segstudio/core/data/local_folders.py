"""Local folders other than the ADE layout: ``save_to_disk`` folders, folders of Parquet files and folders of
image/mask pairs.

Parquet folders are read by ``datasets.load_dataset("parquet", data_dir=ROOT)``, which maps files to splits itself
(``data/{split}-NNNNN-of-NNNNN.parquet``, ``{split}/NNNN.parquet`` as in the Hub's ``refs/convert/parquet``, ...);
its split names then map to train / validation / test through datasets' own split keywords (dev -> validation).

Pairs layouts (checked in this order; the folder names are matched case-insensitively):

* ``ROOT/<images>/...`` and ``ROOT/<masks>/...``: one image folder (images, imgs, img) and one mask folder
  (masks, annotations, labels, gt, segmentations). Their first-level sub-folders named like splits (train /
  training, val / valid / validation, test / testing) become splits; without such sub-folders there is one
  ``train`` split. Mixing split folders with other images is refused as ambiguous.
* ``ROOT/<split>/<images>`` and ``ROOT/<split>/<masks>``: the same with the split folders on top.

An image's mask has the same relative path and stem (``images/a/x.jpg`` <-> ``masks/a/x.png``); images without
a mask keep ``annotation`` None; masks without an image are ignored. ``x_mask.png`` files beside the images are
not recognised.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from segstudio.core.data.columns import has_scene_parse_features, normalise_splits
from segstudio.core.data.schema import (
    UNKNOWN_SCENE,
    DataSourceError,
    SourceParts,
    canonical_split,
    first_line,
    split_from_paths,
)
from segstudio.core.labels.label_map import LabelMap, LabelMapError

IMAGE_DIRS = ("images", "imgs", "img")
MASK_DIRS = ("masks", "annotations", "labels", "gt", "segmentations")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
LABELS_JSON = "labels.json"
log = logging.getLogger(__name__)


# --- labels.json ---------------------------------------------------------------------------------------


def folder_labels(root: Path) -> tuple[LabelMap | None, bool | None]:
    """The label map and the ``reduce_labels`` flag of a folder's ``labels.json`` / ``id2label.json``, if any."""
    for name in (LABELS_JSON, "id2label.json"):
        path = root / name
        if path.is_file():
            try:
                label_map = LabelMap.from_json(path)
                data = json.loads(path.read_text(encoding="utf-8"))
            except (LabelMapError, ValueError) as exc:
                raise DataSourceError(str(exc)) from None
            reduce = data.get("reduce_labels") if isinstance(data, dict) else None
            return label_map, reduce if isinstance(reduce, bool) else None
    return None, None


# --- save_to_disk --------------------------------------------------------------------------------------


def is_saved_dataset(root: Path) -> bool:
    return (root / "dataset_dict.json").is_file() or (root / "state.json").is_file()


def _looks_like_scene_parse(splits: datasets.DatasetDict | datasets.Dataset) -> bool:
    first = splits if isinstance(splits, datasets.Dataset) else next(iter(splits.values()), None)
    if first is None:
        return False
    info = first.info
    names = " ".join(str(v) for v in (info.dataset_name, info.config_name, info.builder_name) if v)
    return "scene_parse" in names or "scene_parsing" in names


def _empty_saved_splits(root: Path) -> list[str]:
    """The splits of a ``save_to_disk`` folder whose state lists no data files (saved with no rows)."""
    states = [root / "state.json"] if (root / "state.json").is_file() else sorted(root.glob("*/state.json"))
    empty = []
    for state in states:
        try:
            if not json.loads(state.read_text()).get("_data_files"):
                empty.append(state.parent.name if state.parent != root else root.name)
        except (OSError, ValueError, AttributeError):
            continue
    return empty


def load_saved(root: Path, image_column: str | None, mask_column: str | None) -> SourceParts:
    """(splits, label map, default reduce_labels) of a ``save_to_disk`` folder.

    reduce_labels defaults to False, unless labels.json says otherwise or the dataset was saved from
    scene_parse_150 (its info names it), which uses the ADE20K convention.
    """
    try:
        loaded = datasets.load_from_disk(str(root))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, pyarrow errors ...
        empty = _empty_saved_splits(root)
        if empty:  # datasets cannot load a split saved with no rows: it fails with an IndexError
            raise DataSourceError(f"the save_to_disk folder {root} holds splits with no rows ({', '.join(empty)}): "
                                  "save the dataset again with at least one row in each split") from None
        raise DataSourceError(f"cannot read the save_to_disk folder {root}: {exc}") from None
    splits = normalise_splits(loaded, image_column, mask_column, str(root))
    label_map, reduce = folder_labels(root)
    if reduce is None:
        reduce = _looks_like_scene_parse(loaded) or has_scene_parse_features(loaded)
    return splits, label_map or LabelMap.ade20k(), reduce


# --- Parquet files -------------------------------------------------------------------------------------

PARQUET_DEPTH = 3  # ROOT/CONFIG/SPLIT/NNNN.parquet is the deepest layout looked for


def parquet_files(root: Path) -> list[Path]:
    """The ``.parquet`` files at most three folder levels below ``root`` (hidden folders skipped)."""
    found = [p for depth in range(PARQUET_DEPTH) for p in root.glob("*/" * depth + "*.parquet")]
    return sorted(p for p in found if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(root).parts))


def _config_folders(root: Path, files: list[Path]) -> list[str]:
    """First-level folders holding ``SPLIT/NNNN.parquet`` under a name that is no split (Hub configurations)."""
    from datasets.data_files import SPLIT_KEYWORDS

    keywords = {k for words in SPLIT_KEYWORDS.values() for k in words} | {"data"}
    tops = {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) == 3}
    return sorted(t for t in tops if t.lower() not in keywords)


def _datasets_split_names(names: list[str]) -> dict[str, str]:
    """Each split name as datasets reads it (train/training, validation/valid/dev/val, test/testing/eval ...)."""
    from datasets.data_files import SPLIT_KEYWORDS

    keyword = {k: str(split) for split, words in SPLIT_KEYWORDS.items() for k in words}
    return {name: keyword.get(name.lower(), name) for name in names}


def load_parquet(root: Path, image_column: str | None, mask_column: str | None) -> SourceParts:
    """(splits, label map, default reduce_labels) of a folder of Parquet files.

    reduce_labels defaults to True for scene_parse_150's features (its ADE20K convention), else False, and a
    labels.json beside the files has the last word.
    """
    files = parquet_files(root)
    configs = _config_folders(root, files)
    if len(configs) > 1:
        choices = ", ".join(str(root / c) for c in configs)
        raise DataSourceError(f"{root} holds several configurations ({', '.join(configs)}); open one: {choices}")
    try:
        loaded = datasets.load_dataset("parquet", data_dir=str(root))
    except Exception as exc:  # datasets raises ValueError, FileNotFoundError, pyarrow errors ...
        raise DataSourceError(f"cannot read the Parquet files in {root}: {first_line(exc)}") from None
    if not isinstance(loaded, datasets.DatasetDict) or not loaded:
        raise DataSourceError(f"{root}: no split found among its Parquet files")
    names = _datasets_split_names(list(loaded))
    if len(set(names.values())) < len(names):
        raise DataSourceError(f"{root}: several Parquet splits are the same split ({', '.join(loaded)})")
    loaded = datasets.DatasetDict({names[name]: split for name, split in loaded.items()})
    splits = normalise_splits(loaded, image_column, mask_column, str(root))
    label_map, reduce = folder_labels(root)
    if reduce is None:
        reduce = has_scene_parse_features(loaded)
    return splits, label_map or LabelMap.ade20k(), reduce


# --- image/mask pairs ----------------------------------------------------------------------------------


def _child(root: Path, names: tuple[str, ...]) -> list[Path]:
    return [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in names]


def _pair_dirs(root: Path) -> tuple[Path, Path] | None:
    images, masks = _child(root, IMAGE_DIRS), _child(root, MASK_DIRS)
    if len(images) > 1 or len(masks) > 1:
        found = ", ".join(p.name for p in images + masks)
        raise DataSourceError(f"{root}: ambiguous folders ({found}); keep one image and one mask folder")
    return (images[0], masks[0]) if images and masks else None


def _split_dirs(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for child in sorted(folder.iterdir()):
        split = canonical_split(child.name) if child.is_dir() else None
        if split is not None:
            if split in found:
                raise DataSourceError(f"{folder}: both {found[split].name} and {child.name} are the {split} split")
            found[split] = child
    return found


def find_pairs(root: Path) -> dict[str, tuple[Path, Path]] | None:
    """Split -> (image folder, mask folder), or None when ``root`` is not a pairs folder."""
    top = _pair_dirs(root)
    if top is not None:
        image_dir, mask_dir = top
        splits = _split_dirs(image_dir)
        if not splits:
            return {"train": (image_dir, mask_dir)}
        loose = [p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES or
                 (p.is_dir() and canonical_split(p.name) is None)]
        if loose:
            raise DataSourceError(f"{image_dir}: split folders mixed with other images or folders ({loose[0].name})")
        return {split: (folder, mask_dir / folder.name) for split, folder in splits.items()}
    nested = {split: _pair_dirs(folder) for split, folder in _split_dirs(root).items()}
    nested = {split: dirs for split, dirs in nested.items() if dirs is not None}
    return nested or None


def _pairs_split(root: Path, image_dir: Path, mask_dir: Path) -> tuple[list, list, list, list]:
    images = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    masks: dict[str, Path] = {}
    if mask_dir.is_dir():
        for p in sorted(mask_dir.rglob("*")):
            key = p.relative_to(mask_dir).with_suffix("").as_posix()
            if p.suffix.lower() in MASK_SUFFIXES and key not in masks:
                masks[key] = p
    keys = [p.relative_to(image_dir).with_suffix("").as_posix() for p in images]
    mask_paths = [str(masks[k]) if k in masks else None for k in keys]
    names = [p.relative_to(root).as_posix() for p in images]
    return [str(p) for p in images], mask_paths, [UNKNOWN_SCENE] * len(images), names


@dataclass
class PairsReport:
    """What a pairs folder holds besides complete pairs (paths relative to the root)."""

    without_mask: list[str] = field(default_factory=list)
    without_image: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> str | None:
        """One line, or None when every image has a mask and nothing was ignored."""
        kinds = (("image(s) without a mask", self.without_mask), ("mask(s) without an image", self.without_image),
                 ("other file(s) ignored", self.ignored))
        return "; ".join(f"{len(found)} {label} (first: {found[0]})" for label, found in kinds if found) or None


def _visible_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))


def pairs_report(root: Path, layout: dict[str, tuple[Path, Path]]) -> PairsReport:
    """Images without a mask, masks without an image and other files in the image and mask folders."""
    report = PairsReport()
    for image_dir, mask_dir in layout.values():
        images = {p.relative_to(image_dir).with_suffix("").as_posix(): p for p in _visible_files(image_dir)
                  if p.suffix.lower() in IMAGE_SUFFIXES}
        masks = {p.relative_to(mask_dir).with_suffix("").as_posix(): p for p in _visible_files(mask_dir)
                 if p.suffix.lower() in MASK_SUFFIXES}
        report.without_mask += [images[k].relative_to(root).as_posix() for k in images if k not in masks]
        report.without_image += [masks[k].relative_to(root).as_posix() for k in masks if k not in images]
        report.ignored += [p.relative_to(root).as_posix() for folder, kept in ((image_dir, IMAGE_SUFFIXES),
                           (mask_dir, MASK_SUFFIXES)) for p in _visible_files(folder) if p.suffix.lower() not in kept]
    return report


def load_pairs(root: Path, layout: dict[str, tuple[Path, Path]]) -> SourceParts:
    """(splits, label map, default reduce_labels = False unless labels.json says otherwise)."""
    summary = pairs_report(root, layout).summary()
    if summary:
        log.warning("%s: %s", root, summary)
    found = {split: _pairs_split(root, *dirs) for split, dirs in layout.items()}
    found = {split: columns for split, columns in found.items() if columns[0]}
    if not found:
        raise DataSourceError(f"{root}: no images found in the image folders")
    if all(m is None for columns in found.values() for m in columns[1]):
        raise DataSourceError(f"{root}: no image has a mask (a mask has the image's relative path and stem, as .png)")
    splits = datasets.DatasetDict({s: split_from_paths(*c, [UNKNOWN_SCENE]) for s, c in found.items()})
    label_map, reduce = folder_labels(root)
    return splits, label_map or LabelMap.ade20k(), bool(reduce)

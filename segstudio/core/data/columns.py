"""Bring a split of any image/mask dataset (``save_to_disk`` or Hub) to the common four-column schema."""

from __future__ import annotations

from pathlib import PurePosixPath

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from segstudio.core.data.schema import COLUMNS, UNKNOWN_SCENE, DataSourceError, canonical_split

IMAGE_GUESSES = ("image", "pixel_values", "img", "images")
MASK_GUESSES = ("annotation", "label", "mask", "segmentation", "semantic_segmentation", "labels", "masks",
                "segmentation_mask", "gt", "seg")
SCENE_GUESSES = ("scene_category", "scene")
NAME_GUESSES = ("file_name", "filename", "image_path", "path")
SCENE_PARSE_SCENES = 1055  # scene_parse_150's scene_category ClassLabel: the ADE20K scene names


def has_scene_parse_features(splits: datasets.DatasetDict | datasets.Dataset) -> bool:
    """scene_parse_150's columns: image and annotation images and a ``scene_category`` of its 1,055 scenes."""
    first = splits if isinstance(splits, datasets.Dataset) else next(iter(splits.values()), None)
    if first is None:
        return False
    features = first.features
    scene = features.get("scene_category")
    return (isinstance(features.get("image"), datasets.Image) and isinstance(features.get("annotation"), datasets.Image)
            and isinstance(scene, datasets.ClassLabel) and scene.num_classes == SCENE_PARSE_SCENES)


def _pick(columns: list[str], wanted: str | None, guesses: tuple[str, ...], what: str, option: str) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise DataSourceError(f"no {what} column '{wanted}' (columns: {', '.join(columns)})")
        return wanted
    lowered = {c.lower(): c for c in columns}
    found = next((lowered[g] for g in guesses if g in lowered), None)
    if found is None and what == "image":
        raise DataSourceError(f"no image column found (columns: {', '.join(columns)}); name it with {option}")
    return found


def _as_image(split: datasets.Dataset, column: str, what: str) -> datasets.Dataset:
    feature = split.features[column]
    if isinstance(feature, datasets.Image):
        return split if feature.decode else split.cast_column(column, datasets.Image())
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        return split.cast_column(column, datasets.Image())
    raise DataSourceError(f"the {what} column '{column}' holds {type(feature).__name__} values, not images")


def _stored_paths(split: datasets.Dataset, column: str) -> list[str | None]:
    """The path stored with each image (arrow ``path`` field), without reading any image bytes."""
    table = split.select_columns([column]).with_format("arrow")[:]
    array = table.column(column)
    if pa.types.is_struct(array.type):
        array = pc.struct_field(array, "path")
    return array.to_pylist()


def _file_names(split: datasets.Dataset, name: str, image_column: str, columns: list[str]) -> list[str]:
    """Each row's own file name column, else the image's stored path (relative, or its base name), else a stand-in."""
    column = next((c for c in NAME_GUESSES if c in columns), None)
    if column is not None and isinstance(split.features[column], datasets.Value):
        stored = [None if v is None else str(v) for v in split[column]]
    else:
        stored = _stored_paths(split, image_column)
    names = []
    for i, path in enumerate(stored):
        if not path:
            names.append(f"{name}/{i + 1:06d}")
        elif path.startswith("/") or "://" in path or ":\\" in path:
            names.append(PurePosixPath(path.replace("\\", "/")).name)
        else:
            names.append(path.replace("\\", "/"))
    return names


def _scene_column(split: datasets.Dataset, columns: list[str]) -> tuple[list[int], list[str]]:
    column = next((c for c in SCENE_GUESSES if c in columns), None)
    if column is None:
        return [0] * len(split), [UNKNOWN_SCENE]
    feature = split.features[column]
    values = split[column]
    if isinstance(feature, datasets.ClassLabel):
        return [0 if v is None or v < 0 else int(v) for v in values], list(feature.names)
    names = sorted({str(v) for v in values if v is not None} | {UNKNOWN_SCENE})
    index = {n: i for i, n in enumerate(names)}
    return [index[str(v)] if v is not None else index[UNKNOWN_SCENE] for v in values], names


def normalise_split(
    split: datasets.Dataset, name: str, image_column: str | None, mask_column: str | None
) -> datasets.Dataset:
    """Columns image / annotation / scene_category / file_name; other columns are dropped."""
    columns = list(split.column_names)
    image = _pick(columns, image_column, IMAGE_GUESSES, "image", "--image-column")
    mask = _pick(columns, mask_column, MASK_GUESSES, "mask", "--mask-column")
    if mask == image:
        raise DataSourceError(f"the image and the mask column are both '{image}'")
    file_names = _file_names(split, name, image, columns)
    scenes, scene_names = _scene_column(split, columns)
    keep = [c for c in (image, mask) if c is not None]
    out = split.select_columns(keep).rename_columns({image: "__image", **({mask: "__mask"} if mask else {})})
    out = out.rename_columns({"__image": "image", **({"__mask": "annotation"} if mask else {})})
    out = _as_image(out, "image", "image")
    if mask is None:
        out = out.add_column("annotation", [None] * len(out), feature=datasets.Image())
    else:
        out = _as_image(out, "annotation", "mask")
    out = out.add_column("scene_category", scenes, feature=datasets.ClassLabel(names=scene_names))
    out = out.add_column("file_name", file_names, feature=datasets.Value("string"))
    return out.select_columns(COLUMNS)


def normalise_splits(
    splits: datasets.DatasetDict | datasets.Dataset, image_column: str | None, mask_column: str | None, where: str
) -> datasets.DatasetDict:
    """Split names mapped to train / validation / test (a lone split of another name becomes train)."""
    if isinstance(splits, datasets.Dataset):
        splits = datasets.DatasetDict({"train": splits})
    mapped: dict[str, datasets.Dataset] = {}
    for original, split in splits.items():
        target = canonical_split(original) or ("train" if len(splits) == 1 else None)
        if target is None:
            known = ", ".join(splits)
            raise DataSourceError(f"{where}: split '{original}' is not train, validation or test (splits: {known})")
        if target in mapped:
            raise DataSourceError(f"{where}: two splits map to '{target}'")
        mapped[target] = normalise_split(split, target, image_column, mask_column)
    return datasets.DatasetDict(mapped)

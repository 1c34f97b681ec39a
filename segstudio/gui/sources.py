"""What the image list shows: a dataset split or a set of dropped files, read lazily (no Qt here).

Opening a source reads only the ``file_name`` and ``scene_category`` columns; images and masks are decoded
when a row is shown (thumbnails) or selected (viewer), from whichever thread asks.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

DROPPED = "dropped"
_TOKENS = itertools.count(1)


@dataclass(frozen=True)
class Entry:
    """One row of the image list."""

    index: int
    file_name: str
    scene: str


def upright_rgb(image: Image.Image) -> Image.Image:
    """EXIF orientation applied, RGB (the same as the core's reading of dataset rows)."""
    from segstudio.core.imageio import to_rgb

    return to_rgb(ImageOps.exif_transpose(image))


def thumbnail_array(image: Image.Image, size: int) -> np.ndarray:
    """(h, w, 3) uint8 no larger than size x size; JPEG decodes at a reduced scale (draft mode)."""
    if image.format == "JPEG":
        image.draft("RGB", (size * 2, size * 2))
    image = upright_rgb(image)
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


class SplitSource:
    """One split of a ``SegDataset``; masks come back as model ids through the dataset's convention."""

    def __init__(self, dataset: Any, split: str) -> None:
        self.dataset = dataset
        self.split = split
        self.token = f"{dataset.source}#{id(dataset)}:{split}"
        rows = dataset.splits[split]
        self.name = f"{split} ({len(rows)})"
        scenes = dataset.scene_names(split)
        meta = rows.select_columns(["file_name", "scene_category"]).to_dict()  # one batch read, no decoding
        names = [str(n) for n in meta["file_name"]]
        scene_ids = list(meta["scene_category"])
        self.entries = [
            Entry(i, names[i], scenes[s] if isinstance(s, int) and 0 <= s < len(scenes) else "")
            for i, s in enumerate(scene_ids)
        ]
        self._images = rows.select_columns(["image"])
        self._masks = rows.select_columns(["annotation"]) if "annotation" in rows.column_names else None

    @property
    def label_map(self):
        return self.dataset.label_map

    @property
    def convention(self):
        return self.dataset.convention

    def __len__(self) -> int:
        return len(self.entries)

    def raw_image(self, index: int) -> Image.Image:
        return self._images[index]["image"]

    def image(self, index: int) -> Image.Image:
        return upright_rgb(self.raw_image(index))

    def ground_truth(self, index: int) -> np.ndarray | None:
        """Model ids (uint8 for up to 255 classes) or None for an unannotated image."""
        if self._masks is None:
            return None
        annotation = self._masks[index]["annotation"]
        if annotation is None:
            return None
        mask = np.asarray(annotation)
        if mask.ndim == 3:
            mask = mask[..., 0]
        return np.asarray(self.convention.to_model_ids(mask))

    def thumbnail(self, index: int, size: int) -> np.ndarray:
        return thumbnail_array(self.raw_image(index), size)


class FileSource:
    """Image files dropped on the window: predicted, never scored."""

    def __init__(self, paths: list[tuple[Path, Path]]) -> None:
        self.paths = [Path(p) for p, _ in paths]
        self.token = f"{DROPPED}:{next(_TOKENS)}"
        self.split = DROPPED
        self.name = f"Dropped images ({len(paths)})"
        self.entries = [Entry(i, str(rel), "") for i, (_, rel) in enumerate(paths)]
        self.label_map = None
        self.convention = None

    def __len__(self) -> int:
        return len(self.entries)

    def image(self, index: int) -> Image.Image:
        from segstudio.core.imageio import read_image

        return read_image(self.paths[index])

    def ground_truth(self, index: int) -> np.ndarray | None:
        return None

    def thumbnail(self, index: int, size: int) -> np.ndarray:
        with Image.open(self.paths[index]) as image:
            return thumbnail_array(image, size)


@dataclass(frozen=True)
class PackedMask:
    """A uint8 / uint16 id mask kept zlib-compressed (segmentation masks shrink 20-100x)."""

    shape: tuple[int, int]
    dtype: str
    data: bytes

    @classmethod
    def pack(cls, ids: np.ndarray) -> PackedMask:
        ids = np.ascontiguousarray(ids)
        return cls(tuple(ids.shape), ids.dtype.str, zlib.compress(ids.tobytes(), 1))

    def unpack(self) -> np.ndarray:
        return np.frombuffer(zlib.decompress(self.data), dtype=np.dtype(self.dtype)).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return len(self.data)

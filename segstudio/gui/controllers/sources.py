"""What the image list shows: a dataset split or a set of dropped files, read lazily (no Qt here).

Opening a source reads only the ``file_name`` and ``scene_category`` columns; images and masks are decoded
when a row is shown (thumbnails) or selected (viewer), from whichever thread asks, by the core's one image and
mask reader (``segstudio.core.data.imageio``): a broken file raises its ``ImageReadError``, one line.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

DROPPED = "dropped"
_TOKENS = itertools.count(1)


@dataclass(frozen=True)
class Entry:
    """One row of the image list."""

    index: int
    file_name: str
    scene: str


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
        from segstudio.core.data import stored_cells

        self._images = stored_cells(rows.select_columns(["image"]))
        self._masks = stored_cells(rows.select_columns(["annotation"])) if "annotation" in rows.column_names else None

    @property
    def label_map(self):
        return self.dataset.label_map

    @property
    def convention(self):
        return self.dataset.convention

    def __len__(self) -> int:
        return len(self.entries)

    def image(self, index: int) -> Image.Image:
        from segstudio.core.data import read_image

        return read_image(self._images[index]["image"])

    def ground_truth(self, index: int, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """Model ids (uint8 for up to 255 classes) or None for an unannotated image; with ``size`` (the image's
        width, height) a mask of another size is refused, as evaluation refuses it."""
        if self._masks is None:
            return None
        annotation = self._masks[index]["annotation"]
        if annotation is None:
            return None
        from segstudio.core.data import read_mask

        return np.asarray(self.convention.to_model_ids(read_mask(annotation, size)))

    def thumbnail(self, index: int, size: int) -> np.ndarray:
        from segstudio.core.data import read_thumbnail

        return read_thumbnail(self._images[index]["image"], size)


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
        from segstudio.core.data import read_image

        return read_image(self.paths[index])

    def ground_truth(self, index: int, size: tuple[int, int] | None = None) -> np.ndarray | None:
        return None

    def thumbnail(self, index: int, size: int) -> np.ndarray:
        from segstudio.core.data import read_thumbnail

        return read_thumbnail(self.paths[index], size)


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

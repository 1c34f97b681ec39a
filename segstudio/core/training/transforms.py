"""Per-batch transforms for ``datasets.set_transform`` / ``with_transform``, the collate, and logits -> ids.

Images and masks are read by the one reader (``segstudio.core.data.imageio``) from the cells as stored, so an
unreadable item (a decompression bomb, a truncated file, a mask of the wrong size) is left out of its batch,
named once in the log and kept in ``SegmentationTransform.skipped``, instead of ending the run. Augmentation
keeps image and mask aligned (the same flip and crop for both); the image processor then resizes, rescales and
normalises. Label reduction is done once, by the dataset's ``LabelConvention``, and the processor is always
called with ``do_reduce_labels=False``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from segstudio.core.data.imageio import ImageReadError, read_pair, stored_cells
from segstudio.core.labels.label_map import LabelConvention

log = logging.getLogger(__name__)


def random_flip_crop(image: Image.Image, mask: np.ndarray, min_scale: float = 0.6) -> tuple[Image.Image, np.ndarray]:
    """Horizontal flip and a random crop, the same for image and mask (torch RNG, seeded by Trainer)."""
    if torch.rand(()) < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        mask = mask[:, ::-1]
    width, height = image.size
    scale = float(torch.empty(()).uniform_(min_scale, 1.0))
    crop_w, crop_h = max(1, round(width * scale)), max(1, round(height * scale))
    left = int(torch.randint(0, width - crop_w + 1, ()))
    top = int(torch.randint(0, height - crop_h + 1, ()))
    image = image.crop((left, top, left + crop_w, top + crop_h))
    return image, np.ascontiguousarray(mask[top : top + crop_h, left : left + crop_w])


class SegmentationTransform:
    """Turns a batch of dataset rows into ``pixel_values`` and ``labels`` (model ids, ignore index kept).

    Attach it with :meth:`apply_to` (the rows must reach it undecoded). Unreadable rows are left out of the
    batch and recorded in ``skipped`` (file name -> reason, each once); a batch with no readable row becomes one
    blank image whose every pixel is ignored, which the trainer's ignored-batch guard then skips.
    """

    def __init__(self, processor: Any, convention: LabelConvention, size: int, augment: bool) -> None:
        self.processor = processor
        self.convention = convention
        self.size = {"height": size, "width": size}
        self.augment = augment
        self.skipped: dict[str, str] = {}
        self._lock = threading.Lock()

    def apply_to(self, rows: Any) -> Any:
        """``rows`` (a ``datasets.Dataset``) with this transform, its images and masks left for it to read."""
        return stored_cells(rows).with_transform(self)

    def _read(self, image_cell: Any, annotation: Any) -> tuple[Image.Image, np.ndarray]:
        if annotation is None:
            raise ImageReadError("no annotation", "no annotation (training and evaluation images need one)")
        image, mask = read_pair(image_cell, annotation)
        return image, self.convention.to_model_ids(mask)

    def _skip(self, name: str, reason: str) -> None:
        with self._lock:
            if name in self.skipped:
                return
            self.skipped[name] = reason
        log.info("skipped %s: %s (%d item(s) skipped so far)", name, reason, len(self.skipped))

    def __call__(self, batch: dict[str, list]) -> dict[str, torch.Tensor]:
        images, masks = [], []
        names = batch.get("file_name") or [str(i) for i in range(len(batch["image"]))]
        for image_cell, annotation, name in zip(batch["image"], batch["annotation"], names, strict=True):
            try:
                image, mask = self._read(image_cell, annotation)
            except ImageReadError as exc:
                self._skip(str(name), exc.reason)
                continue
            if self.augment:
                image, mask = random_flip_crop(image, mask)
            images.append(image)
            masks.append(mask)
        if not images:  # nothing readable: one blank, wholly ignored image keeps the batch's shape valid
            images = [Image.new("RGB", (self.size["width"], self.size["height"]))]
            ignored = self.convention.ignore_index
            masks = [np.full((self.size["height"], self.size["width"]), ignored, np.min_scalar_type(ignored))]
        encoded = self.processor(
            images,
            segmentation_maps=masks,
            do_reduce_labels=False,
            size=self.size,
            return_tensors="pt",
        )
        return {"pixel_values": encoded["pixel_values"], "labels": encoded["labels"].long()}


def collate_batch(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack per-row tensors into a batch."""
    return {
        "pixel_values": torch.stack([row["pixel_values"] for row in rows]),
        "labels": torch.stack([row["labels"] for row in rows]),
    }


def logits_to_labels(logits: Any, labels: torch.Tensor) -> torch.Tensor:
    """Upsample logits to the label size and take the argmax on the device (keeps eval memory small)."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    upsampled = F.interpolate(logits.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return upsampled.argmax(dim=1)  # int64: gloo cannot gather int16

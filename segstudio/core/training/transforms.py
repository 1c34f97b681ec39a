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
from PIL import Image, ImageEnhance

from segstudio.core.data.imageio import ImageReadError, read_pair, stored_cells
from segstudio.core.labels.label_map import LabelConvention

log = logging.getLogger(__name__)


AUGMENTATIONS = ("none", "flip", "flip-crop", "flip-crop-color")
SKIPPED = "skipped"  # the batch key that carries unreadable rows out of dataloader worker processes


def random_flip(image: Image.Image, mask: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """A horizontal flip half of the time, the same for image and mask (torch RNG, seeded by Trainer)."""
    if torch.rand(()) < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        mask = mask[:, ::-1]
    return image, mask


def random_flip_crop(image: Image.Image, mask: np.ndarray, min_scale: float = 0.6) -> tuple[Image.Image, np.ndarray]:
    """Horizontal flip and a random crop, the same for image and mask (torch RNG, seeded by Trainer)."""
    image, mask = random_flip(image, mask)
    width, height = image.size
    scale = float(torch.empty(()).uniform_(min_scale, 1.0))
    crop_w, crop_h = max(1, round(width * scale)), max(1, round(height * scale))
    left = int(torch.randint(0, width - crop_w + 1, ()))
    top = int(torch.randint(0, height - crop_h + 1, ()))
    image = image.crop((left, top, left + crop_w, top + crop_h))
    return image, np.ascontiguousarray(mask[top : top + crop_h, left : left + crop_w])


def random_colour(image: Image.Image, strength: float = 0.2) -> Image.Image:
    """Brightness, contrast and saturation each scaled by a factor in 1 ± ``strength`` (the image only)."""
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        factor = float(torch.empty(()).uniform_(1.0 - strength, 1.0 + strength))
        image = enhancer(image).enhance(factor)
    return image


def augment(image: Image.Image, mask: np.ndarray, augmentation: str) -> tuple[Image.Image, np.ndarray]:
    """One of ``AUGMENTATIONS`` applied to an image and its mask (kept aligned)."""
    if augmentation == "flip":
        return random_flip(image, mask)
    if augmentation in ("flip-crop", "flip-crop-color"):
        image, mask = random_flip_crop(image, mask)
    if augmentation == "flip-crop-color":
        image = random_colour(image)
    return image, mask


class SegmentationTransform:
    """Turns a batch of dataset rows into ``pixel_values`` and ``labels`` (model ids, ignore index kept).

    Attach it with :meth:`apply_to` (the rows must reach it undecoded). Unreadable rows are left out of the
    batch and recorded in ``skipped`` (file name -> reason, each once); a batch with no readable row becomes one
    blank image whose every pixel is ignored, which the trainer's ignored-batch guard then skips. The batch's
    first row also names them under ``SKIPPED`` ("name\treason"), so those a dataloader worker process met reach
    the trainer. ``augment``: one of ``AUGMENTATIONS`` (True: flip-crop, False: none).
    """

    def __init__(self, processor: Any, convention: LabelConvention, size: int, augment: bool | str) -> None:
        self.processor = processor
        self.convention = convention
        self.size = {"height": size, "width": size}
        self.augmentation = {True: "flip-crop", False: "none"}.get(augment, augment)
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
        self.skipped: dict[str, str] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_lock"]  # a worker process started by spawn gets its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

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

    def __call__(self, batch: dict[str, list]) -> dict[str, Any]:
        images, masks, left_out = [], [], []
        names = batch.get("file_name") or [str(i) for i in range(len(batch["image"]))]
        for image_cell, annotation, name in zip(batch["image"], batch["annotation"], names, strict=True):
            try:
                image, mask = self._read(image_cell, annotation)
            except ImageReadError as exc:
                self._skip(str(name), exc.reason)
                left_out.append(f"{name}\t{exc.reason}")
                continue
            image, mask = augment(image, mask, self.augmentation)
            images.append(image)
            masks.append(mask)
        if not images:  # nothing readable: one blank, wholly ignored image keeps the batch's shape valid
            images = [Image.new("RGB", (self.size["width"], self.size["height"]))]
            ignored = self.convention.ignore_index
            masks = [np.full((self.size["height"], self.size["width"]), ignored, np.min_scalar_type(ignored))]
        wide = any(int(mask.max(initial=0)) > 255 for mask in masks)  # the processor's uint8 step refuses these
        encoded = self.processor(
            images,
            segmentation_maps=None if wide else masks,
            do_reduce_labels=False,
            size=self.size,
            return_tensors="pt",
        )
        labels = resized_labels(masks, self.size) if wide else encoded["labels"].long()
        rows = {"pixel_values": encoded["pixel_values"], "labels": labels}
        if left_out:
            rows[SKIPPED] = [left_out] + [[] for _ in images[1:]]
        return rows


def resized_labels(masks: list[np.ndarray], size: dict[str, int]) -> torch.Tensor:
    """(B, H, W) int64 labels resized as the image processor resizes segmentation maps (PIL, nearest), for masks
    with ids beyond 255 (16-bit), which the processor cannot turn into the 8-bit image it resizes."""
    shape = (size["width"], size["height"])
    resized = [np.asarray(Image.fromarray(np.asarray(mask, np.int32), "I").resize(shape, Image.Resampling.NEAREST))
               for mask in masks]
    return torch.from_numpy(np.stack(resized).astype(np.int64))


def collate_batch(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack per-row tensors into a batch (and gather the rows left out, if any)."""
    batch = {
        "pixel_values": torch.stack([row["pixel_values"] for row in rows]),
        "labels": torch.stack([row["labels"] for row in rows]),
    }
    left_out = [item for row in rows for item in row.get(SKIPPED, [])]
    if left_out:
        batch[SKIPPED] = left_out
    return batch


def record_left_out(batch: dict[str, Any], skipped: dict[str, str]) -> None:
    """Take the rows a batch names as left out (``SKIPPED``) off it, into ``skipped`` (file name -> reason)."""
    for item in batch.pop(SKIPPED, []):
        name, _, reason = item.partition("\t")
        skipped.setdefault(name, reason)


def logits_to_labels(logits: Any, labels: torch.Tensor) -> torch.Tensor:
    """Upsample logits to the label size and take the argmax on the device (keeps eval memory small)."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    upsampled = F.interpolate(logits.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return upsampled.argmax(dim=1)  # int64: gloo cannot gather int16

"""Per-batch transforms for ``datasets.set_transform`` / ``with_transform``, the collate, and logits -> ids.

Augmentation keeps image and mask aligned (the same flip and crop for both); the image processor then
resizes, rescales and normalises. Label reduction is done once, by the dataset's ``LabelConvention``, and the
processor is always called with ``do_reduce_labels=False``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from segstudio.core.labels import LabelConvention


def upright_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert to RGB (masks are drawn on the upright image)."""
    return ImageOps.exif_transpose(image).convert("RGB")


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
    """Turns a batch of dataset rows into ``pixel_values`` and ``labels`` (model ids, ignore index kept)."""

    def __init__(self, processor: Any, convention: LabelConvention, size: int, augment: bool) -> None:
        self.processor = processor
        self.convention = convention
        self.size = {"height": size, "width": size}
        self.augment = augment

    def __call__(self, batch: dict[str, list]) -> dict[str, torch.Tensor]:
        images, masks = [], []
        for image, annotation in zip(batch["image"], batch["annotation"], strict=True):
            image = upright_rgb(image)
            if annotation is None:
                raise ValueError("a training or evaluation image has no annotation")
            mask = self.convention.to_model_ids(np.asarray(annotation))
            if mask.shape != (image.height, image.width):
                raise ValueError(f"mask size {mask.shape[::-1]} differs from image size {image.size}")
            if self.augment:
                image, mask = random_flip_crop(image, mask)
            images.append(image)
            masks.append(mask)
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

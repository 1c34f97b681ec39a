"""The model input exactly as transformers' SegformerImageProcessor makes it from an RGB image, only faster.

The processor resizes the uint8 image with PIL, then rescales (``float32(float64(byte) * factor)``) and normalises
(``(value - mean) / std`` in float32). Each output value depends only on its input byte and channel, so those
float steps are done once, for the 256 bytes of each channel, and every pixel is looked up in that table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

BILINEAR = 2  # PIL's code for bilinear resampling, the processor's default


def resample_code(processor: Any) -> int:
    """The processor's PIL resampling filter as an int (bilinear when it names none)."""
    value = getattr(processor, "resample", None)
    return BILINEAR if value is None else int(getattr(value, "value", value))


def _per_channel(value: Any) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=np.float32), (3,)).reshape(3, 1)


def value_table(processor: Any) -> np.ndarray:
    """(3, 256) float32: the processor's rescaled and normalised value of each byte in each channel."""
    values = np.arange(256, dtype=np.uint8)
    if getattr(processor, "do_rescale", True):
        scaled = (values.astype(np.float64) * processor.rescale_factor).astype(np.float32)
    else:
        scaled = values.astype(np.float32)
    table = np.broadcast_to(scaled, (3, 256))
    if getattr(processor, "do_normalize", True):
        table = (table - _per_channel(processor.image_mean)) / _per_channel(processor.image_std)
    return np.ascontiguousarray(table, dtype=np.float32)


def resized_rgb(image: Image.Image, size: tuple[int, int], resample: int) -> np.ndarray:
    """(H, W, 3) uint8: ``image`` as RGB, resized by PIL to ``size`` (height, width) as the processor does."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), resample=resample)
    return np.asarray(image)


def pixel_values(
    images: Sequence[Image.Image], size: tuple[int, int], resample: int, table: np.ndarray
) -> torch.Tensor:
    """(B, 3, H, W) float32 on the CPU, equal to the processor's ``pixel_values`` for these RGB images."""
    batch = np.empty((len(images), 3, *size), dtype=np.float32)
    for index, image in enumerate(images):
        pixels = resized_rgb(image, size, resample)
        for channel in range(3):  # one image and channel at a time: the table lookup stays in cache
            np.take(table[channel], pixels[..., channel], out=batch[index, channel])
    return torch.from_numpy(batch)

"""Colour masks, overlays and error maps as uint8 RGB arrays (NumPy only; the GUI and export share them).

Colours and overlays are computed a block of rows at a time, so the memory beyond the output stays a few
megabytes whatever the image's size (an 81-megapixel overlay would otherwise need ~4 GB of float temporaries).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from segstudio.core.labels.label_map import IGNORE_INDEX

CORRECT_RGB = (20, 20, 20)
WRONG_RGB = (230, 30, 30)
IGNORED_RGB = (128, 128, 128)
ERROR_RGB = np.array([CORRECT_RGB, WRONG_RGB, IGNORED_RGB], dtype=np.uint8)  # by error code
BLOCK_PIXELS = 1 << 20  # pixels per block of rows


def row_blocks(height: int, width: int) -> Iterator[slice]:
    """Slices of whole rows covering ``height`` rows, each about ``BLOCK_PIXELS`` pixels."""
    step = max(1, BLOCK_PIXELS // max(width, 1))
    for top in range(0, height, step):
        yield slice(top, min(top + step, height))


def _table(palette: np.ndarray, size: int, ignore_index: int) -> np.ndarray:
    """``size`` colours: the palette, then black; the ignore index black too."""
    palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:size]
    table = np.zeros((size, 3), dtype=np.uint8)
    table[: len(palette)] = palette
    if 0 <= ignore_index < size:
        table[ignore_index] = 0
    return table


def colorize(ids: np.ndarray, palette: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(H, W, 3) uint8 colours of class ``ids``; ignored and out-of-range ids are black."""
    ids = np.asarray(ids)
    if ids.dtype == np.uint8:
        return _table(palette, 256, ignore_index)[ids]
    count = len(np.asarray(palette).reshape(-1, 3))
    table = _table(palette, count + 1, ignore_index)
    out = np.empty((*ids.shape, 3), dtype=np.uint8)
    for rows in row_blocks(*ids.shape[:2]) if ids.ndim == 2 else [slice(None)]:
        index = ids[rows].astype(np.intp)
        index[(index < 0) | (index >= count) | (index == ignore_index)] = count
        out[rows] = table[index]
    return out


def overlay(
    image_rgb: np.ndarray,
    ids: np.ndarray,
    palette: np.ndarray,
    alpha: float = 0.5,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """The image with class colours blended in at ``alpha``; ignored pixels show the image unchanged."""
    image = np.asarray(image_rgb, dtype=np.uint8)
    ids = np.asarray(ids)
    if image.shape[:2] != ids.shape:
        raise ValueError(
            f"image is {image.shape[1]}x{image.shape[0]} but the mask is {ids.shape[1]}x{ids.shape[0]}"
        )
    out = np.empty(image.shape, dtype=np.uint8)
    for rows in row_blocks(*ids.shape):
        block, block_ids = image[rows], ids[rows]
        colours = colorize(block_ids, palette, ignore_index).astype(np.float32)
        blended = block.astype(np.float32)
        blended *= 1.0 - alpha
        colours *= alpha
        blended += colours
        out[rows] = np.clip(np.rint(blended, out=blended), 0, 255, out=blended)
        ignored = block_ids == ignore_index
        out[rows][ignored] = block[ignored]
    return out


def error_codes(pred: np.ndarray, gt: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(H, W) uint8: 0 correct, 1 wrong, 2 ignored by the ground truth (indexes into ``ERROR_RGB``)."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    codes = np.not_equal(pred, gt).view(np.uint8).copy()
    codes[gt == ignore_index] = 2
    return codes


def error_map(pred: np.ndarray, gt: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(H, W, 3) uint8: wrong pixels red, correct ones dark, pixels ignored by the ground truth grey."""
    return ERROR_RGB[error_codes(pred, gt, ignore_index)]

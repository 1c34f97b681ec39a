"""The viewer's colour layers as indexed images: a uint8 code per pixel and a small RGBA colour table.

Hand-written rather than building (H, W, 4) RGBA arrays in NumPy: with codes + a colour table Qt expands
the colours in C++ when the pixmap is made, which keeps switching images at 683x512 to a few milliseconds
per layer (the RGBA route cost ~40 ms per layer). A class mask in uint8 is already its own code array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segstudio.core.labels import ERROR_RGB, error_codes

TP_COLOUR, FP_COLOUR, FN_COLOUR = (40, 200, 70), (255, 150, 0), (40, 110, 255)
FIXED_COLOUR, BROKEN_COLOUR = (40, 200, 70), (230, 30, 30)
LOW_CONFIDENCE_COLOUR = (255, 230, 0)
SUSPECTED_COLOUR = (230, 0, 230)
CLEAR = (0, 0, 0, 0)

Colour = tuple[int, int, int, int]


@dataclass(frozen=True)
class IndexedLayer:
    """``codes`` (H, W) uint8 into ``colours`` (at most 256 RGBA tuples); codes past the table are clear."""

    codes: np.ndarray
    colours: tuple[Colour, ...]


def _opaque(rgb) -> Colour:
    r, g, b = (int(v) for v in rgb)
    return (r, g, b, 255)


def class_layer(ids: np.ndarray, palette: np.ndarray, ignore_index: int, only: int | None = None) -> IndexedLayer:
    """Class colours of ``ids``; ignored pixels clear, ids past the palette black; ``only``: that class alone."""
    palette = np.asarray(palette, np.uint8).reshape(-1, 3)
    ids = np.asarray(ids)
    if ids.dtype == np.uint8:
        values, codes = np.arange(256), ids
    else:  # wider ids: code the distinct values present (an image never shows more than 256 classes)
        values, inverse = np.unique(ids, return_inverse=True)
        if values.size > 256:
            raise ValueError(f"an image with {values.size} distinct class ids cannot be shown as one layer")
        codes = inverse.reshape(ids.shape).astype(np.uint8)
    colours = []
    for value in values.tolist():
        if value == ignore_index or (only is not None and value != only):
            colours.append(CLEAR)
        elif 0 <= value < len(palette):
            colours.append(_opaque(palette[value]))
        else:
            colours.append((0, 0, 0, 255))
    return IndexedLayer(np.ascontiguousarray(codes), tuple(colours))


def error_layer(gt: np.ndarray, pred: np.ndarray, ignore_index: int,
                visible: np.ndarray | None = None) -> IndexedLayer:
    """Wrong red, correct dark, ignored grey (the core's error-map colours); pixels not ``visible`` clear."""
    codes = error_codes(pred, gt, ignore_index)
    if visible is not None:
        codes[~visible] = 3
    return IndexedLayer(codes, (*(_opaque(rgb) for rgb in ERROR_RGB), CLEAR))


def outcome_masks(gt: np.ndarray, pred: np.ndarray, class_id: int,
                  ignore_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TP, FP, FN) boolean masks of ``class_id``; ignored pixels are in none of them."""
    labelled = gt != ignore_index
    is_gt, is_pred = (gt == class_id) & labelled, (pred == class_id) & labelled
    return is_gt & is_pred, is_pred & ~is_gt, is_gt & ~is_pred


def tpfpfn_layer(gt: np.ndarray, pred: np.ndarray, class_id: int, ignore_index: int) -> IndexedLayer:
    """True positives green, false positives orange, false negatives blue; everything else clear."""
    codes = np.zeros(gt.shape, np.uint8)
    for code, mask in enumerate(outcome_masks(gt, pred, class_id, ignore_index), start=1):
        codes[mask] = code
    return IndexedLayer(codes, (CLEAR, _opaque(TP_COLOUR), _opaque(FP_COLOUR), _opaque(FN_COLOUR)))


def flips_layer(flips: np.ndarray) -> IndexedLayer:
    """A flip map (0 unchanged, 1 fixed by B, 2 broken by B): fixed green, broken red."""
    codes = np.ascontiguousarray(flips, dtype=np.uint8)
    return IndexedLayer(codes, (CLEAR, _opaque(FIXED_COLOUR), _opaque(BROKEN_COLOUR)))


def low_confidence_layer(margin: np.ndarray, threshold: float) -> IndexedLayer:
    """Pixels whose top-1 minus top-2 probability is below ``threshold``, in yellow."""
    codes = (np.asarray(margin, np.float32) < threshold).view(np.uint8)
    return IndexedLayer(np.ascontiguousarray(codes), (CLEAR, _opaque(LOW_CONFIDENCE_COLOUR)))


def suspects_layer(suspected: np.ndarray) -> IndexedLayer:
    """Pixels whose label the model doubts (the core's ``suspected_map``), in magenta."""
    codes = np.ascontiguousarray(np.asarray(suspected, dtype=bool).view(np.uint8))
    return IndexedLayer(codes, (CLEAR, _opaque(SUSPECTED_COLOUR)))

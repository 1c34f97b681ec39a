"""High-contrast class colours: the classes shown together get colours far apart in CIELAB.

ADE20K's palette gives near-identical colours to classes that meet in one picture (sky and water, tree and grass,
wall and road). ``high_contrast_palette`` recolours only the classes present, from a Glasbey set (each colour the
one farthest in CIELAB from those already taken), so any two of them differ by a large ΔE*ab.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from segstudio.core.labels.label_map import IGNORE_INDEX

PALETTES = {"ade20k": "ADE20K", "contrast": "High contrast"}
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])  # the sRGB reference white (CIE D65, Y = 1)
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]])
_GRID_LEVELS = 18  # candidate colours: an 18 x 18 x 18 grid of the sRGB cube (step 15)
_LIGHTNESS = (30.0, 90.0)  # CIELAB L* of the candidates: darker or lighter class colours vanish in an overlay


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of 8-bit sRGB colours, shape (..., 3) -> float64 (..., 3)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = linear @ _SRGB_TO_XYZ.T / _WHITE_D65
    delta = 6.0 / 29.0
    f = np.where(t > delta**3, np.cbrt(t), t / (3 * delta**2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                    axis=-1)


def min_delta_e(rgb: np.ndarray) -> float:
    """The smallest ΔE*ab (CIE76: distance in CIELAB) between any two of the colours (inf for fewer than two)."""
    lab = srgb_to_lab(np.asarray(rgb).reshape(-1, 3))
    if len(lab) < 2:
        return float("inf")
    distance = np.linalg.norm(lab[:, None, :] - lab[None, :, :], axis=-1)
    return float(distance[np.triu_indices(len(lab), 1)].min())


@lru_cache(maxsize=8)
def separated_colours(count: int) -> np.ndarray:
    """``count`` sRGB colours of mid lightness chosen greedily (Glasbey): each the candidate farthest in CIELAB from
    black, white and the colours before it. A prefix of a longer list."""
    levels = np.linspace(0, 255, _GRID_LEVELS).round()
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = srgb_to_lab(grid)
    mid = (lab[:, 0] >= _LIGHTNESS[0]) & (lab[:, 0] <= _LIGHTNESS[1])
    grid, lab = grid[mid], lab[mid]
    nearest = np.minimum(np.linalg.norm(lab - srgb_to_lab(np.zeros(3)), axis=1),
                         np.linalg.norm(lab - srgb_to_lab(np.full(3, 255.0)), axis=1))
    chosen = []
    for _ in range(count):
        best = int(np.argmax(nearest))
        chosen.append(best)
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[best], axis=1))
    return grid[chosen].astype(np.uint8)


def present_classes(num_labels: int, *masks: np.ndarray | None, ignore_index: int = IGNORE_INDEX) -> list[int]:
    """The class ids 0..num_labels-1 found in any of the masks (ignored and out-of-range ids left out)."""
    found = np.zeros(num_labels, dtype=bool)
    for mask in masks:
        if mask is not None:
            counts = np.bincount(np.asarray(mask).ravel(), minlength=num_labels)[:num_labels]
            found |= counts > 0
    if 0 <= ignore_index < num_labels:
        found[ignore_index] = False
    return [int(i) for i in np.flatnonzero(found)]


def high_contrast_palette(palette: np.ndarray, present: list[int]) -> np.ndarray:
    """``palette`` with the ``present`` classes recoloured from :func:`separated_colours`; each class gets the free
    colour nearest its own (pairs matched closest first), so sky stays bluish and grass greenish where they can."""
    result = np.asarray(palette, dtype=np.uint8).reshape(-1, 3).copy()
    ids = [i for i in dict.fromkeys(present) if 0 <= i < len(result)]
    if not ids:
        return result
    colours = separated_colours(len(ids))
    distance = np.linalg.norm(srgb_to_lab(result[ids])[:, None, :] - srgb_to_lab(colours)[None, :, :], axis=-1)
    free_classes, free_colours = set(range(len(ids))), set(range(len(ids)))
    for flat in np.argsort(distance, axis=None, kind="stable"):
        row, column = divmod(int(flat), len(ids))
        if row in free_classes and column in free_colours:
            result[ids[row]] = colours[column]
            free_classes.discard(row)
            free_colours.discard(column)
    return result

"""Mask editing without Qt: the pixels a tool covers, and compact change records that apply and revert.

Tools give a :class:`Region` (a boolean block and where it sits): a round brush swept along a segment, a flood fill
of a 4-connected region of equal id, a polygon. :func:`change_to` turns a region and the new value(s) (a class, the
ignore value, the prediction, the original mask) into a :class:`MaskChange` that stores only the pixels that
change, as runs of consecutive pixels whose old and new values are each constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]  # (x, y) in pixel units: pixel (col, row) spans [col, col + 1) x [row, row + 1)


@dataclass(frozen=True)
class Region:
    """The pixels a tool covers: ``inside`` (h, w) bool placed with its top-left pixel at (``top``, ``left``)."""

    top: int
    left: int
    inside: np.ndarray

    @property
    def bottom(self) -> int:
        return self.top + self.inside.shape[0]

    @property
    def right(self) -> int:
        return self.left + self.inside.shape[1]

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        """The region as a whole-mask boolean array of ``shape``."""
        out = np.zeros(shape, dtype=bool)
        out[self.top:self.bottom, self.left:self.right] = self.inside
        return out


EMPTY_REGION = Region(0, 0, np.zeros((0, 0), dtype=bool))


def brush_region(shape: tuple[int, int], start: Point, end: Point, diameter: float) -> Region:
    """Pixels whose centre lies within ``diameter / 2`` of the segment ``start``-``end`` (a round brush swept
    along it; one dab when they are equal), clipped to a mask of ``shape`` (rows, cols)."""
    radius = max(float(diameter), 1.0) / 2.0
    (x0, y0), (x1, y1) = (float(v) for v in start), (float(v) for v in end)
    height, width = shape
    left = max(int(np.floor(min(x0, x1) - radius)), 0)
    right = min(int(np.ceil(max(x0, x1) + radius)) + 1, width)
    top = max(int(np.floor(min(y0, y1) - radius)), 0)
    bottom = min(int(np.ceil(max(y0, y1) + radius)) + 1, height)
    if left >= right or top >= bottom:
        return EMPTY_REGION
    cx = np.arange(left, right, dtype=np.float64)[None, :] + 0.5 - x0
    cy = np.arange(top, bottom, dtype=np.float64)[:, None] + 0.5 - y0
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    if length2 > 0:  # distance to the nearest point of the segment
        t = np.clip((cx * dx + cy * dy) / length2, 0.0, 1.0)
        cx, cy = cx - t * dx, cy - t * dy
    return Region(top, left, cx * cx + cy * cy <= radius * radius)


def _runs_of(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate(([False], row, [False])).view(np.int8))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def flood_region(mask: np.ndarray, x: int, y: int) -> Region:
    """The 4-connected region of pixels equal to ``mask[y, x]`` that contains (x, y) (a run-by-run fill)."""
    height, width = mask.shape
    if not (0 <= x < width and 0 <= y < height):
        return EMPTY_REGION
    same = mask == mask[y, x]
    runs = [None] * height  # per row: (starts, ends) of equal-value runs, computed when first reached
    seen: list[np.ndarray | None] = [None] * height

    def row_runs(r: int) -> tuple[np.ndarray, np.ndarray]:
        if runs[r] is None:
            runs[r] = _runs_of(same[r])
            seen[r] = np.zeros(len(runs[r][0]), dtype=bool)
        return runs[r]

    starts, ends = row_runs(y)
    first = int(np.searchsorted(ends, x, side="right"))
    seen[y][first] = True
    stack, filled = [(y, first)], []
    while stack:
        r, i = stack.pop()
        s, e = runs[r][0][i], runs[r][1][i]
        filled.append((r, s, e))
        for nr in (r - 1, r + 1):
            if 0 <= nr < height:
                n_starts, n_ends = row_runs(nr)
                lo = int(np.searchsorted(n_ends, s, side="right"))  # runs that end after s
                hi = int(np.searchsorted(n_starts, e, side="left"))  # and start before e
                for j in range(lo, hi):
                    if not seen[nr][j]:
                        seen[nr][j] = True
                        stack.append((nr, j))
    rows = [r for r, _, _ in filled]
    top, bottom = min(rows), max(rows) + 1
    left, right = min(s for _, s, _ in filled), max(e for _, _, e in filled)
    inside = np.zeros((bottom - top, right - left), dtype=bool)
    for r, s, e in filled:
        inside[r - top, s - left:e - left] = True
    return Region(int(top), int(left), inside)


def polygon_region(shape: tuple[int, int], points: Sequence[tuple[int, int]]) -> Region:
    """The pixels of a filled polygon through pixel coordinates ``points`` (outline included), drawn as Pillow's
    ``ImageDraw.polygon`` draws it, within the polygon's bounding box only."""
    from PIL import Image, ImageDraw

    if len(points) < 2:
        return EMPTY_REGION
    height, width = shape
    xs, ys = [int(p[0]) for p in points], [int(p[1]) for p in points]
    left, top = max(min(xs), 0), max(min(ys), 0)
    right, bottom = min(max(xs) + 1, width), min(max(ys) + 1, height)
    if left >= right or top >= bottom:
        return EMPTY_REGION
    # Drawn unclipped relative to the box's corner, then cut to the mask: a vertex outside keeps its edges' slope.
    ox, oy = min(xs), min(ys)
    canvas = Image.new("L", (max(xs) - ox + 1, max(ys) - oy + 1), 0)
    shifted = [(x - ox, y - oy) for x, y in zip(xs, ys, strict=True)]
    ImageDraw.Draw(canvas).polygon(shifted, fill=1, outline=1)
    drawn = np.asarray(canvas, dtype=bool)
    return Region(top, left, drawn[top - oy:bottom - oy, left - ox:right - ox])


def mask_region(selected: np.ndarray) -> Region:
    """A whole-mask boolean array as a region cut to its bounding box."""
    rows, cols = np.flatnonzero(selected.any(axis=1)), np.flatnonzero(selected.any(axis=0))
    if rows.size == 0:
        return EMPTY_REGION
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return Region(top, left, selected[top:bottom, left:right].copy())


def connected_region(selected: np.ndarray, x: int, y: int) -> Region:
    """The 4-connected part of a boolean map (e.g. the suspected label errors) under pixel (x, y); empty when
    that pixel is not selected."""
    height, width = selected.shape
    if not (0 <= x < width and 0 <= y < height) or not selected[y, x]:
        return EMPTY_REGION
    return flood_region(selected.view(np.uint8), x, y)


@dataclass(frozen=True)
class MaskChange:
    """Changed pixels as runs: run i covers flat indices ``starts[i] .. starts[i] + lengths[i] - 1``, all of
    which held ``old[i]`` before and hold ``new[i]`` after. ``bounds`` (top, left, bottom, right) boxes them."""

    shape: tuple[int, int]
    starts: np.ndarray
    lengths: np.ndarray
    old: np.ndarray
    new: np.ndarray
    bounds: tuple[int, int, int, int] | None

    @property
    def pixels(self) -> int:
        return int(self.lengths.sum())

    @property
    def nbytes(self) -> int:
        """Memory held by the record's arrays."""
        return sum(a.nbytes for a in (self.starts, self.lengths, self.old, self.new))

    def _indices(self) -> np.ndarray:
        lengths = self.lengths.astype(np.int64)
        offsets = np.cumsum(lengths) - lengths
        return np.repeat(self.starts.astype(np.int64) - offsets, lengths) + np.arange(self.pixels, dtype=np.int64)

    def apply(self, mask: np.ndarray) -> None:
        """Write the new values into ``mask`` (in place)."""
        self._write(mask, self.new)

    def revert(self, mask: np.ndarray) -> None:
        """Put the old values back into ``mask`` (in place)."""
        self._write(mask, self.old)

    def _write(self, mask: np.ndarray, values: np.ndarray) -> None:
        if mask.shape != self.shape:
            raise ValueError(f"a change to a {self.shape} mask cannot apply to a {mask.shape} mask")
        if self.starts.size:
            mask.reshape(-1)[self._indices()] = np.repeat(values, self.lengths)


def _empty_change(mask: np.ndarray) -> MaskChange:
    empty = np.zeros(0, dtype=np.int64)
    values = np.zeros(0, dtype=mask.dtype)
    return MaskChange(mask.shape, empty, empty, values, values, None)


def change_to(mask: np.ndarray, region: Region, new: int | np.ndarray) -> MaskChange:
    """The change that sets ``region`` of ``mask`` to ``new`` (one value, or a whole-mask array such as the
    prediction or the original mask); pixels that already hold it are left out. ``mask`` is not modified."""
    if region.inside.size == 0:
        return _empty_change(mask)
    window = (slice(region.top, region.bottom), slice(region.left, region.right))
    current = mask[window]
    if isinstance(new, np.ndarray):
        if new.shape != mask.shape:
            raise ValueError(f"new values of shape {new.shape} for a mask of shape {mask.shape}")
        target = new[window]
    else:
        if not np.can_cast(np.min_scalar_type(int(new)), mask.dtype):
            raise ValueError(f"value {new} does not fit a {mask.dtype} mask")
        target = np.full(current.shape, new, dtype=mask.dtype)
    changed = region.inside & (current != target)
    rows, cols = np.nonzero(changed)
    if rows.size == 0:
        return _empty_change(mask)
    flat = (rows.astype(np.int64) + region.top) * mask.shape[1] + cols + region.left
    old, values = current[changed], target[changed].astype(mask.dtype, copy=False)
    breaks = np.flatnonzero((np.diff(flat) != 1) | (old[1:] != old[:-1]) | (values[1:] != values[:-1])) + 1
    first = np.concatenate(([0], breaks))
    lengths = np.diff(np.concatenate((first, [flat.size])))
    bounds = (int(rows.min()) + region.top, int(cols.min()) + region.left,
              int(rows.max()) + region.top + 1, int(cols.max()) + region.left + 1)
    index_dtype = np.int32 if mask.size < 2**31 else np.int64  # 8 bytes a run for both, under 2 Gpx
    return MaskChange(mask.shape, flat[first].astype(index_dtype), lengths.astype(np.int32), old[first],
                      values[first], bounds)


def merge_changes(changes: Sequence[MaskChange]) -> MaskChange:
    """One record for changes made one after another that touch disjoint pixels (the dabs of one stroke: each
    dab records only pixels that did not already hold the stroke's value)."""
    changes = [c for c in changes if c.starts.size]
    if not changes:
        raise ValueError("merge_changes needs at least one non-empty change")
    if len(changes) == 1:
        return changes[0]
    order = np.argsort(np.concatenate([c.starts for c in changes]), kind="stable")
    boxes = np.array([c.bounds for c in changes])
    bounds = (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))
    return MaskChange(changes[0].shape, *(np.concatenate([getattr(c, name) for c in changes])[order]
                                          for name in ("starts", "lengths", "old", "new")), bounds)

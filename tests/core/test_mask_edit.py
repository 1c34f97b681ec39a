"""Mask editing core: regions held to Pillow's drawing and flood fill, and change records that apply and revert."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from segstudio.core.review.mask_edit import (
    MaskChange,
    brush_region,
    change_to,
    connected_region,
    flood_region,
    merge_changes,
    polygon_region,
)

DEVKIT = Path(__file__).resolve().parents[1] / "fixtures" / "ade20k-devkit"


def real_annotation(name: str = "ADE_val_00000001.png") -> np.ndarray:
    """A validation annotation of the ADE20K release (ids 0..150, many small regions)."""
    return np.array(Image.open(DEVKIT / name))


def distance_to_segment(px: float, py: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Euclidean distance from a point to a segment, written out from the definition."""
    (ax, ay), (bx, by) = a, b
    vx, vy, wx, wy = bx - ax, by - ay, px - ax, py - ay
    length2 = vx * vx + vy * vy
    t = 0.0 if length2 == 0 else min(max((wx * vx + wy * vy) / length2, 0.0), 1.0)
    return ((wx - t * vx) ** 2 + (wy - t * vy) ** 2) ** 0.5


@pytest.mark.parametrize(("start", "end", "diameter"), [
    ((10.5, 12.5), (10.5, 12.5), 1), ((10.5, 12.5), (10.5, 12.5), 7), ((3.2, 4.9), (30.7, 18.1), 5),
    ((0.0, 0.0), (0.0, 0.0), 9), ((39.9, 5.0), (2.0, 29.9), 12.5),
])
def test_brush_covers_exactly_the_pixels_whose_centre_is_within_the_radius_of_the_stroke(start, end, diameter):
    shape = (30, 40)
    expected = np.array([[distance_to_segment(c + 0.5, r + 0.5, start, end) <= diameter / 2 for c in range(40)]
                         for r in range(30)])
    assert np.array_equal(brush_region(shape, start, end, diameter).full(shape), expected)


def test_a_one_pixel_dab_is_the_pixel_under_the_point():
    assert np.flatnonzero(brush_region((5, 5), (2.7, 3.1), (2.7, 3.1), 1).full((5, 5))).tolist() == [3 * 5 + 2]


def pil_flood(mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """Pillow's flood fill (4-connected, pixels equal to the seed) as a boolean map."""
    image = Image.fromarray(mask.astype(np.uint8)).copy()  # its own pixels: fromarray may share the array's
    sentinel = next(v for v in range(256) if not (mask == v).any())
    ImageDraw.floodfill(image, (x, y), sentinel, thresh=0)
    return np.array(image) == sentinel


@pytest.mark.parametrize(("x", "y"), [(0, 0), (120, 300), (500, 200), (250, 450), (77, 33)])
def test_flood_fill_matches_pillows_on_a_real_annotation(x, y):
    mask = real_annotation()[:480, :600]
    assert np.array_equal(flood_region(mask, x, y).full(mask.shape), pil_flood(mask, x, y))


def test_flood_fill_is_four_connected_around_spirals_and_diagonals():
    rng = np.random.default_rng(3)
    mask = (rng.random((60, 70)) < 0.45).astype(np.uint8)  # many regions touching only at corners
    for x, y in ((0, 0), (35, 30), (69, 59), (10, 50)):
        assert np.array_equal(flood_region(mask, x, y).full(mask.shape), pil_flood(mask, x, y))


def test_a_suspected_region_is_its_connected_part_under_the_click():
    selected = np.zeros((20, 20), dtype=bool)
    selected[2:6, 2:6] = True
    selected[10:15, 10:12] = True
    region = connected_region(selected, 3, 4).full(selected.shape)
    assert region.sum() == 16 and region[2:6, 2:6].all()
    assert connected_region(selected, 0, 0).inside.size == 0


@pytest.mark.parametrize("points", [
    [(5, 5), (40, 8), (30, 35)], [(1, 1), (50, 1), (50, 30), (25, 10), (1, 30)],
    [(-5, 10), (20, -4), (70, 25), (30, 44)], [(10, 10), (12, 12)],
])
def test_polygon_fill_matches_pillows_polygon(points):
    shape = (40, 60)
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon(points, fill=1, outline=1)
    assert np.array_equal(polygon_region(shape, points).full(shape), np.asarray(canvas, dtype=bool))


def test_a_single_point_is_no_polygon():
    assert polygon_region((40, 60), [(7, 9)]).inside.size == 0


def test_change_stores_only_changed_pixels_and_reverts_exactly():
    mask = real_annotation()
    before = mask.copy()
    region = brush_region(mask.shape, (100.0, 100.0), (300.0, 180.0), 25)
    change = change_to(mask, region, 7)
    assert np.array_equal(mask, before)  # computing a change does not apply it
    covered = region.full(mask.shape)
    assert change.pixels == int((covered & (before != 7)).sum())
    change.apply(mask)
    expected = before.copy()
    expected[covered] = 7
    assert np.array_equal(mask, expected)
    top, left, bottom, right = change.bounds
    rows, cols = np.nonzero(mask != before)
    assert (top, left, bottom, right) == (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
    change.revert(mask)
    assert np.array_equal(mask, before)
    assert change_to(mask, region, 7).nbytes < change.pixels  # runs: far less than a byte per changed pixel


def test_adopting_an_array_takes_its_values_inside_the_region_only():
    mask = real_annotation("ADE_val_00000002.png")
    prediction = np.roll(mask, 17, axis=1)
    before = mask.copy()
    region = flood_region(mask, 200, 200)
    change = change_to(mask, region, prediction)
    change.apply(mask)
    inside = region.full(mask.shape)
    assert np.array_equal(mask[inside], prediction[inside])
    assert np.array_equal(mask[~inside], before[~inside])
    change.revert(mask)
    assert np.array_equal(mask, before)


def test_sixteen_bit_masks_and_values_that_do_not_fit():
    mask = np.full((10, 10), 300, np.uint16)
    change = change_to(mask, brush_region(mask.shape, (5, 5), (5, 5), 3), 65535)
    change.apply(mask)
    assert (mask == 65535).sum() == change.pixels > 0
    with pytest.raises(ValueError, match="does not fit"):
        change_to(np.zeros((4, 4), np.uint8), brush_region((4, 4), (1, 1), (1, 1), 2), 300)
    with pytest.raises(ValueError, match="cannot apply"):
        change.apply(np.zeros((3, 3), np.uint16))


def test_a_stroke_of_dabs_merges_into_one_record_that_undoes_in_one_step():
    mask = real_annotation("ADE_val_00000003.png")
    before = mask.copy()
    changes: list[MaskChange] = []
    points = [(50.0, 60.0), (80.0, 70.0), (120.0, 65.0), (150.0, 120.0)]
    for a, b in zip(points, points[1:], strict=False):
        change = change_to(mask, brush_region(mask.shape, a, b, 15), 4)
        change.apply(mask)
        changes.append(change)
    after = mask.copy()
    stroke = merge_changes(changes)
    assert stroke.pixels == sum(c.pixels for c in changes) == int((after != before).sum())
    stroke.revert(mask)
    assert np.array_equal(mask, before)
    stroke.apply(mask)
    assert np.array_equal(mask, after)


def test_nothing_to_change_is_an_empty_record():
    mask = np.full((8, 8), 3, np.uint8)
    change = change_to(mask, brush_region(mask.shape, (4, 4), (4, 4), 5), 3)
    assert change.pixels == 0 and change.bounds is None
    change.apply(mask)
    assert (mask == 3).all()
    assert change_to(mask, brush_region(mask.shape, (-40, -40), (-30, -30), 5), 1).pixels == 0

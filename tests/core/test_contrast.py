"""High-contrast class colours: CIELAB as published, and the demo's classes far apart where ADE's are not.

The threshold: ΔE*ab 2.3 is a just-noticeable difference; the viewer blends class colours over the photo at about
50% opacity, which halves the difference between two class colours, so two classes meant to be told apart at a
glance, also as thin regions, need well over 20 after blending: 40 before it. ADE20K's palette gives the demo's
wall and road 7.8, sky and water 12.7, tree and grass 24.
"""

from __future__ import annotations

import itertools
import json
from importlib import resources

import numpy as np
import pytest

from segstudio.core.data.demo_dataset import make_demo
from segstudio.core.labels.contrast import (
    high_contrast_palette,
    present_classes,
    separated_colours,
    srgb_to_lab,
)

FAR_APART = 40.0


def _min_pairwise_delta_e(rgb: np.ndarray) -> float:
    """ΔE*ab (CIE 1976): the Euclidean distance in CIELAB, over every pair."""
    lab = srgb_to_lab(np.asarray(rgb))
    return min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(lab, 2))


# sRGB (D65) -> CIELAB as published by Bruce Lindbloom's colour calculator and the CIE's sRGB definition.
PUBLISHED_LAB = [
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((128, 128, 128), (53.5850, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize(("rgb", "lab"), PUBLISHED_LAB)
def test_cielab_of_srgb_colours_is_the_published_value(rgb, lab):
    assert srgb_to_lab(np.array(rgb)) == pytest.approx(lab, abs=2e-3)


def _ade_palette(names: list[str]) -> np.ndarray:
    """The demo classes' colours as the shipped ADE20K file (mmsegmentation's palette) lists them."""
    data = json.loads(resources.files("segstudio.resources").joinpath("ade20k-150.json").read_text("utf-8"))
    by_name = {str(name).strip(): int(i) for i, name in data["id2label"].items()}
    return np.array([data["palette"][by_name[name]] for name in names], dtype=np.uint8)


def test_ade_colours_of_the_demo_are_close_and_high_contrast_ones_far_apart():
    demo = make_demo(train=0, validation=12, test=0)
    label_map = demo.label_map
    names = [label_map.name(i).strip() for i in range(label_map.num_labels)]
    assert np.array_equal(label_map.palette, _ade_palette(names))  # the demo shows ADE's colours by default
    assert _min_pairwise_delta_e(label_map.palette) < 10  # wall / road: why the view offers another palette
    everything = high_contrast_palette(label_map.palette, list(range(label_map.num_labels)))
    assert _min_pairwise_delta_e(everything) > FAR_APART
    for row in demo.splits["validation"]:
        ids = demo.convention.to_model_ids(np.asarray(row["annotation"]))
        present = present_classes(label_map.num_labels, ids, ignore_index=demo.convention.ignore_index)
        shown = high_contrast_palette(label_map.palette, present)
        if len(present) > 1:
            assert _min_pairwise_delta_e(shown[present]) > FAR_APART
        absent = [i for i in range(label_map.num_labels) if i not in present]
        assert np.array_equal(shown[absent], label_map.palette[absent])  # only the classes shown are recoloured


def test_colours_stay_apart_from_black_and_white_and_from_each_other_at_ade_scale():
    colours = separated_colours(150)
    assert len({tuple(c) for c in colours}) == 150
    assert np.array_equal(separated_colours(10), colours[:10])  # a class set keeps its colours as it grows
    with_black_and_white = np.vstack([colours[:10], [[0, 0, 0], [255, 255, 255]]])
    assert _min_pairwise_delta_e(with_black_and_white) > FAR_APART
    assert _min_pairwise_delta_e(colours) > 15  # all 150 ADE classes at once: still far above a visible step


def test_ignored_and_out_of_range_ids_are_not_classes():
    mask = np.array([[0, 3, 255], [3, 200, 0]], dtype=np.uint8)
    assert present_classes(10, mask, None, ignore_index=255) == [0, 3]
    palette = np.zeros((10, 3), np.uint8)
    assert np.array_equal(high_contrast_palette(palette, [])[0], palette[0])

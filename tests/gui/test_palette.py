"""View > Palette: ADE20K's colours by default, or the shown image's classes far apart; the legend follows, the
split-wide class table and exported colour masks keep the label map's colours; the choice is remembered."""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from segstudio.core.labels.contrast import srgb_to_lab
from segstudio.gui.dialogs.export import ExportChoice


def _swatch_rgb(icon) -> tuple[int, int, int]:
    colour = QColor(icon.pixmap(14, 14).toImage().pixel(7, 7))
    return colour.red(), colour.green(), colour.blue()


def _legend_colours(window) -> dict[int, tuple[int, int, int]]:
    legend = window.legend
    return {class_id: _swatch_rgb(legend.item_for(class_id).icon(0)) for class_id in legend.class_ids()}


def _shown_classes(window) -> list[int]:
    content = window.viewer.content
    found = set()
    for mask in (content.ground_truth, content.prediction):
        found |= {int(v) for v in np.unique(mask) if v != content.ignore_index}
    return sorted(found)


def test_high_contrast_recolours_the_shown_classes_and_the_legend_follows(review_window, qtbot, qsettings, tmp_path,
                                                                         make_window):
    window = review_window
    label_map = window.review.label_map()
    ade = label_map.palette.copy()
    assert window.actions.palettes["ade20k"].isChecked()
    assert np.array_equal(window.viewer.content.palette, ade)  # ADE20K's colours, unchanged
    assert all(rgb == tuple(ade[i]) for i, rgb in _legend_colours(window).items())

    window.actions.palettes["contrast"].trigger()
    shown, palette = _shown_classes(window), window.viewer.content.palette
    assert len(shown) > 1
    lab = srgb_to_lab(palette[shown])
    assert min(np.linalg.norm(a - b) for a, b in itertools.combinations(lab, 2)) > 40
    assert all(rgb == tuple(palette[i]) for i, rgb in _legend_colours(window).items())  # the legend follows
    assert np.array_equal(window.review.label_map().palette, ade)  # the label map itself is untouched
    table = window.class_table.model  # split-wide: a class's colour there cannot change from image to image
    row = next(i for i, r in enumerate(table.rows) if r.class_id == shown[0])
    assert _swatch_rgb(table.data(table.index(row, 0), Qt.ItemDataRole.DecorationRole)) == tuple(ade[shown[0]])

    out = tmp_path / "export"
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000):
        assert window.exporter.export(ExportChoice(False, ["color"], False, out))
    (colour_png,) = (out / "color").rglob("*.png")
    exported = {tuple(v) for v in np.asarray(Image.open(colour_png)).reshape(-1, 3)}
    assert exported <= {tuple(v) for v in ade} | {(0, 0, 0)}  # exports keep the colours labels.json records

    window.close()
    again = make_window()
    assert again.review.palette == "contrast" and again.actions.palettes["contrast"].isChecked()
    again.actions.palettes["ade20k"].trigger()
    assert again.review.palette == "ade20k"

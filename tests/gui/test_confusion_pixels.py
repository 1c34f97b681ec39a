"""Confusion cells down to the pixel: a heatmap cell highlights exactly its pixels; TP/FP/FN of one class."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from segstudio.gui.widgets.layers import FN_COLOUR, FP_COLOUR, TP_COLOUR


def overlay_rgba(viewer, key: str) -> np.ndarray:
    """(H, W, 4) uint8 of a pane's overlay as drawn."""
    image = viewer.panes[key].overlay.pixmap().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 4 * image.width()].reshape(image.height(), image.width(), 4).copy()


def _count_colour(layer: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.count_nonzero((layer[..., 3] > 0) & np.all(layer[..., :3] == colour, axis=-1)))


def test_a_heatmap_cell_highlights_exactly_its_pixels_and_ranks_the_images(review_window, qtbot):
    window = review_window
    window.docks["confusions"].raise_()
    results = window.review.results()
    gt_id, pred_id, _pixels, _share = results.top_confusions(1)[0]
    heatmap = window.confusions.heatmap
    qtbot.waitUntil(lambda: heatmap.isVisible() and heatmap.cell_rect(gt_id, pred_id) is not None)
    cell = heatmap.cell_rect(gt_id, pred_id).center()
    assert heatmap.cell_at(cell) == (gt_id, pred_id)
    qtbot.mouseClick(heatmap, Qt.MouseButton.LeftButton, pos=cell)
    assert heatmap.selected == (gt_id, pred_id) and window.confusions.selected_pair() == (gt_id, pred_id)
    panel = window.dataset_panel
    listed = [panel.proxy.entry_at(r) for r in range(panel.proxy.rowCount())]
    expected = [i for i, o in results.outcomes.items() if o.pair_pixels(gt_id, pred_id) > 0]
    assert sorted(listed) == sorted(expected)
    counts = [results.get(i).pair_pixels(gt_id, pred_id) for i in listed]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0
    viewer = window.viewer
    qtbot.waitUntil(lambda: viewer.content.index == listed[0] and viewer.content.prediction is not None)
    content = viewer.content
    mask = (content.ground_truth == gt_id) & (content.prediction == pred_id)
    assert np.count_nonzero(mask) == counts[0]  # the core's sparse confusion agrees with the masks on screen
    layer = overlay_rgba(viewer, "error")
    assert np.array_equal(layer[..., 3] > 0, mask)
    assert np.array_equal(viewer.pair_mask(), mask)
    assert viewer.titles["error"].toolTip().startswith(f"{counts[0]:,} px")
    panel.step(1)  # the next image in the ranking has fewer such pixels, and exactly those are highlighted
    if len(listed) > 1:
        qtbot.waitUntil(lambda: viewer.content.index == listed[1])
        mask = (viewer.content.ground_truth == gt_id) & (viewer.content.prediction == pred_id)
        assert np.count_nonzero(overlay_rgba(viewer, "error")[..., 3]) == np.count_nonzero(mask) == counts[1]


def test_tp_fp_fn_layer_of_the_class_picked_in_the_table_and_the_legend(review_window, qtbot):
    window = review_window
    viewer = window.viewer
    results = window.review.results()
    rows = [r for r in results.class_rows() if r.gt_pixels > 0 and r.pred_pixels > 0]
    class_id = max(rows, key=lambda r: r.gt_pixels).class_id
    window.class_table.select_class(class_id)
    box = viewer.analysis_box
    box.setCurrentIndex(box.findData("tpfpfn"))
    assert viewer.analysis == "tpfpfn"
    panel = window.dataset_panel
    first = panel.proxy.entry_at(0)
    qtbot.waitUntil(lambda: viewer.content.index == first and viewer.content.prediction is not None)

    def check(chosen: int) -> None:
        c = viewer.content
        labelled = c.ground_truth != c.ignore_index
        is_gt, is_pred = (c.ground_truth == chosen) & labelled, (c.prediction == chosen) & labelled
        layer = overlay_rgba(viewer, "error")
        assert _count_colour(layer, TP_COLOUR) == np.count_nonzero(is_gt & is_pred)
        assert _count_colour(layer, FP_COLOUR) == np.count_nonzero(is_pred & ~is_gt)
        assert _count_colour(layer, FN_COLOUR) == np.count_nonzero(is_gt & ~is_pred)
        assert np.count_nonzero(layer[..., 3]) == np.count_nonzero(is_gt | is_pred)
        assert viewer.titles["error"].text().startswith(str(c.names.name(chosen)).strip())

    check(class_id)
    assert np.count_nonzero(viewer.content.ground_truth == class_id) > 0
    legend = window.legend
    other = next(i for i in legend.class_ids() if i != class_id)
    rect = legend.tree.visualItemRect(legend.item_for(other))
    qtbot.mouseClick(legend.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert viewer.highlight == other
    check(other)
    box.setCurrentIndex(box.findData("errors"))
    assert viewer.titles["error"].text().startswith("Errors")

"""The three synchronised panes, layers, highlight and hover text; and the legend beside them."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from segstudio.core.labels.label_map import LabelMap
from segstudio.gui.widgets.legend import LegendWidget, class_shares
from segstudio.gui.widgets.viewer import ImageViewer, ViewContent

NAMES = LabelMap.from_names(["sky", "tree", "road"], np.array([[0, 0, 255], [0, 255, 0], [128, 128, 128]]))


def content(prediction: bool = True) -> ViewContent:
    """A 40x60 image: sky on top, road below; the model calls the left half of the road tree; row 0 ignored."""
    image = np.full((40, 60, 3), 100, np.uint8)
    gt = np.zeros((40, 60), np.uint8)
    gt[20:] = 2
    gt[0] = 255
    pred = gt.copy()
    pred[20:, :30] = 1
    pred[0] = 0
    return ViewContent(image, gt, pred if prediction else None, NAMES.palette, NAMES)


@pytest.fixture
def viewer(qtbot):
    widget = ImageViewer()
    qtbot.addWidget(widget)
    widget.resize(900, 400)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_content(content())
    return widget


def overlay_alpha(viewer: ImageViewer, key: str) -> np.ndarray:
    image = viewer.panes[key].overlay.pixmap().toImage()
    return np.array([[image.pixelColor(x, y).alpha() for x in range(image.width())] for y in range(image.height())])


def wheel(pane, steps: int = 1) -> None:
    pos = QPointF(pane.viewport().rect().center())
    event = QWheelEvent(pos, QPointF(pane.mapToGlobal(pos.toPoint())), QPoint(), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(pane.viewport(), event)


def test_wheel_on_any_pane_zooms_all_three_together(viewer):
    before = viewer.scale
    wheel(viewer.panes["error"], 2)
    scales = {key: pane.transform().m11() for key, pane in viewer.panes.items()}
    assert len(set(scales.values())) == 1
    assert scales["gt"] == pytest.approx(before * 1.25**2)
    assert not viewer.fit_mode


def test_pan_in_one_pane_moves_the_others(viewer, qtbot):
    viewer.actual_size()
    viewer.zoom_by(8)
    pane = viewer.panes["pred"]
    pane.horizontalScrollBar().setValue(pane.horizontalScrollBar().value() + 40)
    centres = {key: viewer.view_center(key) for key in viewer.panes}
    assert centres["gt"] == pytest.approx(centres["pred"], abs=1.0)
    assert centres["error"] == pytest.approx(centres["pred"], abs=1.0)


def test_fit_and_actual_size(viewer):
    viewer.actual_size()
    assert viewer.scale == pytest.approx(1.0)
    viewer.fit()
    pane = viewer.panes["gt"]
    assert viewer.scale == pytest.approx(min(pane.viewport().width() / 60, pane.viewport().height() / 40), rel=0.05)
    assert viewer.fit_mode


def test_hover_names_ground_truth_and_prediction(viewer, qtbot):
    texts = []
    viewer.hover_text.connect(texts.append)
    pane = viewer.panes["gt"]
    point = pane.mapFromScene(QPointF(10.5, 30.5))
    qtbot.mouseMove(pane.viewport(), point)
    qtbot.waitUntil(lambda: bool(texts))
    assert texts[-1] == "x 10, y 30 — ground truth: road — predicted: tree — wrong"
    assert viewer.describe(50, 30).endswith("predicted: road — correct")
    assert viewer.describe(5, 0) == "x 5, y 0 — ground truth: ignored — predicted: sky"
    assert viewer.describe(60, 0) == ""  # outside the image


def test_highlight_shows_only_that_class_in_every_pane(viewer):
    viewer.set_highlight(1)  # "tree": absent from the ground truth, predicted on the left half of the road
    assert overlay_alpha(viewer, "gt").max() == 0
    pred_alpha = overlay_alpha(viewer, "pred")
    assert pred_alpha[20:, :30].min() == 255 and pred_alpha[:20].max() == 0 and pred_alpha[20:, 30:].max() == 0
    error_alpha = overlay_alpha(viewer, "error")
    assert error_alpha[20:, :30].min() == 255 and error_alpha[20:, 30:].max() == 0
    assert viewer.titles["pred"].text() == "Prediction: only tree"
    viewer.set_highlight(None)
    assert overlay_alpha(viewer, "gt")[1:].min() == 255  # every labelled pixel coloured again
    assert overlay_alpha(viewer, "gt")[0].max() == 0  # ignored pixels show the image


def test_a_confusion_pair_shows_each_side_and_where_one_was_taken_for_the_other(viewer):
    viewer.set_highlight(2, 1)  # road predicted as tree
    assert overlay_alpha(viewer, "gt")[20:].min() == 255 and overlay_alpha(viewer, "gt")[:20].max() == 0
    pred_alpha = overlay_alpha(viewer, "pred")
    assert pred_alpha[20:, :30].min() == 255 and pred_alpha[20:, 30:].max() == 0
    error_alpha = overlay_alpha(viewer, "error")
    assert error_alpha[20:, :30].min() == 255 and error_alpha[:20].max() == 0 and error_alpha[20:, 30:].max() == 0
    assert viewer.titles["error"].text() == "Errors: only road → tree"
    viewer.set_highlight(None, 1)
    assert viewer.highlight_pred is None


def test_error_map_marks_wrong_red_and_ignored_grey(viewer):
    image = viewer.panes["error"].overlay.pixmap().toImage()
    assert image.pixelColor(10, 30).getRgb()[:3] == (230, 30, 30)
    assert image.pixelColor(50, 30).getRgb()[:3] == (20, 20, 20)
    assert image.pixelColor(5, 0).getRgb()[:3] == (128, 128, 128)


def test_layers_toggle_and_opacity(viewer):
    viewer.set_layer_visible("gt", False)
    assert not viewer.panes["gt"].overlay.isVisible() and viewer.panes["pred"].overlay.isVisible()
    viewer.set_layer_visible("image", False)
    assert not any(p.base.isVisible() for p in viewer.panes.values())
    viewer.set_opacity(0.2)
    assert viewer.panes["pred"].overlay.opacity() == pytest.approx(0.2)
    assert viewer.panes["error"].overlay.opacity() >= 0.6
    with pytest.raises(ValueError):
        viewer.set_layer_visible("logits", True)


def test_pending_prediction_is_said_and_not_drawn(qtbot):
    widget = ImageViewer()
    qtbot.addWidget(widget)
    widget.set_content(content(prediction=False))
    assert widget.titles["pred"].text() == "Prediction (pending)"
    assert not widget.panes["pred"].overlay.isVisible() and not widget.panes["error"].overlay.isVisible()
    assert widget.describe(10, 30) == "x 10, y 30 — ground truth: road"


def test_legend_lists_present_classes_by_share_and_click_toggles(qtbot):
    legend = LegendWidget()
    qtbot.addWidget(legend)
    legend.show()
    qtbot.waitExposed(legend)
    c = content()
    legend.set_image_classes(NAMES, c.ground_truth, c.prediction)
    assert legend.class_ids() == [2, 0, 1]  # road 51.3% of labelled pixels, sky 48.7%, tree 0 (predicted only)
    item = legend.item_for(2)
    assert item.text(0) == "road" and item.text(1) == "51.3" and item.text(2) == "25.0"
    assert legend.item_for(1).text(1) == "0.0"  # not in the ground truth at all
    few = c.ground_truth.copy()
    few[0, 0] = 1  # one pixel of some 2,300 labelled ones
    legend.set_image_classes(NAMES, few, c.prediction)
    assert legend.item_for(1).text(1) == "<0.1"  # there, but under 0.05%: not "0.0"
    picked = []
    legend.class_selected.connect(picked.append)
    rect = legend.tree.visualItemRect(legend.item_for(1))
    qtbot.mouseClick(legend.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseClick(legend.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert picked == [1, -1]


def test_class_shares_ignore_the_ignore_index():
    ids = np.array([[0, 0, 1, 255]], np.uint8)
    assert class_shares(ids, 2).tolist() == pytest.approx([2 / 3, 1 / 3])
    assert class_shares(None, 2) is None

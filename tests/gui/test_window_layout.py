"""The viewer's layouts, drops anywhere on the window, and the menus' shortcuts and enabled states."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QWidget

from segstudio.core.labels.label_map import LabelMap
from segstudio.gui.dialogs import messages as dialogs
from segstudio.gui.widgets.viewer import ImageViewer, ViewContent

NAMES = LabelMap.from_names(["sky", "tree"], np.array([[0, 0, 255], [0, 255, 0]]))


def square(ground_truth: bool = True) -> ViewContent:
    image = np.full((100, 100, 3), 90, np.uint8)
    mask = np.zeros((100, 100), np.uint8)
    mask[50:] = 1
    return ViewContent(image, mask if ground_truth else None, mask.copy(), NAMES.palette, NAMES)


@pytest.fixture
def viewer(qtbot):
    widget = ImageViewer()
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def shown(viewer: ImageViewer) -> set[str]:
    return {key for key, cell in viewer.cells.items() if cell.isVisible()}


def settle(qtbot, viewer: ImageViewer) -> None:
    qtbot.waitUntil(lambda: viewer._master().viewport().width() > 0)
    qtbot.wait(20)


def test_auto_layout_uses_a_grid_where_it_shows_the_image_larger_and_a_row_where_that_does(viewer, qtbot):
    viewer.resize(800, 700)  # square image in a squarish area: 2x2 shows it at ~330 px, a row at ~260 px
    viewer.set_content(square())
    settle(qtbot, viewer)
    assert viewer.arrangement == "grid" and shown(viewer) == {"gt", "pred", "error", "image"}
    grid_scale = viewer.scale
    viewer.resize(1500, 420)  # wide and short: three in a row are larger
    qtbot.waitUntil(lambda: viewer.arrangement == "side")
    settle(qtbot, viewer)
    assert shown(viewer) == {"gt", "pred", "error"}
    # Fitted: the image fills the height of the row (titles aside), far more than 1/2 of it
    assert viewer.scale * 100 > 0.8 * (420 - 60)
    assert grid_scale * 100 > (700 / 2) * 0.8


def test_images_without_ground_truth_get_one_large_prediction_pane(viewer, qtbot):
    viewer.resize(900, 500)
    viewer.set_content(square(ground_truth=False))
    settle(qtbot, viewer)
    assert viewer.arrangement == "single" and shown(viewer) == {"pred"}
    assert viewer.pane_switch.isVisible()
    viewer.set_content(square())
    assert viewer.arrangement != "single" and not viewer.pane_switch.isVisible()


def test_one_pane_layout_switches_panes_and_keeps_zoom_in_sync(viewer, qtbot):
    viewer.resize(900, 500)
    viewer.set_content(square())
    viewer.set_layout("single")
    viewer.show_single("error")
    settle(qtbot, viewer)
    assert shown(viewer) == {"error"} and viewer.pane_switch.currentIndex() == 2
    viewer.zoom_by(2.0)
    viewer.pane_switch.setCurrentIndex(0)  # the tab bar, as a click would
    assert shown(viewer) == {"gt"}
    scales = {pane.transform().m11() for pane in viewer.panes.values()}
    assert len(scales) == 1
    # The one pane is as wide as the viewer (less the margins), three times a pane of the row
    qtbot.waitUntil(lambda: viewer.panes["gt"].width() > 0.9 * viewer.width())


def test_fixed_layouts_ignore_the_shape(viewer, qtbot):
    viewer.resize(800, 700)
    viewer.set_content(square())
    viewer.set_layout("side")
    settle(qtbot, viewer)
    assert shown(viewer) == {"gt", "pred", "error"}
    viewer.set_layout("grid")
    viewer.set_content(square(ground_truth=False))
    assert shown(viewer) == {"gt", "pred", "error", "image"}
    with pytest.raises(ValueError):
        viewer.set_layout("mosaic")


def _drop_target(widget: QWidget) -> QWidget | None:
    """Where Qt delivers a drag over ``widget``: the nearest ancestor (itself included) that accepts drops."""
    while widget is not None and not widget.acceptDrops():
        widget = widget.parentWidget()
    return widget


def test_files_dragged_over_any_pane_reach_the_window(make_window):
    window = make_window()
    for key, pane in window.viewer.panes.items():
        assert _drop_target(pane.viewport()) is window, key
    assert _drop_target(window.dataset_panel) is not None


def test_no_two_shortcuts_clash_and_quit_is_ctrl_q(make_window):
    window = make_window()
    seen: dict[str, str] = {}
    for action in QWidget.actions(window):
        keys = [k.toString() for k in action.shortcuts()]
        assert len(keys) == len(set(keys)), action.text()
        for key in keys:
            assert key not in seen, f"{key}: {seen.get(key)} and {action.text()}"
            seen[key] = action.text()
    assert QKeySequence("Ctrl+Q") in window.actions.quit.shortcuts()


def test_ctrl_q_closes_the_window(make_window, qtbot):
    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible())


def test_shortcuts_list_names_every_shortcut_and_about_gives_version_and_device(make_window):
    window = make_window()
    text = dialogs.shortcuts_text(QWidget.actions(window))
    for action in QWidget.actions(window):
        for key in action.shortcuts():
            assert key.toString(QKeySequence.SequenceFormat.NativeText) in text
    for expected in ("Ctrl+T", "Ctrl+Q", "Ctrl+Shift+A", "Show Ground Truth"):
        assert expected in text
    about = dialogs.about_text("cuda:0")
    assert "cuda:0" in about and "0." in about  # a version number
    assert "no model loaded" in dialogs.about_text(None)


def test_keys_one_to_four_show_one_pane_and_the_layout_is_remembered(make_window, qsettings, tiny_demo, qtbot):
    window = make_window()
    window.set_dataset(tiny_demo)
    qtbot.waitUntil(lambda: window.viewer.content is not None)
    window.actions.panes["image"].trigger()
    assert window.viewer.layout_mode == "single" and shown(window.viewer) == {"image"}
    assert window.actions.layouts["single"].isChecked()
    window.actions.layouts["side"].trigger()
    assert shown(window.viewer) == {"gt", "pred", "error"}
    window.close()
    again = make_window()
    assert again.viewer.layout_mode == "side" and again.actions.layouts["side"].isChecked()


def test_cancel_items_are_enabled_only_while_something_runs(review_window, qtbot):
    actions = review_window.actions
    assert not actions.cancel.isEnabled() and not actions.cancel_training.isEnabled()
    review_window.review.evaluate(explicit=True)
    qtbot.waitUntil(lambda: review_window.jobs.is_running("evaluate") or review_window.review.results().complete)
    if review_window.jobs.is_running("evaluate"):
        assert actions.cancel.isEnabled()
    qtbot.waitUntil(lambda: not review_window.jobs.is_running("evaluate"))
    assert not actions.cancel.isEnabled()


def test_rows_hold_still_under_the_pointer_while_scores_stream_in(make_window, tiny_demo, scratch_bundle, qtbot,
                                                                 wait_results):
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    window = make_window()
    window.set_dataset(tiny_demo)
    panel, model = window.dataset_panel, window.image_model
    panel.apply_order("Worst first")
    QApplication.sendEvent(panel.view.viewport(), QEvent(QEvent.Type.Enter))  # the pointer comes over the list
    window.review.set_model(scratch_bundle)
    wait_results(window)
    held = [model.entry(row) for row in range(model.rowCount())]
    assert held == list(range(model.rowCount()))  # dataset order: nothing moved under the pointer
    QApplication.sendEvent(panel.view.viewport(), QEvent(QEvent.Type.Leave))
    scores = [model.results.get(model.entry(row)).mean_iou for row in range(model.rowCount())]
    assert scores == sorted(scores) and [model.entry(r) for r in range(model.rowCount())] != held


def test_ranking_keeps_file_names_readable_and_ranked_needs_something_to_rank(review_window, qtbot):
    from segstudio.gui.widgets.dataset_panel import RANKED
    from segstudio.gui.widgets.image_list import COL_NAME, COL_RANK, COL_SCENE

    panel = review_window.dataset_panel
    ranked = panel.order.model().item(panel.order.findText(RANKED))
    assert not ranked.isEnabled()
    review_window.review.rank_by_class(1)
    assert ranked.isEnabled() and not panel.view.isColumnHidden(COL_RANK) and panel.view.isColumnHidden(COL_SCENE)
    header = review_window.image_model.headerData(COL_RANK, Qt.Orientation.Horizontal)
    width = panel.view.horizontalHeader().sectionSize(COL_RANK)
    assert panel.view.fontMetrics().horizontalAdvance(header) + 16 <= width  # the header is not cut
    name = review_window.image_model.data(review_window.image_model.index(0, COL_NAME))
    qtbot.waitUntil(lambda: panel.view.columnWidth(COL_NAME) > 0)
    text_room = panel.view.columnWidth(COL_NAME) - panel.view.iconSize().width() - 12
    assert panel.view.fontMetrics().horizontalAdvance(name) <= text_room, (name, text_room)
    review_window.review.rank_by_class(-1)
    assert not ranked.isEnabled() and not panel.view.isColumnHidden(COL_SCENE)


def test_grid_view_shows_thumbnails_with_score_badges_and_shares_the_selection(review_window, qtbot, qsettings):
    from segstudio.gui.widgets.image_grid import ThumbnailDelegate, badge_colour
    from segstudio.gui.widgets.image_list import COL_MIOU

    panel = review_window.dataset_panel
    panel.show_view("Grid")
    assert panel.views.currentWidget() is panel.grid and panel.grid.isVisible()
    proxy = panel.proxy
    index = proxy.index(2, 0)
    badge = ThumbnailDelegate.badge_text(index)
    assert badge == proxy.index(2, COL_MIOU).data() and float(badge) >= 0
    panel.grid.setCurrentIndex(index)  # a click in the grid
    assert panel.view.currentIndex().row() == 2
    assert review_window.review.row == panel.current_entry()
    image = panel.grid.grab().toImage()
    assert image.width() > 100 and len({image.pixel(x, 40) for x in range(0, image.width(), 4)}) > 3  # painted
    assert badge_colour("0.3") != badge_colour("0.9") and badge_colour("") == badge_colour("n/a")
    review_window.close()
    assert qsettings.value("view/image_list") == "Grid"


def test_the_class_filter_finds_a_class_by_any_part_of_its_name(review_window, qtbot):
    panel = review_window.dataset_panel
    combo = panel.present
    assert combo.isEditable()
    completer = combo.completer()
    completer.setCompletionPrefix("REE")  # "tree", "street"... any part, any case
    matches = [completer.completionModel().index(i, 0).data() for i in range(completer.completionCount())]
    assert "tree" in matches
    panel._on_class_typed("tree")
    assert combo.currentData() == combo.findText("tree") - 1 and panel.proxy.present_class == combo.currentData()
    panel._on_class_typed("no such class")
    assert combo.currentText() == "tree"


def test_the_window_fits_a_1280_pixel_screen_also_with_an_a_b_comparison(make_window, qtbot):
    from PySide6.QtWidgets import QPushButton

    window = make_window()
    window.resize(1280, 800)
    qtbot.wait(50)
    assert window.minimumSizeHint().width() <= 1280 and window.width() <= 1280
    end = window.class_table.findChild(QPushButton, "end-comparison")
    end.parentWidget().setVisible(True)  # the A/B bar above the classes table
    window.resize(1280, 800)
    qtbot.wait(50)
    assert window.width() <= 1280, window.width()


def test_at_1280_pixels_the_closed_boxes_show_whole_words_and_the_lists_the_full_entries(review_window, qtbot):
    window = review_window
    window.resize(1280, 800)
    panel, viewer = window.dataset_panel, window.viewer
    panel.order.setCurrentText("Suspected label errors first")
    viewer.set_analysis("suspects")
    qtbot.wait(50)
    boxes = {panel.split: ("validation", "validation (6)"), panel.order: ("Label errors", "Suspected label errors first"),
             viewer.analysis_box: ("Label errors", "Suspected label errors")}
    for box, (short, full) in boxes.items():
        assert (box.shown_text(), box.currentText()) == (short, full)
        assert full in box.toolTip()
        # the closed box has the room its text needs: nothing is cut at the right
        assert box.fontMetrics().horizontalAdvance(short) + 20 <= box.width()
        assert box.width() >= box.sizeHint().width()
    from segstudio.gui.widgets.image_list import COL_RANK, RANK_HEADERS

    header = panel.view.horizontalHeader()  # the rank column's headers and the sort arrow stay whole
    longest = max(header.fontMetrics().horizontalAdvance(text) for text in RANK_HEADERS.values())
    assert panel.view.columnWidth(COL_RANK) >= longest + 20
    box = panel.order
    box.showPopup()
    qtbot.waitUntil(lambda: box.view().isVisible())
    longest = max(box.fontMetrics().horizontalAdvance(box.itemText(i)) for i in range(box.count()))
    assert box.view().width() > longest  # the list is as wide as its longest entry, wider than the closed box
    box.hidePopup()

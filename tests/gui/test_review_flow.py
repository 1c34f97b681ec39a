"""The review record through the real window: keys set statuses and move on, filters, progress, tags and notes."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QWidget

from segstudio.gui.dialogs.review_note import ReviewNoteDialog
from segstudio.gui.widgets.image_list import COL_NAME, COL_RANK, COL_SCENE, COL_STATUS, STATUS_COLOURS


def _open(window, dataset, folder, qtbot) -> None:
    """Show ``dataset`` with ``folder`` as its corrections folder (as File > Corrections Folder… remembers it)."""
    window.corrections.folders[str(dataset.source)] = str(folder)
    window.set_dataset(dataset)
    assert window.record.folder() == folder


@pytest.fixture
def reviewing(make_window, tiny_demo, tmp_path, qtbot):
    """A window showing the tiny demo's validation split (6 images, no model), its review kept in tmp_path."""
    window = make_window()
    _open(window, tiny_demo, tmp_path / "corrections", qtbot)
    window.dataset_panel.apply_order("Dataset order")
    return window


def _press(qtbot, window, key: Qt.Key) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)  # window shortcuts need the active window
    window.dataset_panel.view.setFocus()
    qtbot.keyClick(window.dataset_panel.view, key)


def _on_disk(folder) -> dict[str, str]:
    """file name -> status, read with SQLite itself."""
    with sqlite3.connect(folder / "review.sqlite") as db:
        return dict(db.execute("SELECT file_name, status FROM review WHERE split = 'validation'").fetchall())


def _shown(panel) -> list[int]:
    return [panel.proxy.entry_at(row) for row in range(panel.proxy.rowCount())]


def test_keys_set_the_status_and_move_to_the_next_unreviewed(reviewing, qtbot, tmp_path):
    window, panel = reviewing, reviewing.dataset_panel
    names = [entry.file_name for entry in window.review.source.entries]
    assert panel.review_progress.text() == "· 0 of 6 reviewed"
    assert not (tmp_path / "corrections").exists()  # opening a split writes nothing
    assert panel.view.isColumnHidden(COL_STATUS) and not panel.view.isColumnHidden(COL_SCENE)  # no reviews yet
    panel.select_proxy_row(0)
    _press(qtbot, window, Qt.Key.Key_Y)
    assert panel.current_entry() == 1 and window.review.row == 1  # accepted, then the next unreviewed is shown
    _press(qtbot, window, Qt.Key.Key_W)
    assert panel.current_entry() == 2
    assert _on_disk(tmp_path / "corrections") == {names[0]: "accepted", names[1]: "needs_fix"}
    assert panel.review_progress.text() == "· 2 of 6 reviewed"
    assert panel.proxy.index(0, COL_STATUS).data() == "accepted" and not panel.view.isColumnHidden(COL_STATUS)
    assert panel.proxy.index(1, COL_STATUS).data() == "needs fix" and panel.view.isColumnHidden(COL_SCENE)
    name = window.image_model.data(window.image_model.index(0, COL_NAME))
    room = panel.view.columnWidth(COL_NAME) - panel.view.iconSize().width() - 12
    assert panel.view.fontMetrics().horizontalAdvance(name) <= room  # Status took Scene's room: names stay readable
    panel.select_proxy_row(0)
    _press(qtbot, window, Qt.Key.Key_N)  # past the reviewed ones
    assert panel.current_entry() == 2
    _press(qtbot, window, Qt.Key.Key_N)
    assert panel.current_entry() == 3
    _press(qtbot, window, Qt.Key.Key_D)  # fixed: stays on the image
    assert panel.current_entry() == 3 and _on_disk(tmp_path / "corrections")[names[3]] == "fixed"
    _press(qtbot, window, Qt.Key.Key_U)
    assert _on_disk(tmp_path / "corrections")[names[3]] == "unreviewed"
    assert panel.review_progress.text() == "· 2 of 6 reviewed"
    window.review.rank_by_class(1)  # a rank column takes the room while it shows
    assert panel.view.isColumnHidden(COL_STATUS) and not panel.view.isColumnHidden(COL_RANK)
    window.review.rank_by_class(-1)
    assert not panel.view.isColumnHidden(COL_STATUS) and panel.view.isColumnHidden(COL_SCENE)


def test_filter_by_status_shows_only_those_rows(reviewing, qtbot):
    window, panel = reviewing, reviewing.dataset_panel
    panel.select_proxy_row(0)
    for key in (Qt.Key.Key_Y, Qt.Key.Key_W, Qt.Key.Key_Y):  # 0 accepted, 1 needs fix, 2 accepted
        _press(qtbot, window, key)
    panel.review_status.setCurrentIndex(panel.review_status.findText("Accepted"))
    assert _shown(panel) == [0, 2] and panel.count.text() == "2 of 6 images"
    panel.review_status.setCurrentIndex(panel.review_status.findText("Needs fix"))
    assert _shown(panel) == [1]
    panel.review_status.setCurrentIndex(panel.review_status.findText("Unreviewed"))
    assert _shown(panel) == [3, 4, 5]
    panel.select_proxy_row(0)
    _press(qtbot, window, Qt.Key.Key_Y)  # the accepted image leaves the list; the next unreviewed is shown
    assert _shown(panel) == [4, 5] and panel.current_entry() == 4 and window.review.row == 4
    panel.review_status.setCurrentIndex(panel.review_status.findText("Accepted"))
    window.review.show_source("train")  # another split: the filter reads that split's reviews (none)
    assert panel.proxy.rowCount() == 0 and panel.review_progress.text() == "· 0 of 8 reviewed"
    window.review.show_source("validation")
    assert _shown(panel) == [0, 2, 3]
    panel.review_status.setCurrentIndex(panel.review_status.findText("Any status"))
    assert _shown(panel) == list(range(6))


def test_tags_and_a_note_are_kept_and_filter_the_list(reviewing, qtbot, tmp_path, make_window, tiny_demo):
    window, panel = reviewing, reviewing.dataset_panel
    panel.select_proxy_row(1)
    _press(qtbot, window, Qt.Key.Key_T)
    dialog = window.findChild(ReviewNoteDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.tags.setText("occluded,  sky ")
    dialog.note.setPlainText("the sky bleeds into the wall")
    dialog.accept()
    assert [panel.review_tag.itemText(i) for i in range(panel.review_tag.count())] == ["Any tag", "occluded", "sky"]
    panel.review_tag.setCurrentIndex(panel.review_tag.findText("sky"))
    assert _shown(panel) == [1]
    tip = panel.proxy.index(0, COL_STATUS).data(Qt.ItemDataRole.ToolTipRole)
    assert "occluded, sky" in tip and "the sky bleeds into the wall" in tip
    again = make_window()  # another window on the same record sees it
    _open(again, tiny_demo, tmp_path / "corrections", qtbot)
    review = again.image_model.reviews[1]
    assert (review.status, review.tags, review.note) == ("unreviewed", {"occluded", "sky"},
                                                         "the sky bleeds into the wall")


def test_a_dataset_without_a_folder_keeps_its_record_with_the_app_data(make_window, tiny_demo, qtbot, tmp_path):
    window = make_window()  # its settings: an INI file in tmp_path, whose folder stands for the app's data
    window.set_dataset(tiny_demo)
    window.dataset_panel.select_proxy_row(0)
    _press(qtbot, window, Qt.Key.Key_Y)
    records = list((tmp_path / "corrections").glob("*/review.sqlite"))
    assert len(records) == 1 and window.record.folder() == records[0].parent
    assert list(_on_disk(records[0].parent).values()) == ["accepted"]


def test_the_grid_marks_each_thumbnail_with_its_status(reviewing, qtbot):
    window, panel = reviewing, reviewing.dataset_panel
    panel.select_proxy_row(0)
    _press(qtbot, window, Qt.Key.Key_Y)  # 0 accepted, then 1 shown
    _press(qtbot, window, Qt.Key.Key_W)  # 1 needs fix
    panel.show_view("Grid")
    qtbot.waitUntil(lambda: panel.grid.isVisible())
    picture = panel.grid.viewport().grab().toImage()

    def corner_colour(row: int):
        corner = panel.grid.visualRect(panel.proxy.index(row, COL_NAME)).topLeft() + QPoint(5, 5)
        scale = picture.devicePixelRatio()
        return picture.pixelColor(int(corner.x() * scale), int(corner.y() * scale))

    assert corner_colour(0) == STATUS_COLOURS["accepted"] and corner_colour(1) == STATUS_COLOURS["needs_fix"]
    assert corner_colour(2) not in STATUS_COLOURS.values()  # unreviewed: no mark


def test_no_two_actions_share_a_key(make_window):
    """Qt refuses a key two enabled actions share (neither fires): the review keys must be the only ones of theirs."""
    window = make_window()
    owners: dict[str, list[str]] = {}
    for action in QWidget.actions(window):
        for key in action.shortcuts():
            owners.setdefault(key.toString(), []).append(action.text())
    assert {key: names for key, names in owners.items() if len(names) > 1} == {}
    review_keys = {key.toString() for action in window.actions.review.values() for key in action.shortcuts()}
    assert review_keys == {"Y", "W", "D", "U", "N", "T"}

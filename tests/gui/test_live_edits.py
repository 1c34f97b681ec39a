"""The window follows mask edits: the image's row, the split's totals, the corrected mark and the review status.

Expected numbers come from references nobody here wrote: evaluate's mean_iou algorithm (``reference_mean_iou``,
``reference_areas``) on the edited mask and the other images' originals, NumPy's ``histogram2d`` for the
confusions, SQLite itself for the record, and the corrections folder's own index.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PySide6.QtCore import Qt
from test_compare_gui import checkpoint_b, suppressed  # noqa: F401 - fixtures: a checkpoint B that differs from A
from test_mask_editing import stroke  # the same mouse strokes as the mask-editing tests

from segstudio.core.metrics.reference import reference_areas, reference_mean_iou
from segstudio.gui.widgets.image_list import COL_MIOU, COL_NAME, COL_RANK, COL_STATUS, CORRECTED_COLOUR

IGNORE = 255


@pytest.fixture
def editor(review_window):
    """The review window in edit mode, side by side, adopting the prediction with a wide brush."""
    window = review_window
    window.viewer.set_layout("side")
    window.actions.edit_tools["adopt"].trigger()
    window.edit_panel.size.setValue(61)
    assert window.editing.enabled
    return window


def _settled(window, qtbot) -> None:
    """Until the pause after the last edit has passed (the list and the totals follow then)."""
    qtbot.waitUntil(lambda: not window.editing._pause_timer.isActive(), timeout=5_000)


def _edit(window, qtbot, points=((60.5, 60.5), (190.5, 190.5))) -> np.ndarray:
    stroke(window.viewer.panes["gt"], list(points))
    _settled(window, qtbot)
    return window.viewer.content.ground_truth.copy()


def _labels_and_predictions(window, row: int, edited: np.ndarray):
    """Every image's prediction, and its original ground truth except ``row``'s, which is the edited mask."""
    results, source = window.review.results(create=False), window.review.source
    count = len(source)
    predictions = [results.get(i).prediction.unpack() for i in range(count)]
    labels = [edited if i == row else source.ground_truth(i) for i in range(count)]
    return predictions, labels


def _row_text(window, entry: int, column: int) -> str:
    model = window.image_model
    return model.data(model.index(model.row_of(entry), column))


def _numbers(window) -> tuple:
    """Everything the window shows that an edit may change: totals, class rows, confusions, the list's scores."""
    results, model = window.review.results(create=False), window.image_model
    metrics = results.metrics()
    return (metrics["mean_iou"], metrics["per_category_iou"].tolist(), metrics["per_category_accuracy"].tolist(),
            results.matrix.tolist(), results.images_per_class.tolist(), window.class_table.totals.text(),
            list(window.confusions.model.rows),
            [_row_text(window, i, c) for i in range(model.rowCount()) for c in (COL_MIOU, COL_RANK)])


def test_an_edit_re_scores_its_row_and_the_split_and_undo_brings_back_exactly_the_numbers(editor, qtbot):
    window, row = editor, editor.review.row
    k = window.review.label_map().num_labels
    before = _numbers(window)
    original = window.viewer.content.ground_truth.copy()
    edited = _edit(window, qtbot)
    assert (edited != original).sum() > 1000

    predictions, labels = _labels_and_predictions(window, row, edited)
    reference = reference_mean_iou(predictions, labels, k, IGNORE)
    metrics = window.review.results(create=False).metrics()
    assert metrics["mean_iou"] == reference["mean_iou"]
    np.testing.assert_array_equal(metrics["per_category_iou"], reference["per_category_iou"])
    np.testing.assert_array_equal(metrics["per_category_accuracy"], reference["per_category_accuracy"])
    shown = window.class_table.model.rows
    np.testing.assert_array_equal([r.iou for r in shown], reference["per_category_iou"])
    assert [r.images for r in shown] == [sum(int((lab == c).any()) for lab in labels) for c in range(k)]
    assert f"mean IoU {100 * reference['mean_iou']:.1f}%" in window.class_table.totals.text()

    one = reference_mean_iou([predictions[row]], [edited], k, IGNORE)["mean_iou"]
    assert _row_text(window, row, COL_MIOU) == f"{one:.3f}"
    assert window.viewer.content.index == row and window.editing.session is not None  # still editing this image

    counts = sum(np.histogram2d(lab[lab != IGNORE].ravel(), pred[lab != IGNORE].ravel(), bins=k,
                                range=[[0, k], [0, k]])[0] for lab, pred in zip(labels, predictions, strict=True))
    np.fill_diagonal(counts, 0)
    gt, pred = np.unravel_index(int(np.argmax(counts)), counts.shape)
    top = window.confusions.model.rows[0]
    assert (top[0], top[1], top[2]) == (gt, pred, int(counts[gt, pred]))

    target = int(np.argmax(np.bincount(edited[edited != IGNORE].ravel(), minlength=k)[:k]))  # its largest class
    window.review.rank_by_class(target)
    intersect, union, _pred_area, _label_area = reference_areas(predictions[row], edited, k, IGNORE)
    assert _row_text(window, row, COL_RANK) == f"{int(union[target] - intersect[target]):,}"
    window.review.rank_by_class(-1)

    window.actions.undo.trigger()
    _settled(window, qtbot)
    assert np.array_equal(window.viewer.content.ground_truth, original)
    assert _numbers(window) == before


def test_leaving_the_edited_image_keeps_its_new_numbers(editor, qtbot):
    window, row = editor, editor.review.row
    k = window.review.label_map().num_labels
    stroke(window.viewer.panes["gt"], [(20.5, 200.5), (220.5, 40.5)])  # left at once: no pause before leaving
    edited = window.viewer.content.ground_truth.copy()
    other = next(r for r in range(len(window.review.source)) if r != row)
    window.dataset_panel.select_entry(other)
    qtbot.waitUntil(lambda: window.viewer.content is not None and window.viewer.content.index == other)
    predictions, labels = _labels_and_predictions(window, row, edited)
    one = reference_mean_iou([predictions[row]], [edited], k, IGNORE)["mean_iou"]
    assert _row_text(window, row, COL_MIOU) == f"{one:.3f}"
    np.testing.assert_array_equal(window.review.results(create=False).metrics()["per_category_iou"],
                                  reference_mean_iou(predictions, labels, k, IGNORE)["per_category_iou"])


def test_a_new_evaluation_scores_the_edited_rows_with_their_edited_masks(editor, scratch_bundle, wait_results,
                                                                          qtbot):
    window, row = editor, editor.review.row
    k = window.review.label_map().num_labels
    edited = _edit(window, qtbot)
    qtbot.waitUntil(lambda: window.image_model.corrected(row), timeout=10_000)  # saved, then left
    other = next(r for r in range(len(window.review.source)) if r != row)
    window.dataset_panel.select_entry(other)
    qtbot.waitUntil(lambda: window.viewer.content is not None and window.viewer.content.index == other)
    window.review.cache.clear()  # the split evaluated again, as after loading a checkpoint
    window.review.set_model(scratch_bundle)
    wait_results(window)
    predictions, labels = _labels_and_predictions(window, row, edited)
    one = reference_mean_iou([predictions[row]], [edited], k, IGNORE)["mean_iou"]
    assert _row_text(window, row, COL_MIOU) == f"{one:.3f}"
    np.testing.assert_array_equal(window.review.results(create=False).metrics()["per_category_iou"],
                                  reference_mean_iou(predictions, labels, k, IGNORE)["per_category_iou"])


def test_an_a_b_comparison_follows_edits_made_before_and_during_it(editor, qtbot, request):
    window, first = editor, editor.review.row
    k, count = window.review.label_map().num_labels, len(editor.review.source)
    edits = {first: _edit(window, qtbot)}
    qtbot.waitUntil(lambda: window.image_model.corrected(first), timeout=10_000)  # saved, then left
    second = next(r for r in range(count) if r != first)
    window.dataset_panel.select_entry(second)
    qtbot.waitUntil(lambda: window.viewer.content is not None and window.viewer.content.index == second
                    and window.viewer.content.prediction is not None)
    window.compare.compare_with(str(request.getfixturevalue("checkpoint_b")), device="cpu")
    qtbot.waitUntil(lambda: window.compare.complete and not window.jobs.is_running("compare"), timeout=60_000)

    def assert_b_follows() -> None:
        labels = [edits.get(i, window.review.source.ground_truth(i)) for i in range(count)]
        predictions_a = [window.review.results(create=False).get(i).prediction.unpack() for i in range(count)]
        predictions_b = [window.compare.results.get(i).prediction.unpack() for i in range(count)]
        reference_b = reference_mean_iou(predictions_b, labels, k, IGNORE)["per_category_iou"]
        np.testing.assert_array_equal([window.class_table.model.iou_b[c] for c in range(k)], reference_b)
        for row, edited in edits.items():
            a_right, b_right = predictions_a[row] == edited, predictions_b[row] == edited
            labelled = edited != IGNORE
            fixed, broken = int((~a_right & b_right & labelled).sum()), int((a_right & ~b_right & labelled).sum())
            assert window.compare.flips[row] == (fixed, broken)

    assert_b_follows()
    edits[second] = _edit(window, qtbot)  # during the comparison
    assert_b_follows()


def _record_on_disk(folder) -> dict[str, str]:
    """file name -> status, read with SQLite itself."""
    with sqlite3.connect(folder / "review.sqlite") as db:
        return dict(db.execute("SELECT file_name, status FROM review WHERE split = 'validation'").fetchall())


def test_a_saved_correction_marks_its_row_and_makes_it_fixed(editor, make_window, tiny_demo, qsettings, qtbot):
    window, row, panel = editor, editor.review.row, editor.dataset_panel
    file_name = window.review.source.entries[row].file_name
    messages: list[str] = []
    window.review.status.connect(messages.append)
    assert window.image_model.status(row) == "unreviewed" and not window.image_model.corrected(row)
    edited = _edit(window, qtbot)
    store = lambda: window.corrections.store()  # noqa: E731 - the folder as it is now
    qtbot.waitUntil(lambda: store().items("validation") != [], timeout=10_000)  # autosaved
    qtbot.waitUntil(lambda: window.image_model.corrected(row), timeout=5_000)
    item = store().items("validation")[0]
    original = window.review.original_ground_truth()
    assert item.file_name == file_name and item.changed_pixels == int((edited != original).sum())
    folder = window.record.folder()
    assert folder == store().path and _record_on_disk(folder) == {file_name: "fixed"}
    assert window.image_model.status(row) == "fixed"
    assert _row_text(window, row, COL_STATUS) == "✎ fixed"
    model = window.image_model
    tip = model.data(model.index(model.row_of(row), COL_STATUS), Qt.ItemDataRole.ToolTipRole)
    assert f"{item.changed_pixels:,} px differ from the original" in tip
    assert sum("status is now fixed" in m for m in messages) == 1  # said once
    assert not panel.view.isColumnHidden(COL_STATUS)
    longest = max(panel.view.fontMetrics().horizontalAdvance(f"✎ {text}") for text in ("needs fix", "accepted"))
    assert panel.view.columnWidth(COL_STATUS) >= longest + 8  # the mark and the status, not elided

    panel.set_review_status("corrected")
    assert [panel.proxy.entry_at(r) for r in range(panel.proxy.rowCount())] == [row]
    panel.set_review_status(None)

    window.actions.undo.trigger()  # back to the original: the folder keeps a correction that changes nothing
    qtbot.waitUntil(lambda: store().items("validation")[0].changed_pixels == 0, timeout=10_000)
    qtbot.waitUntil(lambda: model.corrections[row].changed_pixels == 0, timeout=5_000)
    assert _record_on_disk(folder) == {file_name: "fixed"} and model.corrected(row)
    assert sum("status is now fixed" in m for m in messages) == 1

    second = make_window(settings=qsettings)  # a new window reads the marks from the corrections index
    second.set_dataset(tiny_demo)
    assert second.image_model.corrected(row) and second.image_model.status(row) == "fixed"
    assert [i for i in range(len(second.review.source)) if second.image_model.corrected(i)] == [row]


def test_accepted_rows_keep_their_status_when_a_correction_is_saved(editor, qtbot):
    window, row = editor, editor.review.row
    file_name = window.review.source.entries[row].file_name
    window.actions.review["accept"].trigger()  # accepted, then the next unreviewed image is shown
    qtbot.waitUntil(lambda: window.viewer.content is not None and window.viewer.content.index != row)
    window.dataset_panel.select_entry(row)
    qtbot.waitUntil(lambda: window.viewer.content is not None and window.viewer.content.index == row
                    and window.viewer.content.prediction is not None)
    _edit(window, qtbot)
    qtbot.waitUntil(lambda: window.image_model.corrected(row), timeout=10_000)
    assert _record_on_disk(window.record.folder()) == {file_name: "accepted"}
    assert _row_text(window, row, COL_STATUS) == "✎ accepted"


def test_the_grid_marks_a_corrected_thumbnail(editor, qtbot):
    window, row, panel = editor, editor.review.row, editor.dataset_panel
    _edit(window, qtbot)
    qtbot.waitUntil(lambda: window.image_model.corrected(row), timeout=10_000)
    panel.show_view("Grid")
    qtbot.waitUntil(lambda: panel.grid.isVisible())
    picture = panel.grid.viewport().grab().toImage()
    scale = picture.devicePixelRatio()

    def row_of_pixels(entry: int) -> set:
        top_left = panel.grid.visualRect(panel.proxy.mapFromSource(
            window.image_model.index(window.image_model.row_of(entry), COL_NAME))).topLeft()
        y = int((top_left.y() + 5) * scale)
        return {picture.pixelColor(int((top_left.x() + x) * scale), y).rgb() for x in range(3, 100)}

    assert CORRECTED_COLOUR.rgb() in row_of_pixels(row)
    other = next(r for r in range(len(window.review.source)) if r != row)
    assert CORRECTED_COLOUR.rgb() not in row_of_pixels(other)


def test_an_image_fixed_under_the_needs_fix_filter_stays_on_screen_until_left(editor, qtbot):
    window, row, panel = editor, editor.review.row, editor.dataset_panel
    window.actions.review["flag"].trigger()  # needs fix, then the next unreviewed image is shown
    panel.set_review_status("needs_fix")
    assert [panel.proxy.entry_at(r) for r in range(panel.proxy.rowCount())] == [row]
    qtbot.waitUntil(lambda: window.viewer.content is not None and window.viewer.content.index == row
                    and window.viewer.content.prediction is not None)
    _edit(window, qtbot)
    qtbot.waitUntil(lambda: window.image_model.status(row) == "fixed", timeout=10_000)  # saved: fixed
    assert panel.current_entry() == row and window.viewer.content.index == row and window.editing.session is not None
    assert [panel.proxy.entry_at(r) for r in range(panel.proxy.rowCount())] == [row]
    _edit(window, qtbot, ((30.5, 200.5), (200.5, 30.5)))  # still editing the same image
    assert window.editing.stack.count() == 2
    panel.set_review_status(None)
    panel.select_entry(next(r for r in range(len(window.review.source)) if r != row))  # moved on
    qtbot.waitUntil(lambda: panel.proxy.kept is None)
    panel.set_review_status("needs_fix")
    assert panel.proxy.rowCount() == 0  # the fixed image has left the Needs-fix list


def test_an_edit_left_for_another_split_before_its_autosave_is_saved_as_its_own_images(editor, qtbot):
    window, row = editor, editor.review.row
    file_name = window.review.source.entries[row].file_name
    stroke(window.viewer.panes["gt"], [(60.5, 60.5), (190.5, 190.5)])
    edited = window.viewer.content.ground_truth.copy()
    assert window.editing._autosave.isActive() and window.editing._pause_timer.isActive()  # neither happened yet
    window.review.show_source("train")  # leaving at once: the edit is saved on the way out
    items = window.corrections.store().items()
    assert [(i.split, i.file_name) for i in items] == [("validation", file_name)]
    saved = window.corrections.store().load("validation", file_name)
    assert np.array_equal(window.review.convention().to_model_ids(saved), edited)
    window.review.show_source("validation")
    assert window.image_model.corrected(row) and window.image_model.status(row) == "fixed"
    prediction = window.review.results(create=False).get(row).prediction.unpack()
    one = reference_mean_iou([prediction], [edited], window.review.label_map().num_labels, IGNORE)["mean_iou"]
    assert _row_text(window, row, COL_MIOU) == f"{one:.3f}"  # re-scored although the split was left at once


def test_a_correction_that_changes_nothing_is_marked_but_moves_no_status(editor, qtbot):
    """A stroke undone before its autosave: the store keeps what it is given, a correction equal to the original."""
    window, row = editor, editor.review.row
    stroke(window.viewer.panes["gt"], [(60.5, 60.5), (190.5, 190.5)])
    window.actions.undo.trigger()
    qtbot.waitUntil(lambda: window.image_model.corrected(row), timeout=10_000)
    assert window.corrections.store().items("validation")[0].changed_pixels == 0
    assert window.image_model.status(row) == "unreviewed" and _row_text(window, row, COL_STATUS) == "✎"
    model = window.image_model
    assert "corrected: 0 px differ" in model.data(model.index(model.row_of(row), COL_STATUS), Qt.ItemDataRole.ToolTipRole)

"""Mask editing through the real widgets: mouse strokes on a pane's viewport, the Edit menu, the class picker.

Expected pixels come from references nobody here wrote or from the definition: the brush is every pixel whose
centre lies within the radius of the stroke's path (as the pane reported it), flood fill and polygons are Pillow's,
scores are evaluate's algorithm (``reference_mean_iou``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image, ImageDraw
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from segstudio.core.metrics.reference import reference_mean_iou

LEFT, NO_MOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def stroke(pane, points: list[tuple[float, float]]) -> list[tuple[str, float, float]]:
    """Press at the first scene point, move through the others, release at the last; what the pane reported."""
    reported: list[tuple[str, float, float]] = []
    record = lambda kind, x, y: reported.append((kind, x, y))  # noqa: E731
    pane.edit_event.connect(record)
    viewport = pane.viewport()
    at = [pane.mapFromScene(QPointF(x, y)) for x, y in points]
    QTest.mousePress(viewport, LEFT, NO_MOD, at[0])
    for point in at[1:]:
        QTest.mouseMove(viewport, point)
    QTest.mouseRelease(viewport, LEFT, NO_MOD, at[-1])
    pane.edit_event.disconnect(record)
    return reported


def click(pane, x: float, y: float, double: bool = False) -> tuple[float, float]:
    """A click (or double-click) on the scene point; the point the pane reported."""
    reported = []
    record = lambda kind, px, py: reported.append((px, py))  # noqa: E731
    pane.edit_event.connect(record)
    at = pane.mapFromScene(QPointF(x, y))
    if double:
        QTest.mouseDClick(pane.viewport(), LEFT, NO_MOD, at)
    else:
        QTest.mouseClick(pane.viewport(), LEFT, NO_MOD, at)
    pane.edit_event.disconnect(record)
    return reported[0]


def swept(shape: tuple[int, int], reported, diameter: float) -> np.ndarray:
    """Pixels whose centre is within diameter / 2 of the polyline through the reported points."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    px, py = cols + 0.5, rows + 0.5
    points = [(x, y) for _kind, x, y in reported]
    covered = np.zeros(shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(points, points[1:] or points, strict=False):
        vx, vy = bx - ax, by - ay
        length2 = vx * vx + vy * vy
        t = np.zeros(shape) if length2 == 0 else np.clip(((px - ax) * vx + (py - ay) * vy) / length2, 0, 1)
        covered |= np.hypot(px - ax - t * vx, py - ay - t * vy) <= diameter / 2
    return covered


def overlay_rgba(window, key: str = "gt") -> np.ndarray:
    image = window.viewer.panes[key].overlay.pixmap().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    return np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.width(), 4).copy()


def class_rgba(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """What the ground-truth layer must show: each class's palette colour, opaque; ignored pixels clear."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    labelled = mask != 255
    rgba[labelled, :3] = palette[mask[labelled]]
    rgba[labelled, 3] = 255
    return rgba


def test_a_stroke_paints_exactly_the_brush_pixels_on_screen_and_undo_redo_restore(editor):
    content, pane = editor.viewer.content, editor.viewer.panes["gt"]
    editor.edit_panel.size.setValue(9)
    before = content.ground_truth.copy()
    reported = stroke(pane, [(20.5, 30.5), (60.2, 45.7), (90.0, 120.4)])
    assert [kind for kind, _x, _y in reported] == ["press", "move", "move", "release"]
    expected = before.copy()
    expected[swept(before.shape, reported, 9)] = 3
    edited = editor.viewer.content.ground_truth
    assert np.array_equal(edited, expected)
    assert np.array_equal(editor.review.original_ground_truth(), before)  # the dataset's mask is untouched
    palette = editor.review.label_map().palette
    assert np.array_equal(overlay_rgba(editor), class_rgba(expected, palette))  # on screen, every pixel
    assert editor.editing.stack.count() == 1  # one stroke, one undo step
    editor.actions.undo.trigger()
    assert np.array_equal(editor.viewer.content.ground_truth, before)
    assert np.array_equal(overlay_rgba(editor), class_rgba(before, palette))
    editor.actions.redo.trigger()
    assert np.array_equal(editor.viewer.content.ground_truth, expected)
    changed = int((expected != before).sum())
    assert editor.editing.history_bytes() < min(2 * changed, before.nbytes // 10)  # changed pixels as runs only


def test_fill_takes_the_four_connected_region_under_the_click_as_pillow_fills_it(editor):
    editor.actions.edit_tools["fill"].trigger()
    before = editor.viewer.content.ground_truth.copy()
    x, y = click(editor.viewer.panes["pred"], 100.5, 100.5)  # any pane edits the ground truth
    reference = Image.fromarray(before).copy()
    sentinel = next(v for v in range(256) if not (before == v).any())
    ImageDraw.floodfill(reference, (int(x), int(y)), sentinel, thresh=0)
    expected = before.copy()
    expected[np.array(reference) == sentinel] = 3
    assert np.array_equal(editor.viewer.content.ground_truth, expected)
    assert (expected != before).any()


def test_polygon_vertices_then_double_click_fill_as_pillows_polygon(editor):
    editor.actions.edit_tools["polygon"].trigger()
    before = editor.viewer.content.ground_truth.copy()
    vertices = [click(editor.viewer.panes["gt"], x, y) for x, y in ((30.5, 30.5), (150.5, 40.5), (120.5, 160.5))]
    assert np.array_equal(editor.viewer.content.ground_truth, before)  # nothing until the polygon closes
    click(editor.viewer.panes["gt"], 120.5, 160.5, double=True)
    canvas = Image.new("L", (before.shape[1], before.shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([(int(x), int(y)) for x, y in vertices], fill=1, outline=1)
    expected = before.copy()
    expected[np.asarray(canvas, dtype=bool)] = 3
    assert np.array_equal(editor.viewer.content.ground_truth, expected)
    editor.actions.undo.trigger()
    assert np.array_equal(editor.viewer.content.ground_truth, before)


def test_paint_ignore_makes_pixels_the_datasets_ignore_value_and_clear_on_screen(editor):
    editor.actions.set_ignore.trigger()
    ignore = editor.review.ignore_index()
    assert editor.edit_panel.picker.current == ignore == 255
    editor.edit_panel.size.setValue(5)
    before = editor.viewer.content.ground_truth.copy()
    reported = stroke(editor.viewer.panes["gt"], [(50.5, 50.5), (80.5, 50.5)])
    covered = swept(before.shape, reported, 5)
    assert (editor.viewer.content.ground_truth[covered] == ignore).all()
    assert np.array_equal(editor.viewer.content.ground_truth[~covered], before[~covered])
    assert (overlay_rgba(editor)[covered][:, 3] == 0).all()  # ignored pixels are drawn clear


def test_adopting_the_prediction_with_the_brush_and_in_an_error_region(editor):
    content = editor.viewer.content
    prediction, before = content.prediction, content.ground_truth.copy()
    editor.actions.edit_tools["adopt"].trigger()
    editor.edit_panel.size.setValue(11)
    reported = stroke(editor.viewer.panes["gt"], [(40.5, 200.5), (200.5, 180.5)])
    covered = swept(before.shape, reported, 11)
    edited = editor.viewer.content.ground_truth
    assert np.array_equal(edited[covered], prediction[covered])
    assert np.array_equal(edited[~covered], before[~covered])
    editor.actions.undo.trigger()
    wrong = (before != prediction) & (before != 255)
    y, x = np.argwhere(wrong)[len(np.argwhere(wrong)) // 2]
    editor.actions.edit_tools["adopt_region"].trigger()
    click(editor.viewer.panes["error"], x + 0.5, y + 0.5)
    reference = Image.fromarray(wrong.astype(np.uint8)).copy()
    ImageDraw.floodfill(reference, (int(x), int(y)), 2, thresh=0)
    region = np.array(reference) == 2
    edited = editor.viewer.content.ground_truth
    assert np.array_equal(edited[region], prediction[region])
    assert np.array_equal(edited[~region], before[~region])


def test_the_eraser_puts_back_the_original_labels(editor):
    before = editor.viewer.content.ground_truth.copy()
    editor.edit_panel.size.setValue(21)
    stroke(editor.viewer.panes["gt"], [(100.5, 100.5), (140.5, 100.5)])
    editor.actions.edit_tools["eraser"].trigger()
    editor.edit_panel.size.setValue(41)
    stroke(editor.viewer.panes["gt"], [(100.5, 100.5), (140.5, 100.5)])
    assert np.array_equal(editor.viewer.content.ground_truth, before)
    assert editor.editing.stack.count() == 2


def test_class_picker_search_recent_classes_and_legend_click(editor, qtbot):
    picker = editor.edit_panel.picker
    names = editor.review.label_map()
    target = next(i for i in range(names.num_labels) if i != 3)
    query = str(names.name(target)).strip()[:4]
    qtbot.keyClicks(picker.search, query)
    shown = [picker.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(picker.list.count())]
    assert shown == [v for v in picker.order() if query.lower() in picker.name(v).lower()] and target in shown
    QTest.keyClick(picker.search, Qt.Key.Key_Return)
    first = shown[0]
    assert picker.current == first
    picker.search.clear()
    assert picker.order()[:3] == [255, first, 3]  # ignore, then the last classes used, most recent first
    legend = editor.legend
    item = legend.tree.topLevelItem(legend.tree.topLevelItemCount() - 1)
    rect = legend.tree.visualItemRect(item)
    QTest.mouseClick(legend.tree.viewport(), LEFT, NO_MOD, rect.center())
    assert picker.current == int(item.data(0, Qt.ItemDataRole.UserRole))


def test_each_stroke_re_scores_the_image(editor, qtbot):
    content = editor.viewer.content
    prediction, before = content.prediction, content.ground_truth.copy()
    names = editor.review.label_map()

    def reference_iou(labels: np.ndarray) -> float:
        return reference_mean_iou([prediction], [labels], names.num_labels, 255)["mean_iou"]

    editor.actions.edit_tools["adopt"].trigger()
    editor.edit_panel.size.setValue(61)
    stroke(editor.viewer.panes["gt"], [(60.5, 60.5), (190.5, 190.5)])
    text = editor.edit_panel.score.text()
    edited = editor.viewer.content.ground_truth
    assert f"{reference_iou(edited):.3f} (was {reference_iou(before):.3f})" in text
    assert f"{int((edited != before).sum()):,} px differ" in text
    qtbot.waitUntil(lambda: editor.editing.issue_count is not None, timeout=30_000)
    assert editor.editing.issue_count == int(editor.viewer.suspects.sum())
    assert "Suspected label errors" in editor.edit_panel.score.text()


def test_edits_stay_when_the_image_is_left_and_shown_again(editor, qtbot):
    row = editor.review.row
    stroke(editor.viewer.panes["gt"], [(30.5, 30.5), (60.5, 30.5)])
    edited = editor.viewer.content.ground_truth.copy()
    other = next(r for r in range(len(editor.review.source)) if r != row)
    editor.review.show_row(other)
    qtbot.waitUntil(lambda: editor.viewer.content is not None and editor.viewer.content.index == other)
    assert editor.editing.stack.count() == 0
    editor.review.show_row(row)
    qtbot.waitUntil(lambda: editor.viewer.content is not None and editor.viewer.content.index == row)
    assert np.array_equal(editor.viewer.content.ground_truth, edited)


def test_the_brush_outline_follows_the_zoom(editor):
    editor.edit_panel.size.setValue(20)
    pane = editor.viewer.panes["gt"]
    QTest.mouseMove(pane.viewport(), pane.mapFromScene(QPointF(100, 100)))
    outline = pane.brush_outline
    assert outline.isVisible() and outline.rect().width() == 20
    for zoom in (1.0, 2.0, 3.0):
        editor.viewer.zoom_by(zoom)
        width = pane.mapFromScene(outline.rect()).boundingRect().width()
        assert width == pytest.approx(20 * pane.transform().m11(), abs=2)  # 20 image pixels wide at any zoom
    editor.actions.edit_mode.trigger()
    assert not outline.isVisible() and not editor.editing.enabled


def test_edits_are_autosaved_to_the_corrections_folder_and_read_back_by_a_new_window(editor, make_window, tiny_demo,
                                                                                       qsettings, qtbot):
    row, source = editor.review.row, editor.review.source
    stroke(editor.viewer.panes["gt"], [(40.5, 40.5), (120.5, 90.5)])
    edited = editor.viewer.content.ground_truth.copy()
    file_name = source.entries[row].file_name
    saved = lambda: editor.corrections.store().load("validation", file_name)  # noqa: E731 - the folder as it is now
    qtbot.waitUntil(lambda: saved() is not None, timeout=10_000)  # autosaved: nobody pressed save
    assert np.array_equal(editor.review.convention().to_model_ids(saved()), edited)
    assert np.array_equal(source.ground_truth(row), editor.review.original_ground_truth())  # the dataset's is kept
    # The first window is left as a crash would leave it; a new one reads the dataset with the folder.
    second = make_window(settings=qsettings)
    second.set_dataset(tiny_demo)
    second.corrections.reload()
    qtbot.waitUntil(lambda: second.review.dataset.corrections is not None, timeout=30_000)
    assert np.array_equal(second.review.source.ground_truth(row), edited)
    second.review.show_row(row)
    qtbot.waitUntil(lambda: second.viewer.content is not None and second.viewer.content.index == row)
    assert np.array_equal(second.viewer.content.ground_truth, edited)
    second.actions.edit_tools["eraser"].trigger()  # back to the dataset's own mask, not the saved correction
    second.edit_panel.size.setValue(200)
    reported = stroke(second.viewer.panes["gt"], [(0.5, 0.5), (255.5, 255.5)])
    original = tiny_demo.convention.to_model_ids(np.asarray(tiny_demo.splits["validation"][row]["annotation"]))
    erased = swept(edited.shape, reported, 200)
    assert np.array_equal(second.viewer.content.ground_truth[erased], original[erased])


KILLED_EDITOR = """
import os, signal, sys
import numpy as np
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from segstudio.core.data.demo_dataset import make_demo
from segstudio.gui.main_window import MainWindow
from segstudio.process_setup import set_up_window

set_up_window()  # as run_app does
app = QApplication([])
window = MainWindow(QSettings(sys.argv[1], QSettings.Format.IniFormat), autoload=False)
window.resize(1200, 800)
window.show()
window.set_dataset(make_demo(train=8, validation=6, test=2))
while window.viewer.content is None:
    app.processEvents()
window.viewer.set_layout("side")
window.actions.edit_mode.trigger()
window.edit_panel.picker.pick(3)
pane = window.viewer.panes["gt"]

def stroke(points):
    at = [pane.mapFromScene(QPointF(x, y)) for x, y in points]
    QTest.mousePress(pane.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at[0])
    QTest.mouseMove(pane.viewport(), at[1])
    QTest.mouseRelease(pane.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at[1])

stroke([(40.5, 40.5), (120.5, 90.5)])
while window.editing._dirty or window.jobs.is_running("autosave"):  # the autosave timer, then its worker
    app.processEvents()
np.save(sys.argv[2], window.viewer.content.ground_truth)
print(window.review.row, flush=True)
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed inside the next save, before its rename
stroke([(10.5, 200.5), (200.5, 200.5)])
while True:
    app.processEvents()
"""


@pytest.mark.slow
def test_an_editor_killed_while_saving_leaves_the_last_saved_mask_whole(make_window, tiny_demo, tmp_path, qtbot):
    ini, first = tmp_path / "settings.ini", tmp_path / "first-stroke.npy"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_EDITOR), str(ini), str(first)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == -9, done.stderr  # SIGKILL, in the middle of the second stroke's save
    row, saved = int(done.stdout.split()[0]), np.load(first)
    window = make_window(settings=QSettings(str(ini), QSettings.Format.IniFormat))
    window.set_dataset(tiny_demo)
    window.corrections.reload()
    qtbot.waitUntil(lambda: window.review.dataset.corrections is not None, timeout=60_000)
    assert np.array_equal(window.review.source.ground_truth(row), saved)  # the first stroke, whole
    window.review.show_row(row)
    qtbot.waitUntil(lambda: window.viewer.content is not None and window.viewer.content.index == row)
    assert np.array_equal(window.viewer.content.ground_truth, saved)

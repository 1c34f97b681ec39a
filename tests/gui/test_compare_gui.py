"""Checkpoint A/B review in the window: B scored in the background, IoU B and Δ columns, ranking, flips layer."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QPushButton

from segstudio.core.evaluation.compare import flip_counts
from segstudio.core.evaluation.scoring import evaluate_split
from segstudio.core.inference.predictor import Predictor
from segstudio.core.model.loading import load_model, save_checkpoint
from segstudio.gui.widgets.class_table import CLASS_ROLE, SORT_ROLE, ClassTableModel
from segstudio.gui.widgets.image_list import COL_RANK


@pytest.fixture(scope="module")
def suppressed(tiny_demo, scratch_bundle) -> int:
    """The class the (random) model A gets right most often: checkpoint B never predicts it."""
    result = evaluate_split(tiny_demo, "validation", scratch_bundle.predictor, keep_predictions=False)
    return int(np.argmax(np.diagonal(result.matrix)))


@pytest.fixture(scope="module")
def checkpoint_b(tmp_path_factory, scratch_bundle, suppressed):
    """The session's scratch model with one class's classifier row zeroed and its bias pushed down."""
    loaded = copy.deepcopy(scratch_bundle.loaded)
    classifier = loaded.model.decode_head.classifier
    with torch.no_grad():
        classifier.weight[suppressed] = 0
        classifier.bias[suppressed] = -1e4
    folder = tmp_path_factory.mktemp("ab") / "model-b"
    save_checkpoint(loaded.model, loaded.processor, loaded.label_map, loaded.convention, folder)
    return folder


@pytest.fixture(scope="module")
def b_alone(tiny_demo, checkpoint_b):
    """Checkpoint B's own evaluation of the tiny demo's validation split, for the expected numbers."""
    return evaluate_split(tiny_demo, "validation", Predictor(load_model(str(checkpoint_b)), device="cpu"))


def overlay_rgba(viewer, key: str) -> np.ndarray:
    """(H, W, 4) uint8 of a pane's overlay as drawn."""
    image = viewer.panes[key].overlay.pixmap().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 4 * image.width()].reshape(image.height(), image.width(), 4).copy()


def _compare(window, qtbot, folder):
    window.compare.compare_with(str(folder), device="cpu")
    qtbot.waitUntil(lambda: window.compare.complete, timeout=60_000)
    qtbot.waitUntil(lambda: not window.jobs.is_running("compare"), timeout=60_000)


def test_b_columns_and_flips_match_a_separate_evaluation(review_window, qtbot, checkpoint_b, b_alone, suppressed):
    window = review_window
    assert window.actions.compare.text().startswith("Com")
    _compare(window, qtbot, checkpoint_b)
    table = window.class_table
    model = table.model
    note = table.compare_note.text()  # B's headline figure beside A's, from B's own evaluation
    assert f"mean IoU B {100 * b_alone.metrics['mean_iou']:.1f}%" in note
    assert f"(A {100 * window.review.results().metrics()['mean_iou']:.1f}%" in note
    assert model.headerData(ClassTableModel.COL_DELTA, Qt.Orientation.Horizontal) == "Δ IoU"
    assert model.headerData(1, Qt.Orientation.Horizontal) == "IoU A %"
    rows_a, rows_b = window.review.results().class_rows(), b_alone.class_rows()
    for row_b in rows_b:
        got = model.iou_b[row_b.class_id]
        assert got == row_b.iou or (math.isnan(got) and math.isnan(row_b.iou))
    assert rows_b[suppressed].pred_pixels == 0 < rows_a[suppressed].pred_pixels
    table.sort_by_delta()
    proxy = table.proxy
    deltas = [proxy.index(r, ClassTableModel.COL_DELTA).data(SORT_ROLE)
              for r in range(proxy.rowCount())]
    assert deltas == sorted(deltas)
    first = proxy.index(0, 0).data(CLASS_ROLE)
    expected = rows_b[first].iou - rows_a[first].iou
    assert proxy.index(0, ClassTableModel.COL_DELTA).data() == f"{100 * expected:+.1f}"
    source, results_a = window.review.source, window.review.results()
    for image in b_alone.images:
        pred_a = results_a.get(image.index).prediction.unpack()
        counts = flip_counts(pred_a, image.prediction, source.ground_truth(image.index))
        assert window.compare.flips[image.index] == counts
    assert sum(b for _, b in window.compare.flips.values()) > 0
    assert table.compare_bar.isVisibleTo(table)


def test_ranking_by_regression_shows_the_flips_of_the_worst_image(review_window, qtbot, checkpoint_b):
    window = review_window
    _compare(window, qtbot, checkpoint_b)
    flips = window.compare.flips
    button = window.class_table.compare_bar.findChild(QPushButton, "rank-regressed")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    panel = window.dataset_panel
    assert not panel.view.isColumnHidden(COL_RANK)
    listed = [panel.proxy.entry_at(r) for r in range(panel.proxy.rowCount())]
    regress = [flips[i][1] - flips[i][0] for i in listed]
    assert regress == sorted(regress, reverse=True)
    viewer = window.viewer
    qtbot.waitUntil(lambda: viewer.content.index == listed[0] and viewer.flips is not None, timeout=10_000)
    assert window.viewer.analysis == "flips"
    fixed, broken = flips[listed[0]]
    layer = overlay_rgba(window.viewer, "error")
    assert np.count_nonzero(layer[..., 3]) == fixed + broken
    assert np.count_nonzero((layer[..., 3] > 0) & (layer[..., 0] == 230)) == broken  # red: broken by B
    assert np.count_nonzero(window.viewer.flips == 2) == broken
    qtbot.mouseClick(window.class_table.compare_bar.findChild(QPushButton, "end-comparison"), Qt.MouseButton.LeftButton)
    assert "Compared with" not in window.message_label.text() and "ended" in window.message_label.text()


def test_compare_refuses_until_a_is_evaluated_and_ends_cleanly(make_window, tiny_demo, scratch_bundle, qtbot,
                                                               checkpoint_b):
    window = make_window()
    window.compare.compare_with(str(checkpoint_b))
    assert "first" in window.message_label.text()
    window.set_dataset(tiny_demo)
    window.review.set_model(scratch_bundle)
    qtbot.waitUntil(lambda: window.review.results().complete, timeout=60_000)
    qtbot.waitUntil(lambda: not window.jobs.is_running("evaluate"), timeout=60_000)
    window.compare.compare_with(str(checkpoint_b), device="cpu")
    assert window.jobs.is_running("compare") and window.job_cancel.isVisible()
    qtbot.mouseClick(window.job_cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.jobs.is_running("compare"), timeout=60_000)
    qtbot.waitUntil(lambda: "Comparison cancelled" in window.message_label.text(), timeout=10_000)
    assert not window.compare.complete
    window.compare.compare_with(str(checkpoint_b), device="cpu")
    assert window.jobs.is_running("compare")
    window.close()  # cancels B's run; the window closes itself once the worker has stopped
    qtbot.waitUntil(lambda: not window.jobs.is_running(), timeout=60_000)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)

"""The pixel inspector through the real window: hover, pin, top-3 probabilities, low-confidence layer, drops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage


def overlay_alpha(viewer, key: str) -> np.ndarray:
    image = viewer.panes[key].overlay.pixmap().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 4 * image.width()].reshape(image.height(), image.width(), 4)[..., 3].copy()


def _viewport_point(viewer, x: int, y: int, key: str = "gt"):
    pane = viewer.panes[key]
    return pane, pane.mapFromScene(QPointF(x + 0.5, y + 0.5))


def _wait_topk(window, qtbot):
    inspect = window.inspect
    qtbot.waitUntil(lambda: inspect.topk is not None and inspect.topk.image is window.viewer.content.image,
                    timeout=30_000)
    return inspect.topk


def test_hover_shows_ground_truth_prediction_top3_and_margin(review_window, qtbot):
    window = review_window
    window.docks["inspector"].raise_()
    topk = _wait_topk(window, qtbot)
    content = window.viewer.content
    height, width = content.image.shape[:2]
    assert topk.probs.shape == topk.ids.shape == (3, height, width)
    assert topk.probs.dtype == np.float16 and topk.ids.dtype == np.uint8
    assert np.mean(topk.ids[0] == content.prediction) > 0.99  # same logits, same upsampling as the evaluation
    y, x = np.unravel_index(int(np.argmax(topk.margin)), topk.margin.shape)
    pane, point = _viewport_point(window.viewer, x, y)
    qtbot.mouseMove(pane.viewport(), point)
    panel = window.inspector
    qtbot.waitUntil(lambda: panel.info is not None and (panel.info.x, panel.info.y) == (x, y))
    info = panel.info
    names = content.names
    assert info.predicted == int(content.prediction[y, x]) == info.top[0][0]
    probs = [p for _, p in info.top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.001
    assert info.margin == pytest.approx(probs[0] - probs[1], abs=1e-3)
    assert panel.values["Predicted"].text() == str(names.name(info.predicted)).strip()
    assert panel.values["Top 1"].text().startswith(str(names.name(info.top[0][0])).strip())
    gt = int(content.ground_truth[y, x])
    assert info.ignored == (gt == content.ignore_index)
    assert panel.values["Ignored"].text() == ("yes" if info.ignored else "no")
    if not info.ignored:
        assert panel.values["Ground truth"].text() == str(names.name(gt)).strip()


def test_click_pins_the_pixel_until_unpinned(review_window, qtbot):
    window = review_window
    window.docks["inspector"].raise_()
    _wait_topk(window, qtbot)
    viewer, panel = window.viewer, window.inspector
    ignored = np.argwhere(viewer.content.ground_truth == viewer.content.ignore_index)
    y, x = (int(v) for v in (ignored[0] if len(ignored) else (3, 4)))
    pane, point = _viewport_point(viewer, x, y)
    qtbot.mouseClick(pane.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert window.inspect.pinned == (x, y) == viewer.marker
    assert all(item.isVisible() for pane in viewer.panes.values() for item in pane.markers)
    assert panel.unpin.isEnabled()
    _, elsewhere = _viewport_point(viewer, x + 20, y + 20)
    qtbot.mouseMove(pane.viewport(), elsewhere)
    qtbot.wait(50)
    assert (panel.info.x, panel.info.y) == (x, y)
    if len(ignored):
        assert panel.values["Ignored"].text() == "yes" and panel.values["Ground truth"].text() == "ignored"
    qtbot.mouseClick(panel.unpin, Qt.MouseButton.LeftButton)
    assert window.inspect.pinned is None and not panel.unpin.isEnabled() and viewer.marker is None


def test_low_confidence_layer_follows_the_threshold(review_window, qtbot):
    window = review_window
    viewer = window.viewer
    window.docks["classes"].raise_()  # the inspector is hidden: the layer alone asks for probabilities
    box = viewer.analysis_box
    box.setCurrentIndex(box.findData("confidence"))
    assert viewer.threshold_box.isVisibleTo(viewer)
    topk = _wait_topk(window, qtbot)
    margin = topk.probs[0].astype(np.float32) - topk.probs[1].astype(np.float32)
    qtbot.waitUntil(lambda: viewer.margin is not None)
    for threshold in (0.05, 0.3):
        viewer.threshold_box.setValue(threshold)
        assert np.count_nonzero(overlay_alpha(viewer, "error")) == np.count_nonzero(margin < threshold)
    window.dataset_panel.step(1)  # another image: its own probabilities, computed again
    qtbot.waitUntil(lambda: viewer.content.index == window.dataset_panel.proxy.entry_at(1))
    assert _wait_topk(window, qtbot) is not topk


def test_dropped_images_have_no_ground_truth_but_probabilities(make_window, scratch_bundle, qtbot, tmp_path):
    window = make_window()
    window.review.set_model(scratch_bundle)
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    window.review.add_dropped([(path, Path("photo.png"))])
    viewer = window.viewer
    qtbot.waitUntil(lambda: viewer.content is not None and viewer.content.prediction is not None, timeout=30_000)
    window.docks["inspector"].raise_()
    topk = _wait_topk(window, qtbot)
    y, x = np.unravel_index(int(np.argmax(topk.margin)), topk.margin.shape)
    pane, point = _viewport_point(viewer, x, y, "pred")
    qtbot.mouseMove(pane.viewport(), point)
    panel = window.inspector
    qtbot.waitUntil(lambda: panel.info is not None and (panel.info.x, panel.info.y) == (x, y))
    assert panel.info.ground_truth is None and panel.values["Ground truth"].text() == "none (no ground truth)"
    assert panel.values["Ignored"].text() == "n/a"
    assert panel.info.top[0][0] == int(viewer.content.prediction[y, x])


def test_hovering_reads_the_margin_computed_once_in_the_worker(review_window, qtbot):
    """The margin is an array made with the probabilities, off the GUI thread, not recomputed per mouse move."""
    window = review_window
    window.docks["inspector"].show()
    window.docks["inspector"].raise_()
    qtbot.waitUntil(lambda: window.inspect.topk is not None, timeout=60_000)
    topk = window.inspect.topk
    first = topk.margin
    for x in range(5):
        window.viewer._on_hover(x, 3)
    assert topk.margin is first and window.viewer.margin is first
    assert np.array_equal(first, topk.probs[0].astype(np.float32) - topk.probs[1].astype(np.float32))


def test_an_inspector_behind_another_tab_computes_nothing_until_its_tab_is_chosen(review_window, qtbot):
    window = review_window
    window.docks["classes"].raise_()  # the inspector's page is behind the Classes tab
    assert window.inspector.isVisible()  # what Qt says of a tabbed dock's hidden page
    started = []
    window.jobs.jobs_changed.connect(lambda: started.append(window.jobs.is_running("probabilities")))
    window.dataset_panel.step(1)
    qtbot.wait(800)  # past the settle delay
    assert not any(started) and window.inspect.topk is None
    window.docks["inspector"].raise_()
    qtbot.waitUntil(lambda: window.inspect.topk is not None, timeout=60_000)

"""Label-error ranking in the window: the "Suspected label errors first" order and the third pane's layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from segstudio.core.model.location import DEMO_MODEL_DIR
from segstudio.core.review.label_issues import scan_split, suspected_map
from segstudio.gui.widgets.dataset_panel import SUSPECTS
from segstudio.gui.widgets.image_list import COL_RANK, COL_SCENE

needs_demo_model = pytest.mark.skipif(
    not (Path(str(DEMO_MODEL_DIR)) / "config.json").exists(), reason="demo model not trained yet"
)


def overlay_rgba(viewer, key: str) -> np.ndarray:
    image = viewer.panes[key].overlay.pixmap().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 4 * image.width()].reshape(image.height(), image.width(), 4).copy()


@pytest.fixture(scope="module")
def demo_bundle(tiny_demo):
    """The shipped demo model: trained on the demo, so it doubts some labels (a random one doubts none)."""
    from segstudio.gui.workers.jobs import load_model_bundle

    return load_model_bundle("demo", tiny_demo, "cpu")


@needs_demo_model
@pytest.mark.slow
def test_suspected_order_follows_the_cores_ranking_and_the_layer_shows_its_pixels(make_window, wait_results, qtbot,
                                                                                 tiny_demo, demo_bundle):
    window = make_window()
    window.set_dataset(tiny_demo)
    window.review.set_model(demo_bundle)
    wait_results(window)
    _, expected = scan_split(tiny_demo, "validation", demo_bundle.predictor)
    report = window.review.results().label_issues
    assert [i.index for i in report.images] == [i.index for i in expected.images]
    np.testing.assert_allclose(report.thresholds, expected.thresholds)
    panel = window.dataset_panel
    panel.order.setCurrentText(SUSPECTS)
    assert window.image_model.rank == ("suspects",)
    assert not panel.view.isColumnHidden(COL_RANK) and panel.view.isColumnHidden(COL_SCENE)
    listed = [panel.proxy.entry_at(r) for r in range(panel.proxy.rowCount())]
    assert listed == [image.index for image in expected.images]
    first = expected.images[0]
    assert first.suspected > 0  # the layer below has pixels to show
    assert window.image_model.headerData(COL_RANK, Qt.Orientation.Horizontal) == "Suspected"
    assert panel.proxy.index(0, COL_RANK).data() == f"{first.suspected:,}"
    assert window.viewer.analysis == "suspects"
    panel.select_proxy_row(0)
    viewer = window.viewer
    qtbot.waitUntil(lambda: viewer.content is not None and viewer.content.index == first.index
                    and viewer.suspects is not None, timeout=20_000)
    source = window.review.source
    labels = source.ground_truth(first.index)
    [(_, ids, given, top)] = list(demo_bundle.predictor.predict_confidence_iter(
        [(0, tiny_demo.splits["validation"][first.index]["image"].convert("RGB"), labels)]))
    reference = suspected_map(labels, ids, given, top, expected.thresholds)
    np.testing.assert_array_equal(viewer.suspects, reference)
    assert int(viewer.suspects.sum()) == first.suspected
    layer = overlay_rgba(viewer, "error")
    assert np.count_nonzero(layer[..., 3]) == first.suspected
    panel.order.setCurrentText("Worst first")
    assert window.image_model.rank is None and panel.view.isColumnHidden(COL_RANK)

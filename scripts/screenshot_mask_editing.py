"""Save the README's mask-editing screenshot (offscreen): the demo's worst image in edit mode, after a few strokes.

    QT_QPA_PLATFORM=offscreen python scripts/screenshot_mask_editing.py [--out docs/images]
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from screenshots import (  # sets the offscreen platform and the offline hub
    demo_window,
    output_folder,
    save,
    wait,
)


def stroke(pane, points) -> None:
    """Press, move through the scene points, release: as a person paints."""
    at = [pane.mapFromScene(QPointF(x, y)) for x, y in points]
    QTest.mousePress(pane.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at[0])
    for point in at[1:]:
        QTest.mouseMove(pane.viewport(), point)
    QTest.mouseRelease(pane.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at[-1])


def main(argv: list[str] | None = None) -> int:
    out = output_folder(__doc__, argv)

    app, window, _temp = demo_window()
    review, viewer = window.review, window.viewer
    viewer.set_layout("side")
    window.actions.edit_mode.trigger()
    window.edit_panel.picker.search.setText("tre")  # type-to-search, as a person would
    window.edit_panel.picker.search.returnPressed.emit()
    window.edit_panel.picker.search.clear()
    window.edit_panel.size.setValue(24)
    height, width = viewer.content.ground_truth.shape
    stroke(viewer.panes["gt"], [(width * 0.1, height * 0.12), (width * 0.4, height * 0.2), (width * 0.75, height * 0.1)])
    window.actions.edit_tools["adopt"].trigger()
    stroke(viewer.panes["gt"], [(width * 0.6, height * 0.3), (width * 0.8, height * 0.35)])
    window.actions.edit_tools["brush"].trigger()
    QTest.mouseMove(viewer.panes["gt"].viewport(), viewer.panes["gt"].mapFromScene(QPointF(width * 0.5, height * 0.5)))
    wait(app, lambda: window.editing.issue_count is not None or review.results().label_issues is None,
         what="the edited mask's label-issue count")
    wait(app, lambda: window.image_model.corrected(review.row) and not window.editing._pause_timer.isActive(),
         what="the list and the Classes table following the edit, the correction saved")
    save(window, out / "mask-editing.png")  # lossless when small enough, else quantized under 250 KB
    window.shutdown(60_000)
    print(out / "mask-editing.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Mask editing on a 4096x4096 mask: one brush dab from mouse event to screen, and the undo history's memory.

Opens the real MainWindow (offscreen) with a 4096x4096 image whose ground truth is an ADE20K validation annotation
of the devkit scaled up (nearest), in edit mode with a 32-pixel brush, and draws 200 strokes of five mouse moves
each across it. A dab is timed from the mouse event sent to the pane's viewport until the event loop has run
the repaint (``processEvents``): the change record, the ground-truth and error layers' dirty rectangles, the
scene's repaint. The reference in the same run: rebuilding the whole overlays once (what a repaint of every layer
would cost per dab). Then the undo history's memory (the change records' arrays) after the 200 strokes, against
keeping a copy of the mask per stroke. Each stroke's release (re-score against the prediction) is timed apart, and
one save of the edited mask through the corrections store (what autosave runs in a worker after a pause).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_mask_edit.py [--strokes 200] [--size 4096]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from gui_harness import close_window, open_window
from PIL import Image

DEVKIT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ade20k-devkit"


def scaled_sample(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, ground truth in model ids, a prediction) of ``size`` x ``size`` from the devkit's first sample."""
    image = np.asarray(Image.open(DEVKIT / "ADE_val_00000001.jpg").convert("RGB").resize((size, size)))
    annotation = np.asarray(Image.open(DEVKIT / "ADE_val_00000001.png").resize((size, size), Image.NEAREST))
    ground_truth = np.where(annotation == 0, 255, annotation.astype(np.int16) - 1).astype(np.uint8)  # reduce labels
    prediction = np.roll(ground_truth, (size // 50, size // 40), axis=(0, 1))
    prediction[prediction == 255] = 0
    return np.ascontiguousarray(image), ground_truth, prediction


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=200)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--brush", type=int, default=32)
    args = parser.parse_args()
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    from segstudio.core.labels import LabelMap
    from segstudio.gui.widgets.layer_item import LayerItem
    from segstudio.gui.widgets.viewer import ViewContent

    image, ground_truth, prediction = scaled_sample(args.size)
    labels = LabelMap.ade20k()
    paints = [0]
    original_paint = LayerItem.paint

    def counting_paint(item, *a):  # set before the window exists: PySide looks overrides up once
        paints[0] += 1
        original_paint(item, *a)

    LayerItem.paint = counting_paint
    with tempfile.TemporaryDirectory() as folder:
        app, window = open_window(Path(folder))
        try:
            window.review.label_map = lambda: labels  # no dataset is open: score with the ADE20K classes
            window.viewer.set_layout("side")
            window.viewer.set_content(ViewContent(image, ground_truth, prediction, labels.palette, labels))
            app.processEvents()
            window.actions.edit_mode.trigger()
            window.edit_panel.size.setValue(args.brush)
            window.edit_panel.picker.pick(12)
            pane = window.viewer.panes["gt"]
            viewport = pane.viewport()
            rng = np.random.default_rng(0)
            dabs, releases = [], []
            for number in range(args.strokes):
                window.edit_panel.picker.pick(int(rng.integers(0, 150)))
                x, y = rng.uniform(0, args.size, 2)
                QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                                 pane.mapFromScene(QPointF(x, y)))
                app.processEvents()
                for _ in range(5):
                    x = float(np.clip(x + rng.normal(0, 60), 0, args.size - 1))
                    y = float(np.clip(y + rng.normal(0, 60), 0, args.size - 1))
                    at = pane.mapFromScene(QPointF(x, y))
                    start = time.perf_counter()
                    QTest.mouseMove(viewport, at)
                    app.processEvents()
                    dabs.append(time.perf_counter() - start)
                start = time.perf_counter()
                QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
                app.processEvents()
                releases.append(time.perf_counter() - start)
                if number == 0:
                    dabs.clear()  # the first stroke pays one-time imports
                    paints[0] = 0
            dab_paints = paints[0]
            full = []
            for _ in range(5):
                start = time.perf_counter()
                window.viewer._render_overlays()
                app.processEvents()
                full.append(time.perf_counter() - start)
            history = window.editing.history_bytes()
            strokes = window.editing.stack.count()
            from segstudio.core.review import CorrectionsStore

            store, edited = CorrectionsStore(Path(folder) / "corrections", dataset="bench"), window.viewer.content
            start = time.perf_counter()
            store.save("validation", "big.jpg", edited.ground_truth, ground_truth)  # what autosave runs
            save_ms = 1000 * (time.perf_counter() - start)
        finally:
            close_window(app, window)
    figures = {
        "mask": f"{args.size}x{args.size}", "brush_px": args.brush, "strokes": strokes, "dabs": len(dabs),
        "layer_paints_during_strokes": dab_paints,
        "dab_ms_p50": round(1000 * percentile(dabs, 50), 2), "dab_ms_p95": round(1000 * percentile(dabs, 95), 2),
        "full_repaint_ms_median": round(1000 * float(np.median(full)), 1),
        "full_repaint_over_dab_p95": round(float(np.median(full)) / percentile(dabs, 95), 1),
        "release_rescore_ms_p50": round(1000 * percentile(releases, 50), 1),
        "history_mb": round(history / 2**20, 3),
        "mask_copy_per_stroke_mb": round(strokes * ground_truth.nbytes / 2**20, 1),
        "autosave_ms": round(save_ms, 1),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

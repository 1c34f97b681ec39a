"""Save the README's screenshots (offscreen): the main window, the pixel inspector, a confusion cell, A/B, the grid.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--out docs]

Uses the demo dataset and the demo model; checkpoint B is the demo model with noise added to its classifier
(a stand-in for "another checkpoint"), saved to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

SIZE = (1600, 900)


def wait(app: QApplication, condition, timeout: float = 120.0, what: str = "") -> None:
    """Process events until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or condition}")
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):  # let layouts and repaints settle
        app.processEvents()


def checkpoint_b(folder: Path) -> Path:
    """The demo model with seeded noise on its classifier: it fixes some pixels and breaks others."""
    import torch

    from segstudio.core.model.loading import load_model, save_checkpoint

    loaded = load_model("demo")
    classifier = loaded.model.decode_head.classifier
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        classifier.weight.add_(torch.randn(classifier.weight.shape, generator=generator) * 0.04)
        classifier.bias.add_(torch.randn(classifier.bias.shape, generator=generator) * 0.15)
    return save_checkpoint(loaded.model, loaded.processor, loaded.label_map, loaded.convention, folder / "model-b")


def demo_window():
    """(app, window, temporary folder): the window at SIZE on the demo split, evaluated by the demo model, showing
    its worst image (settings in the temporary folder)."""
    from segstudio.core.data.sources import load_source
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.workers.jobs import load_model_bundle

    app = QApplication.instance() or QApplication(sys.argv[:1])
    temp = Path(tempfile.mkdtemp(prefix="segstudio-shots-"))
    window = MainWindow(QSettings(str(temp / "settings.ini"), QSettings.Format.IniFormat), autoload=False)
    window.resize(*SIZE)
    window.show()
    dataset = load_source("demo")
    window.set_dataset(dataset)
    window.review.set_model(load_model_bundle("demo", dataset, "cpu"))
    review, viewer = window.review, window.viewer
    wait(app, lambda: review.results().complete and not window.jobs.is_running("evaluate"), what="evaluation")
    wait(app, lambda: viewer.content is not None and viewer.content.prediction is not None, what="first image")
    return app, window, temp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    app, window, temp = demo_window()
    viewer = window.viewer

    # 0. the window as it opens on the demo: the worst image, its errors, the per-class table
    window.docks["classes"].raise_()
    window.grab().save(str(out / "screenshot-main.png"))

    # 1. the pixel inspector, pinned on a low-confidence pixel, beside the low-confidence layer
    window.docks["inspector"].raise_()
    viewer.set_analysis("confidence")
    viewer.set_confidence_threshold(0.3)
    wait(app, lambda: window.inspect.topk is not None and window.inspect.topk.image is viewer.content.image,
         what="probabilities")
    margin = window.inspect.topk.margin
    y, x = np.unravel_index(int(np.argmin(np.where(margin > 0.02, margin, 2.0))), margin.shape)
    window.inspect.pin(int(x), int(y))
    wait(app, lambda: True)
    window.grab().save(str(out / "screenshot-inspector.png"))

    # 2. the largest confusion selected: the images where it happens, exactly its pixels in the error pane
    window.inspect.unpin()
    viewer.set_analysis("errors")
    window.docks["confusions"].raise_()
    window.confusions.view.selectRow(0)
    first = window.dataset_panel.proxy.entry_at(0)
    wait(app, lambda: viewer.content is not None and viewer.content.index == first, what="ranked image")
    window.grab().save(str(out / "screenshot-confusion.png"))

    # 3. A/B: checkpoint B scored in the background, classes by change, images ranked by regression
    window.confusions.view.clearSelection()
    window.compare.compare_with(str(checkpoint_b(temp)), device="cpu")
    wait(app, lambda: window.compare.complete and not window.jobs.is_running("compare"), what="comparison")
    window.docks["classes"].raise_()
    window.compare.rank("regressed")
    first = window.dataset_panel.proxy.entry_at(0)
    wait(app, lambda: viewer.content.index == first and viewer.flips is not None, what="flips")
    window.grab().save(str(out / "screenshot-compare.png"))

    # 4. a 1280x800 screen: the thumbnail grid with score badges, one large pane with its switcher
    window.review.rank_by_class(-1)
    viewer.set_analysis("errors")
    window.resize(1280, 800)
    window.dataset_panel.show_view("Grid")
    window.dataset_panel.apply_order("Worst first")
    viewer.set_layout("single")
    viewer.show_single("error")
    window.dataset_panel.select_proxy_row(0)
    wait(app, lambda: viewer.content is not None and viewer.content.index == window.dataset_panel.proxy.entry_at(0),
         what="worst image")
    window.grab().save(str(out / "screenshot-grid.png"))

    window.shutdown()
    window.close()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Save the README's screenshots (offscreen) to docs/images: the main window, the inspector, a
confusion, the class filter, the high-contrast palette, A/B in 2x2, the export dialog, the grid, the training panel.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--out docs/images]

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
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

SIZE = (1600, 900)
MAX_BYTES = 250_000  # each PNG: quantized to fewer colours until it fits


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


def save(widget, path: Path) -> None:
    """Grab ``widget`` and write a small PNG: a 256-colour palette (fewer if still over MAX_BYTES)."""
    from PIL import Image

    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rgb = Image.frombuffer("RGB", (image.width(), image.height()), bytes(image.constBits()), "raw", "RGB",
                           image.bytesPerLine(), 1)
    rgb.save(path, optimize=True)
    for colours in (256, 128, 64):  # max coverage keeps small swatches' colours (median cut moved them by up to 128)
        if path.stat().st_size <= MAX_BYTES:
            break
        rgb.quantize(colours, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"{path.name}: {image.width()}x{image.height()}, {path.stat().st_size // 1000} KB")


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


def output_folder(doc: str, argv: list[str] | None) -> Path:
    """The ``--out`` folder a screenshot script writes to (docs/images by default), created."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "images"))
    out = Path(parser.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)
    return out


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
    out = output_folder(__doc__, argv)

    from segstudio.gui.dialogs.export import ExportDialog

    app, window, temp = demo_window()
    review, viewer, panel = window.review, window.viewer, window.dataset_panel

    # the window as it opens on the demo (Auto layout): the worst image, its errors, the per-class table
    window.docks["classes"].raise_()
    panel.view.setFocus()
    save(window, out / "main.png")

    # the pixel inspector, pinned on a low-confidence pixel, beside the low-confidence layer
    window.docks["inspector"].raise_()
    viewer.set_analysis("confidence")
    viewer.set_confidence_threshold(0.3)
    wait(app, lambda: window.inspect.topk is not None and window.inspect.topk.image is viewer.content.image,
         what="probabilities")
    margin = window.inspect.topk.margin
    y, x = np.unravel_index(int(np.argmin(np.where(margin > 0.02, margin, 2.0))), margin.shape)
    window.inspect.pin(int(x), int(y))
    wait(app, lambda: True)
    save(window, out / "inspector.png")

    # the largest confusion selected: the images where it happens, exactly its pixels in the error pane
    window.inspect.unpin()
    viewer.set_analysis("errors")
    window.docks["confusions"].raise_()
    window.confusions.view.selectRow(0)
    first = panel.proxy.entry_at(0)
    wait(app, lambda: viewer.content is not None and viewer.content.index == first, what="ranked image")
    save(window, out / "confusion.png")
    window.confusions.view.clearSelection()
    review.rank_by_class(-1)

    # the class filter: the images where a car is, found by typing part of its name
    window.docks["classes"].raise_()
    panel.present.setFocus()
    panel.present.lineEdit().setText("car")
    panel.present.lineEdit().editingFinished.emit()
    panel.select_proxy_row(0)
    wait(app, lambda: viewer.content is not None and viewer.content.index == panel.proxy.entry_at(0),
         what="filtered image")
    save(window, out / "class-filter.png")

    # View > Palette > High contrast: the shown image's classes far apart; the legend follows
    window.actions.palettes["contrast"].trigger()
    wait(app, lambda: True)
    save(window, out / "palette-contrast.png")
    window.actions.palettes["ade20k"].trigger()
    panel.set_present_class(None)

    # A/B in the 2x2 layout: checkpoint B scored in the background, classes by change, images ranked by regression
    window.compare.compare_with(str(checkpoint_b(temp)), device="cpu")
    wait(app, lambda: window.compare.complete and not window.jobs.is_running("compare"), what="comparison")
    viewer.set_layout("grid")
    window.compare.rank("regressed")
    first = panel.proxy.entry_at(0)
    wait(app, lambda: viewer.content.index == first and viewer.flips is not None, what="flips")
    panel.view.setFocus()
    save(window, out / "compare-2x2.png")
    window.compare.clear()

    # the export dialog, as File > Export opens it
    listed, total = panel.proxy.rowCount(), len(review.source)
    dialog = ExportDialog(window, str(Path.home() / "segstudio-export"), True, True, listed, total,
                          ["index", "color"], True)
    dialog.show()
    wait(app, lambda: True)
    save(dialog, out / "export-dialog.png")
    dialog.close()

    # a 1280x800 screen: the thumbnail grid with score badges, one large pane with its switcher
    review.rank_by_class(-1)
    viewer.set_analysis("errors")
    window.resize(1280, 800)
    panel.show_view("Grid")
    panel.apply_order("Worst first")
    viewer.set_layout("single")
    viewer.show_single("error")
    panel.select_proxy_row(0)
    wait(app, lambda: viewer.content is not None and viewer.content.index == panel.proxy.entry_at(0),
         what="worst image")
    save(window, out / "grid.png")

    # the training panel after a short run: live loss, validation mean IoU, the checkpoints written
    training = window.training_panel
    training.model_spec.setText("scratch")  # from random weights: the curves have somewhere to go
    training.length_unit.setCurrentText("steps")
    training.steps.setValue(30)
    training.batch_size.setValue(2)
    training.image_size.setValue(96)
    training.learning_rate.setValue(1e-3)
    training.device.setCurrentText("cpu")
    training.eval_steps.setValue(10)
    training.eval_limit.setValue(6)
    training.output_dir.setText(str(temp / "runs"))
    dock = window.docks["training"]
    dock.show()
    dock.setFloating(True)
    dock.resize(1400, 620)
    done = []
    window.training.finished.connect(done.append)
    window.training.start_from_panel()
    wait(app, lambda: bool(done), timeout=1800, what="training")
    training.start_button.setFocus()
    save(dock, out / "training.png")

    window.shutdown()
    window.close()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

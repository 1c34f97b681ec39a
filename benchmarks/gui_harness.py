"""What the GUI benchmarks share: an offscreen MainWindow with throw-away settings, closed cleanly."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def open_window(folder: Path):
    """(app, window): the real MainWindow, 1400x900, shown, settings in ``folder``, no autoload."""
    from segstudio.process_setup import set_up_window

    set_up_window()  # as run_app does
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from segstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    settings = QSettings(str(folder / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, autoload=False)
    window.resize(1400, 900)
    window.show()
    return app, window


def close_window(app, window) -> None:
    """Stop the window's workers and delete it while the interpreter is whole (not in its final GC)."""
    from PySide6.QtCore import QCoreApplication, QEvent

    window.shutdown(60_000)
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()

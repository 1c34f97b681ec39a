"""``run_app(argv)``: the QApplication and the main window (heavy libraries load later, in workers)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from segstudio.gui.settings import APPLICATION, ORGANIZATION
from segstudio.process_setup import set_up_window

if TYPE_CHECKING:
    from segstudio.gui.main_window import MainWindow


def app_icon() -> QIcon:
    """The window icon shipped in ``segstudio.resources/icons`` (an empty icon if it is missing)."""
    icon = resources.files("segstudio.resources").joinpath("icons", "segstudio.svg")
    return QIcon(str(icon)) if icon.is_file() else QIcon()


def show_main_window(app: QApplication, settings: QSettings | None = None, autoload: bool = True) -> MainWindow:
    """The main window, shown; ``app`` quits once it has closed, also when it hid first to let work stop."""
    from segstudio.gui.main_window import MainWindow

    window = MainWindow(settings=settings, autoload=autoload)
    window.last_window_closed.connect(app.quit)
    window.show()
    return window


def run_app(argv: Sequence[str] | None = None, settings: QSettings | None = None) -> int:
    """Open SegStudio on the demo (dataset, model, predictions streaming in); returns the exit status."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    set_up_window()
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(app_icon())
    window = show_main_window(app, settings=settings, autoload=True)
    code = app.exec()
    window.shutdown()
    return int(code)

"""``run_app(argv)``: the QApplication and the main window (heavy libraries load later, in workers)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import resources

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from segstudio.gui.settings import APPLICATION, ORGANIZATION
from segstudio.process_setup import set_up_window


def app_icon() -> QIcon:
    """The window icon shipped in ``segstudio.resources/icons`` (an empty icon if it is missing)."""
    icon = resources.files("segstudio.resources").joinpath("icons", "segstudio.svg")
    return QIcon(str(icon)) if icon.is_file() else QIcon()


def run_app(argv: Sequence[str] | None = None, settings: QSettings | None = None) -> int:
    """Open SegStudio on the demo (dataset, model, predictions streaming in); returns the exit status."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    set_up_window()
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(app_icon())
    from segstudio.gui.main_window import MainWindow

    window = MainWindow(settings=settings, autoload=True)
    window.show()
    code = app.exec()
    window.shutdown()
    return int(code)

"""Dialogs shared by the window: errors with details (never a silent failure), questions, about."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from importlib import metadata

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.gui.workers.worker import ErrorInfo


def path_row(field: QLineEdit, on_browse: Callable[[], None], label: str = "Browse…") -> QHBoxLayout:
    """A path field with its browse button beside it, for a form row."""
    browse = QPushButton(label, field.parentWidget())
    browse.clicked.connect(on_browse)
    row = QHBoxLayout()
    row.addWidget(field, 1)
    row.addWidget(browse)
    return row


def lay_out_form(dialog: QDialog, form: QFormLayout, buttons: QDialogButtonBox) -> None:
    """The form above the buttons; the buttons accept or reject the dialog."""
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addLayout(form)
    layout.addWidget(buttons)


def error_box(parent: QWidget | None, info: ErrorInfo) -> QMessageBox:
    """A non-blocking error dialog: the one-line message, the traceback under "Show Details"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(f"SegStudio — {info.title}")
    box.setText(info.message)
    if info.details:
        box.setDetailedText(info.details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setObjectName("error-dialog")
    box.open()
    return box


def ask(parent: QWidget | None, title: str, text: str) -> bool:
    """A Yes / No question (No is the default)."""
    answer = QMessageBox.question(
        parent, title, text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


ABOUT = """<h3>SegStudio {version}</h3>
<p>Fine-tune SegFormer semantic-segmentation models and see exactly where they are wrong.</p>
<p>Model device: {device}</p>
<p>Drop images or folders on the window to predict them; drop a checkpoint folder to load it.</p>"""


def about_text(device: str | None) -> str:
    """The About box: SegStudio's installed version and the device the loaded model runs on."""
    try:
        version = metadata.version("segstudio")
    except metadata.PackageNotFoundError:
        version = "(not installed)"
    return ABOUT.format(version=version, device=html.escape(device or "no model loaded"))


def shortcuts_text(actions: Iterable[QAction]) -> str:
    """A table of every action that has a shortcut, built from the actions so it can never miss one."""
    rows = []
    for action in actions:
        keys = " / ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
        if keys:
            name = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")
            rows.append(f"<tr><td>{html.escape(keys)}</td><td>&nbsp;&nbsp;{html.escape(name)}</td></tr>")
    rows.append("<tr><td>Mouse wheel / drag</td><td>&nbsp;&nbsp;zoom / pan (all panes together)</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def about(parent: QWidget | None, device: str | None = None) -> None:
    QMessageBox.about(parent, "About SegStudio", about_text(device))


def shortcuts(parent: QWidget | None, actions: Iterable[QAction]) -> None:
    QMessageBox.information(parent, "Keyboard shortcuts", shortcuts_text(actions))

"""Dialogs shared by the window: errors with details (never a silent failure), questions, about."""

from __future__ import annotations

from collections.abc import Callable

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

from segstudio.gui.workers import ErrorInfo


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


ABOUT = """<h3>SegStudio</h3>
<p>Fine-tune SegFormer semantic-segmentation models and see exactly where they are wrong.</p>
<p>Drop images or folders on the window to predict them; drop a checkpoint folder to load it.</p>"""

SHORTCUTS = """<table>
<tr><td>Right / Page Down</td><td>next image</td></tr>
<tr><td>Left / Page Up</td><td>previous image</td></tr>
<tr><td>Ctrl+0 / Ctrl+1</td><td>fit / actual size</td></tr>
<tr><td>Ctrl++ / Ctrl+-</td><td>zoom in / out (or the mouse wheel; drag to pan)</td></tr>
<tr><td>Ctrl+O / Ctrl+Shift+O</td><td>open dataset / open model</td></tr>
<tr><td>F5 / Esc</td><td>evaluate the split / cancel</td></tr>
<tr><td>Ctrl+E</td><td>export</td></tr>
</table>"""


def about(parent: QWidget | None) -> None:
    QMessageBox.about(parent, "About SegStudio", ABOUT)


def shortcuts(parent: QWidget | None) -> None:
    QMessageBox.information(parent, "Keyboard shortcuts", SHORTCUTS)

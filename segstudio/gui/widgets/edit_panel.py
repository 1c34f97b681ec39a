"""The Edit panel: edit mode, the tools, the brush size, the class picker, undo / redo and the live score."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QGridLayout, QLabel, QSpinBox, QToolButton, QVBoxLayout, QWidget

from segstudio.gui.widgets.class_picker import ClassPicker

MAX_BRUSH = 1024


class EditPanel(QWidget):
    """Widgets only; the window gives it its actions and the editing controller drives it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode_button = QToolButton(self)
        self.tools = QGridLayout()
        self.tools.setSpacing(2)
        self.size = QSpinBox(self)
        self.size.setObjectName("brush-size")
        self.size.setRange(1, MAX_BRUSH)
        self.size.setValue(15)
        self.size.setSuffix(" px")
        self.size.setToolTip("Brush diameter in image pixels ([ and ] change it)")
        self.picker = ClassPicker(self)
        self.history = QGridLayout()
        self.score = QLabel("", self)
        self.score.setObjectName("edit-score")
        self.score.setWordWrap(True)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.addWidget(self.mode_button)
        column.addLayout(self.tools)
        size_row = QGridLayout()
        size_row.addWidget(QLabel("Brush", self), 0, 0)
        size_row.addWidget(self.size, 0, 1)
        column.addLayout(size_row)
        column.addWidget(self.picker, 1)
        column.addLayout(self.history)
        column.addWidget(self.score)

    def use_actions(self, edit_mode: QAction, tools: dict[str, QAction], extra: list[QAction]) -> None:
        """Buttons for the window's actions (same state, same shortcuts, listed once in the menus)."""
        self.mode_button.setDefaultAction(edit_mode)
        for position, action in enumerate(tools.values()):
            button = QToolButton(self)
            button.setDefaultAction(action)
            button.setToolTip(f"{action.text().replace('&', '')} ({action.shortcut().toString()})")
            self.tools.addWidget(button, position // 2, position % 2)
        for position, action in enumerate(extra):
            button = QToolButton(self)
            button.setDefaultAction(action)
            self.history.addWidget(button, 0, position)

    def show_score(self, text: str) -> None:
        self.score.setText(text)

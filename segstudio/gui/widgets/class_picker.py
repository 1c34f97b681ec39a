"""The editor's class picker: type to search the label map's names, the last classes used first, and "ignore"."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from segstudio.gui.widgets.qimages import swatch_icon

VALUE_ROLE = Qt.ItemDataRole.UserRole
RECENT_MAX = 8
IGNORE_TEXT = "ignore (no label)"


class ClassPicker(QWidget):
    """Emits ``picked(value)``: a class id, or the ignore value."""

    picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label_map = None
        self.ignore_index = 255
        self.recent: list[int] = []  # most recent first
        self.current: int | None = None
        self.current_label = QLabel("No class picked", self)
        self.current_label.setObjectName("picked-class")
        self.search = QLineEdit(self)
        self.search.setObjectName("class-search")
        self.search.setPlaceholderText("Search classes…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._rebuild)
        self.search.returnPressed.connect(self._pick_first)
        self.list = QListWidget(self)
        self.list.setObjectName("class-list")
        self.list.setUniformItemSizes(True)
        self.list.itemClicked.connect(lambda item: self.pick(int(item.data(VALUE_ROLE))))
        self.list.itemActivated.connect(lambda item: self.pick(int(item.data(VALUE_ROLE))))
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.current_label)
        column.addWidget(self.search)
        column.addWidget(self.list, 1)

    def set_label_map(self, label_map, ignore_index: int) -> None:
        """The classes to offer; recent classes the new map does not have are forgotten."""
        self.label_map, self.ignore_index = label_map, int(ignore_index)
        count = label_map.num_labels if label_map is not None else 0
        self.recent = [v for v in self.recent if v < count]
        if self.current is not None and self.current != self.ignore_index and self.current >= count:
            self.current = None
        self.search.setPlaceholderText(f"Search {count} classes…")
        self._show_current()
        self._rebuild()

    def name(self, value: int) -> str:
        if value == self.ignore_index:
            return IGNORE_TEXT
        return str(self.label_map.name(value)).strip() if self.label_map is not None else str(value)

    def order(self) -> list[int]:
        """Values in list order: ignore, the recent classes (most recent first), then the others by id."""
        count = self.label_map.num_labels if self.label_map is not None else 0
        recent = [v for v in self.recent if v != self.ignore_index]
        return [self.ignore_index, *recent, *(v for v in range(count) if v not in recent)]

    def matches(self, text: str) -> list[int]:
        """The values whose name contains ``text`` (any case), in list order."""
        needle = text.strip().lower()
        return [v for v in self.order() if needle in self.name(v).lower()]

    def pick(self, value: int) -> None:
        """Make ``value`` the class the tools paint with, first among the recent ones."""
        value = int(value)
        self.current = value
        if value != self.ignore_index:
            self.recent = [value, *(v for v in self.recent if v != value)][:RECENT_MAX]
        self._show_current()
        self._rebuild()
        self.picked.emit(value)

    def _pick_first(self) -> None:
        found = self.matches(self.search.text())
        if found:
            self.pick(found[0])

    def _show_current(self) -> None:
        if self.current is None:
            self.current_label.setText("No class picked")
        else:
            self.current_label.setText(f"Paints: <b>{self.name(self.current)}</b>")

    def _icon_colour(self, value: int):
        if value == self.ignore_index or self.label_map is None or value >= len(self.label_map.palette):
            return (128, 128, 128)
        return self.label_map.palette[value]

    def _rebuild(self) -> None:
        self.list.clear()
        recent = set(self.recent)
        for value in self.matches(self.search.text()):
            text = self.name(value) + ("  (recent)" if value in recent else "")
            item = QListWidgetItem(swatch_icon(self._icon_colour(value)), text)
            item.setData(VALUE_ROLE, value)
            self.list.addItem(item)
            if value == self.current:
                item.setSelected(True)

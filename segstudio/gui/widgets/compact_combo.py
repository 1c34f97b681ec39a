"""A combo box whose closed box shows a short text per item while its list shows the full one.

Qt elides a closed combo box's text at the right ("validation (" for "validation (2,000)"); with a short text
per item the box stays narrow enough for a 1280 px screen and still reads whole. The full text stays in the
list and in the closed box's tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import QComboBox, QStyle, QStyleOptionComboBox, QStylePainter, QWidget

SHORT_TEXT_ROLE = Qt.ItemDataRole.UserRole + 40


class CompactComboBox(QComboBox):
    """Items added with ``add_item(text, data, short=...)`` show ``short`` when the box is closed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.currentIndexChanged.connect(self._update_tooltip)
        self._base_tooltip = ""

    def add_item(self, text: str, data: object = None, short: str | None = None) -> None:
        """Add an item; ``short`` (default: ``text``) is what the closed box shows."""
        self.addItem(text, data)
        self.setItemData(self.count() - 1, short or text, SHORT_TEXT_ROLE)
        self.updateGeometry()
        self._update_tooltip()

    def setCurrentIndex(self, index: int) -> None:  # noqa: N802 - Qt's name
        """Also with signals blocked (a list being refilled), the tooltip follows."""
        super().setCurrentIndex(index)
        self._update_tooltip()

    def setCurrentText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setCurrentText(text)
        self._update_tooltip()

    def shown_text(self) -> str:
        """The closed box's text: the current item's short text."""
        short = self.currentData(SHORT_TEXT_ROLE)
        return short if isinstance(short, str) and short else self.currentText()

    def set_base_tooltip(self, text: str) -> None:
        """The tooltip's first line; the current item's full text follows when it was shortened."""
        self._base_tooltip = text
        self._update_tooltip()

    def _update_tooltip(self, *_args: object) -> None:
        full, lines = self.currentText(), [self._base_tooltip] if self._base_tooltip else []
        if full and full != self.shown_text():
            lines.append(full)
        self.setToolTip("\n".join(lines))

    def showPopup(self) -> None:  # noqa: N802 - Qt's name
        """The list as wide as its longest full text, however narrow the closed box is."""
        view = self.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + view.verticalScrollBar().sizeHint().width() + 8)
        super().showPopup()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        """What QComboBox.paintEvent does, with the short text as the current text."""
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        option.currentText = self.shown_text()
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """Wide enough for the longest short text (the list pops up as wide as its longest full text)."""
        return self._hint(super().sizeHint())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return self._hint(super().minimumSizeHint())

    def _hint(self, base: QSize) -> QSize:
        metrics = self.fontMetrics()
        texts = [self.itemData(i, SHORT_TEXT_ROLE) or self.itemText(i) for i in range(self.count())]
        widest = max((metrics.horizontalAdvance(text) for text in texts), default=0)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        content = QSize(widest + 4, metrics.height())
        size = self.style().sizeFromContents(QStyle.ContentsType.CT_ComboBox, option, content, self)
        return QSize(size.width(), base.height())

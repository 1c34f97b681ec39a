"""A pane's colour overlay as a scene item whose pixels can be replaced a rectangle at a time.

The layer's colours live in a NumPy uint32 buffer that the item's QImage wraps (no copy), so an edit rewrites
only the codes of its dirty rectangle and repaints only that rectangle: a brush dab on a 4096x4096 mask costs a
few thousand pixels, not 16 million (a QPixmap would have to be rebuilt, or copied when painted into).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from segstudio.gui.widgets.layers import IndexedLayer
from segstudio.gui.widgets.qimages import colour_table


class LayerItem(QGraphicsItem):
    """An indexed colour layer drawn from its own pixel buffer; :meth:`patch` rewrites one rectangle."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # paint gets the exposed rect
        self._pixels = np.zeros((0, 0), np.uint32)
        self._table = np.zeros(256, np.uint32)
        self._image = QImage()

    def set_layer(self, layer: IndexedLayer) -> None:
        """Show a whole layer (its colour table is kept for later patches)."""
        self._table = colour_table(layer.colours)
        pixels = self._table[np.asarray(layer.codes, dtype=np.uint8)]
        if pixels.shape != self._pixels.shape:
            self.prepareGeometryChange()
        self._pixels = pixels  # the QImage below reads this buffer: it must live as long as the image
        height, width = pixels.shape
        self._image = QImage(pixels.data, width, height, 4 * width, QImage.Format.Format_ARGB32_Premultiplied)
        self.update()

    def patch(self, top: int, left: int, codes: np.ndarray) -> None:
        """Replace the codes of one rectangle (colours from the layer last set) and repaint only it."""
        height, width = codes.shape
        self._pixels[top:top + height, left:left + width] = self._table[codes]
        self.update(QRectF(left, top, width, height))

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        height, width = self._pixels.shape
        return QRectF(0, 0, width, height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image.isNull():
            return
        rect = option.exposedRect.toAlignedRect().intersected(QRect(0, 0, self._image.width(), self._image.height()))
        if not rect.isEmpty():
            painter.drawImage(rect, self._image, rect)

    def pixmap(self) -> QPixmap:
        """What the layer shows, as a pixmap (a copy)."""
        return QPixmap.fromImage(self._image)

    def codes_shape(self) -> tuple[int, int]:
        return self._pixels.shape

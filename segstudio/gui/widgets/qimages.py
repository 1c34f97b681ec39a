"""NumPy arrays to QImage / QPixmap (GUI thread only), with the array's memory copied into the QImage."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QIcon, QImage, QPixmap

from segstudio.gui.widgets.layers import IndexedLayer


def to_qimage(array: np.ndarray) -> QImage:
    """(H, W, 3) RGB or (H, W, 4) RGBA uint8 -> a QImage that owns its pixels (``.copy()``)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected (H, W, 3|4) uint8, got {array.shape}")
    height, width, channels = array.shape
    fmt = QImage.Format.Format_RGB888 if channels == 3 else QImage.Format.Format_RGBA8888
    image = QImage(array.data, width, height, channels * width, fmt)
    return image.copy()  # detach from the NumPy buffer, which may be freed


def to_pixmap(array: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(to_qimage(array))


def colour_table(colours) -> np.ndarray:
    """256 premultiplied ARGB32 values (as Format_ARGB32_Premultiplied stores them) for a layer's RGBA colours;
    codes past the colours are clear."""
    table = np.zeros(256, np.uint32)
    for index, (r, g, b, a) in enumerate(colours):
        table[index] = (a << 24) | ((r * a // 255) << 16) | ((g * a // 255) << 8) | (b * a // 255)
    return table


def indexed_pixmap(layer: IndexedLayer) -> QPixmap:
    """An indexed layer as a pixmap: one uint32 lookup per pixel into the layer's colour table.

    Not QImage.setColorTable: in PySide6 6.12 that call (like QImage.setColor and QPixmap.fill) drops a
    reference to Python's None each time, and a long session then aborts with "deallocating None".
    """
    pixels = colour_table(layer.colours)[np.asarray(layer.codes, dtype=np.uint8)]
    height, width = pixels.shape
    image = QImage(pixels.data, width, height, 4 * width, QImage.Format.Format_ARGB32_Premultiplied)
    return QPixmap.fromImage(image)  # converts now, while ``pixels`` is alive


def swatch_icon(rgb: tuple[int, int, int] | np.ndarray, size: int = 14) -> QIcon:
    """A square of one colour (built from an array: QPixmap.fill leaks references to None, see above)."""
    square = np.empty((size, size, 3), np.uint8)
    square[:] = np.asarray(rgb, dtype=np.uint8)[:3]
    return QIcon(to_pixmap(square))

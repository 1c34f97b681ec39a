"""NumPy arrays to QImage / QPixmap (GUI thread only), with the array's memory copied into the QImage."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap, qRgba

from segstudio.gui.layers import IndexedLayer


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


def indexed_pixmap(layer: IndexedLayer) -> QPixmap:
    """An indexed layer as a pixmap: Qt expands the colour table in C++ (no per-pixel NumPy work)."""
    codes = np.ascontiguousarray(layer.codes, dtype=np.uint8)
    height, width = codes.shape
    image = QImage(codes.data, width, height, width, QImage.Format.Format_Indexed8)
    table = list(layer.colours) + [(0, 0, 0, 0)] * (256 - len(layer.colours))
    image.setColorTable([qRgba(*colour) for colour in table])
    return QPixmap.fromImage(image)  # converts now, while ``codes`` is alive


def swatch_icon(rgb: tuple[int, int, int] | np.ndarray, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    r, g, b = (int(v) for v in rgb)
    pixmap.fill(QColor(r, g, b))
    return QIcon(pixmap)

"""NumPy arrays to QImage / QPixmap (GUI thread only), with the array's memory copied into the QImage."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap


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


def rgba_layer(colours: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(H, W, 4) RGBA: ``colours`` where ``visible`` is True, transparent elsewhere."""
    out = np.zeros((*visible.shape, 4), dtype=np.uint8)
    out[..., :3] = colours
    out[..., 3] = np.where(visible, 255, 0).astype(np.uint8)
    return out


def swatch_icon(rgb: tuple[int, int, int] | np.ndarray, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    r, g, b = (int(v) for v in rgb)
    pixmap.fill(QColor(r, g, b))
    return QIcon(pixmap)

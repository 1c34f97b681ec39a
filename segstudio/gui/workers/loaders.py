"""Short decoding jobs on a small thread pool: list thumbnails and the selected image with its mask.

Results come back as NumPy arrays through signals (queued to the GUI thread), tagged with the source token
and row, so a result for a source that is no longer shown is simply dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QPixmap

from segstudio.gui.widgets.qimages import to_pixmap

THUMB_SIZE = 56
THUMB_CACHE = 3000


class _Signals(QObject):
    thumbnail = Signal(str, int, object)
    image = Signal(str, int, object, object)
    failed = Signal(str, int, str)


class _Task(QRunnable):
    def __init__(self, fn, *args) -> None:
        super().__init__()
        self.fn, self.args = fn, args
        self.setAutoDelete(True)

    def run(self) -> None:
        self.fn(*self.args)


class AsyncLoader(QObject):
    """Decodes thumbnails and images off the GUI thread; thumbnails are cached as QPixmaps (LRU)."""

    thumbnail_ready = Signal(str, int)
    image_ready = Signal(str, int, object, object)
    image_failed = Signal(str, int, str)

    def __init__(self, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._signals = _Signals()
        self._signals.thumbnail.connect(self._on_thumbnail)
        self._signals.image.connect(self._on_image)
        self._signals.failed.connect(self._on_failed)
        self._thumbs: OrderedDict[tuple[str, int], QPixmap] = OrderedDict()
        self._pending: set[tuple[str, int]] = set()
        self._closed = False

    # --- thumbnails ---------------------------------------------------------------------------------------

    def thumbnail(self, source: Any, index: int) -> QPixmap | None:
        """The cached thumbnail, or None after queueing its decoding (``thumbnail_ready`` follows)."""
        key = (source.token, index)
        pixmap = self._thumbs.get(key)
        if pixmap is not None:
            self._thumbs.move_to_end(key)
            return pixmap
        if key not in self._pending and not self._closed:
            self._pending.add(key)
            self.pool.start(_Task(self._make_thumbnail, source, index))
        return None

    def _make_thumbnail(self, source: Any, index: int) -> None:
        try:
            array = source.thumbnail(index, THUMB_SIZE)
        except Exception:  # noqa: BLE001 - an unreadable file shows no thumbnail; selecting it says why
            array = np.full((THUMB_SIZE // 2, THUMB_SIZE // 2, 3), 90, np.uint8)
        self._signals.thumbnail.emit(source.token, index, array)

    def _on_thumbnail(self, token: str, index: int, array: np.ndarray) -> None:
        key = (token, index)
        self._pending.discard(key)
        self._thumbs[key] = to_pixmap(array)
        while len(self._thumbs) > THUMB_CACHE:
            self._thumbs.popitem(last=False)
        self.thumbnail_ready.emit(token, index)

    # --- full images --------------------------------------------------------------------------------------

    def load_image(self, source: Any, index: int) -> None:
        """Decode image and ground truth of a row; ``image_ready(token, row, rgb, gt)`` follows."""
        if not self._closed:
            self.pool.start(_Task(self._make_image, source, index))

    def _make_image(self, source: Any, index: int) -> None:
        try:
            rgb = np.asarray(source.image(index), dtype=np.uint8)
            gt = source.ground_truth(index, (rgb.shape[1], rgb.shape[0]))
        except Exception as exc:  # noqa: BLE001 - reported to the person in the status bar and viewer
            self._signals.failed.emit(source.token, index, str(exc) or exc.__class__.__name__)
            return
        self._signals.image.emit(source.token, index, rgb, gt)

    def _on_image(self, token: str, index: int, rgb: np.ndarray, gt: np.ndarray | None) -> None:
        self.image_ready.emit(token, index, rgb, gt)

    def _on_failed(self, token: str, index: int, message: str) -> None:
        self.image_failed.emit(token, index, message)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Drop queued work and wait for the running tasks."""
        self._closed = True
        self.pool.clear()
        return self.pool.waitForDone(timeout_ms)

    def wait_idle(self, timeout_ms: int = 10_000) -> bool:
        return self.pool.waitForDone(timeout_ms)

"""Remembered state (QSettings): recent datasets and models, window geometry and dock layout, a few choices.

Tests pass their own ``QSettings`` (an INI file in a temporary folder), so they never touch the user's.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

ORGANIZATION = "SegStudio"
APPLICATION = "SegStudio"
MAX_RECENT = 8
LAYOUT_VERSION = 1


class AppSettings:
    """A thin typed layer over QSettings."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)

    def recent(self, kind: str) -> list[str]:
        """Most recent first; ``kind`` is "datasets" or "models"."""
        raw = self.q.value(f"recent/{kind}", "[]")
        try:
            items = json.loads(raw) if isinstance(raw, str) else list(raw or [])
        except ValueError:
            items = []
        return [str(item) for item in items if str(item).strip()][:MAX_RECENT]

    def add_recent(self, kind: str, spec: str) -> list[str]:
        items = [spec, *[item for item in self.recent(kind) if item != spec]][:MAX_RECENT]
        self.q.setValue(f"recent/{kind}", json.dumps(items))
        return items

    def clear_recent(self) -> None:
        for kind in ("datasets", "models"):
            self.q.setValue(f"recent/{kind}", "[]")

    def save_window(self, window: QMainWindow) -> None:
        self.q.setValue("window/geometry", window.saveGeometry())
        self.q.setValue("window/state", window.saveState(LAYOUT_VERSION))
        self.q.sync()

    def restore_window(self, window: QMainWindow) -> bool:
        geometry, state = self.q.value("window/geometry"), self.q.value("window/state")
        restored = False
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            restored = window.restoreGeometry(geometry)
        if isinstance(state, QByteArray) and not state.isEmpty():
            restored = window.restoreState(state, LAYOUT_VERSION) and restored
        return restored

    def get(self, key: str, default: Any = None, kind: type | None = None) -> Any:
        value = self.q.value(key, default)
        if kind is None or value is None:
            return value
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        self.q.setValue(key, value)

    def sync(self) -> None:
        self.q.sync()

"""Whether a panel is really on screen: a tabbed dock's hidden page stays "visible" (moved off screen)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, SignalInstance
from PySide6.QtWidgets import QDockWidget, QWidget


def on_screen(widget: QWidget) -> bool:
    """Visible and not behind another tab of its dock."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def follow_dock(widget: QWidget, event: QEvent, signal: SignalInstance) -> None:
    """From a panel's ``event``: once it is put in a dock, re-emit the dock's ``visibilityChanged`` (shown,
    hidden, floated, or its tab chosen or left) as ``signal``."""
    if event.type() == QEvent.Type.ParentChange and isinstance(widget.parentWidget(), QDockWidget):
        widget.parentWidget().visibilityChanged.connect(signal)

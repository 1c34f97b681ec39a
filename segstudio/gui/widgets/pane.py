"""One pane of the viewer: a QGraphicsView with the image below and a colour overlay above.

It reports wheel zoom, the pixel under the mouse and clicks (a press and release without a drag). In edit mode
the left button edits instead of dragging: presses, moves and releases are reported in scene coordinates, and a
circle of the brush's size (in image pixels, so it grows with the zoom) follows the mouse.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from segstudio.gui.widgets.layer_item import LayerItem

ZOOM_STEP = 1.25
CLICK_SLOP = 4  # pixels the mouse may move between press and release for a click (not a drag)


class Pane(QGraphicsView):
    """One view: image below, overlay above; reports wheel zoom and the pixel under the mouse."""

    hovered = Signal(int, int)
    clicked = Signal(int, int)
    wheel_zoom = Signal(float, QPoint)
    scrolled = Signal()
    resized = Signal()
    edit_event = Signal(str, float, float)  # "press" / "move" / "release" / "double", scene x, y (edit mode only)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.base = QGraphicsPixmapItem()
        self.base.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.overlay = LayerItem()
        self.overlay.setZValue(1)
        for item in (self.base, self.overlay):
            self.scene().addItem(item)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor(40, 40, 40))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setMouseTracking(True)
        self.setMinimumSize(120, 120)
        # QGraphicsView takes drops for its scene by default and refuses files: dropping on a pane would do
        # nothing. Without it, a file dragged over a pane goes to the window, which predicts or loads it.
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.horizontalScrollBar().valueChanged.connect(self.scrolled)
        self.verticalScrollBar().valueChanged.connect(self.scrolled)
        self._pressed_at: QPoint | None = None
        self.markers = [_marker(QColor(0, 0, 0), 4), _marker(QColor(255, 255, 255), 2)]
        for item in self.markers:
            self.scene().addItem(item)
        self.editing = False
        self._edit_button_down = False
        self.brush_outline = QGraphicsEllipseItem()
        outline_pen = QPen(QColor(255, 255, 255), 1.5)
        outline_pen.setCosmetic(True)
        self.brush_outline.setPen(outline_pen)
        self.brush_outline.setZValue(4)
        self.brush_outline.setVisible(False)
        self.scene().addItem(self.brush_outline)
        self.brush_diameter = 0.0  # 0: no outline (tools without a brush)

    def set_editing(self, on: bool) -> None:
        """Edit mode: the left button edits (reported through ``edit_event``) instead of dragging the view."""
        self.editing = on
        self._edit_button_down = False
        self.setDragMode(QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.OpenHandCursor)
        if not on:
            self.brush_outline.setVisible(False)

    def set_brush(self, diameter: float) -> None:
        """The brush circle's diameter in image pixels (0 hides it)."""
        self.brush_diameter = float(diameter)
        if diameter <= 0:
            self.brush_outline.setVisible(False)

    def _move_outline(self, point: QPointF) -> None:
        radius = self.brush_diameter / 2
        self.brush_outline.setRect(QRectF(point.x() - radius, point.y() - radius, 2 * radius, 2 * radius))
        self.brush_outline.setVisible(self.editing and radius > 0)

    def set_marker(self, x: int | None, y: int | None) -> None:
        """A crosshair on pixel (x, y), the same size at every zoom (None hides it)."""
        for item in self.markers:
            item.setVisible(x is not None)
            if x is not None:
                item.setPos(QPointF(x + 0.5, y + 0.5))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.resized.emit()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.wheel_zoom.emit(ZOOM_STEP**steps, event.position().toPoint())
        event.accept()

    def _scene_point(self, event: QMouseEvent) -> QPointF:
        return self.mapToScene(event.position().toPoint()) if not self.editing else \
            self.viewportTransform().inverted()[0].map(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        super().mouseMoveEvent(event)
        point = self._scene_point(event)
        if not self._edit_button_down:  # while a stroke paints, the hover text waits (it costs a relayout)
            self.hovered.emit(int(np.floor(point.x())), int(np.floor(point.y())))
        if self.editing:
            self._move_outline(point)
            if self._edit_button_down:
                self.edit_event.emit("move", point.x(), point.y())

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.editing and event.button() == Qt.MouseButton.LeftButton:
            point = self._scene_point(event)
            self.edit_event.emit("double", point.x(), point.y())
            return
        super().mouseDoubleClickEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.editing and event.button() == Qt.MouseButton.LeftButton:
            self._edit_button_down = True
            point = self._scene_point(event)
            self.edit_event.emit("press", point.x(), point.y())
            return
        super().mousePressEvent(event)
        left = event.button() == Qt.MouseButton.LeftButton
        self._pressed_at = event.position().toPoint() if left else None

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.editing and event.button() == Qt.MouseButton.LeftButton:
            if self._edit_button_down:
                self._edit_button_down = False
                point = self._scene_point(event)
                self.edit_event.emit("release", point.x(), point.y())
            return
        super().mouseReleaseEvent(event)
        start, self._pressed_at = self._pressed_at, None
        position = event.position().toPoint()
        if start is not None and (position - start).manhattanLength() <= CLICK_SLOP:
            point = self.mapToScene(position)
            self.clicked.emit(int(np.floor(point.x())), int(np.floor(point.y())))

    def leaveEvent(self, event) -> None:  # noqa: N802
        super().leaveEvent(event)
        self.brush_outline.setVisible(False)
        self.hovered.emit(-1, -1)


def _marker(colour: QColor, width: int) -> QGraphicsPathItem:
    path = QPainterPath()
    path.addEllipse(QPointF(0, 0), 7, 7)
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        path.moveTo(3 * dx, 3 * dy)
        path.lineTo(11 * dx, 11 * dy)
    item = QGraphicsPathItem(path)
    pen = QPen(colour, width)
    pen.setCosmetic(True)
    item.setPen(pen)
    item.setZValue(3 if width < 4 else 2)
    item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
    item.setVisible(False)
    return item

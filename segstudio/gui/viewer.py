"""Three synchronised panes: image + ground truth | image + prediction | error map.

Each pane is a QGraphicsView over its own scene (image pixmap below, colour overlay above); they share one
transform and one scroll position, so wheel zoom, drag, fit and 1:1 act on all three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.labels import IGNORE_INDEX
from segstudio.core.render import colorize, error_map
from segstudio.gui.qimages import rgba_layer, to_pixmap

ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 0.02, 64.0
LAYERS = ("image", "gt", "pred", "error")
ERROR_MIN_OPACITY = 0.6  # the error map stays readable with the class overlays faded out


@dataclass
class ViewContent:
    """What the panes show: the image and its masks as model ids, plus how to colour and name them."""

    image: np.ndarray  # (H, W, 3) uint8
    ground_truth: np.ndarray | None
    prediction: np.ndarray | None
    palette: np.ndarray
    names: object  # a LabelMap (``name(id)``)
    ignore_index: int = IGNORE_INDEX


class Pane(QGraphicsView):
    """One view: image below, overlay above; reports wheel zoom and the pixel under the mouse."""

    hovered = Signal(int, int)
    wheel_zoom = Signal(float, QPoint)
    scrolled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.base = QGraphicsPixmapItem()
        self.overlay = QGraphicsPixmapItem()
        self.overlay.setZValue(1)
        for item in (self.base, self.overlay):
            item.setTransformationMode(Qt.TransformationMode.FastTransformation)
            self.scene().addItem(item)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor(40, 40, 40))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setMouseTracking(True)
        self.setMinimumSize(120, 120)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.horizontalScrollBar().valueChanged.connect(self.scrolled)
        self.verticalScrollBar().valueChanged.connect(self.scrolled)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.wheel_zoom.emit(ZOOM_STEP**steps, event.position().toPoint())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        super().mouseMoveEvent(event)
        point = self.mapToScene(event.position().toPoint())
        self.hovered.emit(int(np.floor(point.x())), int(np.floor(point.y())))

    def leaveEvent(self, event) -> None:  # noqa: N802
        super().leaveEvent(event)
        self.hovered.emit(-1, -1)


class ImageViewer(QWidget):
    """The three panes with their titles; the main window feeds it :class:`ViewContent`."""

    hover_text = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.content: ViewContent | None = None
        self.highlight: int | None = None
        self.highlight_pred: int | None = None  # a confusion pair: ground truth ``highlight`` seen as this
        self.opacity = 0.5
        self.visible_layers = dict.fromkeys(LAYERS, True)
        self._syncing = False
        self.fit_mode = True  # refit on resize until the person zooms
        self.panes: dict[str, Pane] = {}
        self.titles: dict[str, QLabel] = {}
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for key, title in (("gt", "Ground truth"), ("pred", "Prediction"), ("error", "Errors")):
            column = QVBoxLayout()
            label = QLabel(title)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # panes stay equal
            pane = Pane(self)
            pane.setFrameShape(QFrame.Shape.NoFrame)
            pane.setObjectName(f"pane-{key}")
            pane.wheel_zoom.connect(self._on_wheel)
            pane.hovered.connect(self._on_hover)
            pane.scrolled.connect(self._on_scrolled)
            column.addWidget(label)
            column.addWidget(pane, 1)
            row.addLayout(column, 1)
            self.panes[key], self.titles[key] = pane, label

    # --- content -----------------------------------------------------------------------------------------

    def set_content(self, content: ViewContent | None, keep_view: bool = False) -> None:
        """Show an image and its masks; ``keep_view`` keeps zoom and position (same-size images)."""
        same_size = (
            keep_view and self.content is not None and content is not None
            and self.content.image.shape == content.image.shape
        )
        self.content = content
        if content is None:
            for pane in self.panes.values():
                pane.base.setPixmap(to_pixmap(np.zeros((1, 1, 3), np.uint8)))
                pane.overlay.setVisible(False)
            return
        base = to_pixmap(content.image)
        height, width = content.image.shape[:2]
        for pane in self.panes.values():
            pane.base.setPixmap(base)
            pane.scene().setSceneRect(QRectF(0, 0, width, height))
        self._render_overlays()
        if not same_size or self.fit_mode:
            self.fit()

    def set_highlight(self, class_id: int | None, predicted: int | None = None) -> None:
        """Show only ``class_id`` in every pane (None: all classes). With ``predicted``, a confusion pair:
        ground truth ``class_id``, prediction ``predicted``, and in the error pane the pixels where one
        was taken for the other."""
        self.highlight = class_id
        self.highlight_pred = predicted if class_id is not None else None
        self._render_overlays()

    def set_opacity(self, value: float) -> None:
        self.opacity = float(np.clip(value, 0.0, 1.0))
        for key in ("gt", "pred"):
            self.panes[key].overlay.setOpacity(self.opacity)
        self.panes["error"].overlay.setOpacity(max(self.opacity, ERROR_MIN_OPACITY))

    def set_layer_visible(self, layer: str, visible: bool) -> None:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        self.visible_layers[layer] = visible
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        has = self._has_layer()
        for pane in self.panes.values():
            pane.base.setVisible(self.visible_layers["image"])
        for key in ("gt", "pred", "error"):
            self.panes[key].overlay.setVisible(self.visible_layers[key] and has[key])

    def _has_layer(self) -> dict[str, bool]:
        c = self.content
        gt = c is not None and c.ground_truth is not None
        pred = c is not None and c.prediction is not None
        return {"gt": gt, "pred": pred, "error": gt and pred}

    def _render_overlays(self) -> None:
        content = self.content
        if content is None:
            return
        has = self._has_layer()
        titles = {"gt": "Ground truth", "pred": "Prediction", "error": "Errors (red wrong, grey ignored)"}
        if content.ground_truth is not None:
            self.panes["gt"].overlay.setPixmap(to_pixmap(self._class_layer(content.ground_truth, self.highlight)))
        else:
            titles["gt"] = "Ground truth (none)"
        if content.prediction is not None:
            chosen = self.highlight_pred if self.highlight_pred is not None else self.highlight
            self.panes["pred"].overlay.setPixmap(to_pixmap(self._class_layer(content.prediction, chosen)))
        else:
            titles["pred"] = "Prediction (pending)"
        if has["error"]:
            self.panes["error"].overlay.setPixmap(to_pixmap(self._error_layer()))
        else:
            titles["error"] = "Errors (need ground truth)" if content.ground_truth is None else "Errors (pending)"
        if self.highlight is not None:
            name = str(content.names.name(self.highlight)).strip()
            other = name if self.highlight_pred is None else str(content.names.name(self.highlight_pred)).strip()
            pair = name if self.highlight_pred is None else f"{name} → {other}"
            titles = {"gt": f"Ground truth: only {name}", "pred": f"Prediction: only {other}",
                      "error": f"Errors: only {pair}"}
        for key, text in titles.items():
            self.titles[key].setText(text)
        self.set_opacity(self.opacity)
        self._apply_visibility()

    def _class_layer(self, ids: np.ndarray, only: int | None) -> np.ndarray:
        c = self.content
        colours = colorize(ids, c.palette, c.ignore_index)
        visible = ids != c.ignore_index if only is None else ids == only
        return rgba_layer(colours, visible)

    def _error_layer(self) -> np.ndarray:
        """The core's error map (wrong red, correct dark, ignored grey); with a highlight, only that class."""
        c = self.content
        gt, pred = c.ground_truth, c.prediction
        colours = error_map(pred, gt, c.ignore_index)
        visible = np.ones(gt.shape, dtype=bool)
        if self.highlight_pred is not None:
            visible = (gt == self.highlight) & (pred == self.highlight_pred)
        elif self.highlight is not None:
            visible = (gt == self.highlight) | (pred == self.highlight)
        return rgba_layer(colours, visible)

    # --- zoom and pan ----------------------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        return float(self.panes["gt"].transform().m11())

    def fit(self) -> None:
        """Fit the whole image in the first pane, and copy that view to the others."""
        master = self.panes["gt"]
        rect = master.scene().sceneRect()
        if rect.isEmpty():
            return
        master.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self.fit_mode = True
        self._sync_from(master)

    def actual_size(self) -> None:
        """1:1, one image pixel per screen pixel."""
        master = self.panes["gt"]
        master.resetTransform()
        self.fit_mode = False
        self._sync_from(master)

    def zoom_by(self, factor: float) -> None:
        master = self.panes["gt"]
        self._zoom(master, factor, None)

    def _on_wheel(self, factor: float, _pos: QPoint) -> None:
        self._zoom(self.sender(), factor, _pos)

    def _zoom(self, pane: Pane, factor: float, _pos: QPoint | None) -> None:
        current = pane.transform().m11()
        factor = float(np.clip(current * factor, MIN_SCALE, MAX_SCALE)) / current
        anchor = pane.transformationAnchor()
        if _pos is None:
            pane.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        pane.scale(factor, factor)
        pane.setTransformationAnchor(anchor)
        self.fit_mode = False
        self._sync_from(pane)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.fit_mode and self.content is not None:
            self.fit()

    def _on_scrolled(self) -> None:
        if not self._syncing:
            self._sync_from(self.sender())

    def _sync_from(self, master: Pane) -> None:
        """Give every pane the master's scale and centre (panes may differ in size by a pixel or two)."""
        if self._syncing:
            return
        self._syncing = True
        try:
            center = master.mapToScene(master.viewport().rect().center())
            for pane in self.panes.values():
                if pane is not master:
                    pane.setTransform(master.transform())
                    pane.centerOn(center)
        finally:
            self._syncing = False

    def view_center(self, key: str = "gt") -> tuple[float, float]:
        """The scene point at the centre of a pane (for tests and for keeping the view)."""
        pane = self.panes[key]
        point = pane.mapToScene(pane.viewport().rect().center())
        return point.x(), point.y()

    # --- hover ---------------------------------------------------------------------------------------------

    def describe(self, x: int, y: int) -> str:
        """'x 12, y 40 — ground truth: sky — predicted: tree' for the pixel, '' outside the image."""
        c = self.content
        if c is None or not (0 <= y < c.image.shape[0] and 0 <= x < c.image.shape[1]):
            return ""
        parts = [f"x {x}, y {y}"]
        for label, ids in (("ground truth", c.ground_truth), ("predicted", c.prediction)):
            if ids is not None:
                parts.append(f"{label}: {str(c.names.name(int(ids[y, x]))).strip()}")
        if c.ground_truth is not None and c.prediction is not None:
            gt, pred = int(c.ground_truth[y, x]), int(c.prediction[y, x])
            if gt != c.ignore_index:
                parts.append("correct" if gt == pred else "wrong")
        return " — ".join(parts)

    def _on_hover(self, x: int, y: int) -> None:
        self.hover_text.emit(self.describe(x, y))

"""Synchronised panes: image + ground truth | image + prediction | an analysis layer | the image alone.

Each pane is a QGraphicsView over its own scene (image pixmap below, colour overlay above); they share one
transform and one scroll position, so wheel zoom, drag, fit and 1:1 act on all of them. The third pane shows the
error map, or (picked above it) one class's TP/FP/FN, the pixels checkpoint B fixed or broke, low confidence, or
the pixels whose label the model doubts (suspected label errors).
Layouts: side by side (three panes in a row), a 2x2 grid (with the plain image), one large pane with a switcher,
and Auto, which picks whichever of the first two shows the image larger, and one pane when there is no ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGraphicsView,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.labels import IGNORE_INDEX
from segstudio.gui.widgets.compact_combo import CompactComboBox
from segstudio.gui.widgets.layers import (
    IndexedLayer,
    class_layer,
    error_layer,
    flips_layer,
    low_confidence_layer,
    suspects_layer,
    tpfpfn_layer,
)
from segstudio.gui.widgets.pane import Pane
from segstudio.gui.widgets.qimages import to_pixmap

MIN_SCALE, MAX_SCALE = 0.02, 64.0
LAYERS = ("image", "gt", "pred", "error")
ERROR_MIN_OPACITY = 0.6
SPARSE_LAYER_IMAGE_OPACITY = 0.35  # the error map stays readable with the class overlays faded out
TITLE_HEIGHT = 20  # a pane title's height, for Auto's arithmetic
ANALYSES = {"errors": "Errors", "tpfpfn": "TP / FP / FN", "flips": "Flips A→B", "confidence": "Low confidence",
            "suspects": "Suspected label errors"}
SHORT_ANALYSES = {"tpfpfn": "TP/FP/FN", "confidence": "Confidence", "suspects": "Label errors"}  # closed box
LAYOUTS = {"auto": "Auto", "side": "Side by side", "grid": "2 × 2", "single": "One pane"}
PANE_TITLES = {"gt": "Ground truth", "pred": "Prediction", "error": "Third pane", "image": "Image"}
SINGLE_PANES = ("gt", "pred", "error", "image")  # the switcher's tabs, keys 1-4
GRID_CELLS = {"gt": (0, 0), "pred": (0, 1), "error": (1, 0), "image": (1, 1)}



class PaneTitle(QLabel):
    """A pane's title, cut with "..." at the right when the pane is narrower than the text (centred text would
    lose both ends); ``text()`` stays whole."""

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.width())
        painter.drawText(self.rect(), int(self.alignment().value), shown)

@dataclass
class ViewContent:
    """What the panes show: the image and its masks as model ids, plus how to colour and name them."""

    image: np.ndarray  # (H, W, 3) uint8
    ground_truth: np.ndarray | None
    prediction: np.ndarray | None
    palette: np.ndarray
    names: object  # a LabelMap (``name(id)``)
    ignore_index: int = IGNORE_INDEX
    index: int | None = None  # the image's row in its source, when it has one


class ImageViewer(QWidget):
    """The three panes with their titles; the main window feeds it :class:`ViewContent`."""

    hover_text = Signal(str)
    pixel_hovered = Signal(int, int)  # (-1, -1) when the mouse leaves
    pixel_clicked = Signal(int, int)
    content_changed = Signal()  # after set_content: flips and confidence of a new image are cleared
    analysis_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.content: ViewContent | None = None
        self.highlight: int | None = None
        self.highlight_pred: int | None = None  # a confusion pair: ground truth ``highlight`` seen as this
        self.analysis = "errors"
        self.flips: np.ndarray | None = None  # 0 unchanged, 1 fixed by B, 2 broken by B
        self.margin: np.ndarray | None = None  # top-1 minus top-2 probability per pixel
        self.suspects: np.ndarray | None = None  # bool: pixels whose label the model doubts
        self.marker: tuple[int, int] | None = None
        self.opacity = 0.5
        self.visible_layers = dict.fromkeys(LAYERS, True)
        self._syncing = False
        self._analysis_shown = False  # whether the third pane has a layer for the content shown
        self.fit_mode = True  # refit on resize until the person zooms
        self.panes: dict[str, Pane] = {}
        self.titles: dict[str, QLabel] = {}
        self.cells: dict[str, QWidget] = {}
        self.layout_mode = "auto"
        self.single_pane = "pred"
        self.arrangement = "side"  # what "auto" chose, or the mode itself
        self._placement: tuple = ()
        self._build_analysis_controls()
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        self.pane_switch = QTabBar(self)
        self.pane_switch.setObjectName("pane-switch")
        self.pane_switch.setExpanding(False)
        self.pane_switch.setDocumentMode(True)
        for key in SINGLE_PANES:
            self.pane_switch.addTab(ANALYSES[self.analysis] if key == "error" else PANE_TITLES[key])
            self.pane_switch.setTabToolTip(self.pane_switch.count() - 1, f"Show {PANE_TITLES[key].lower()} "
                                           f"(key {self.pane_switch.count()})")
        self.pane_switch.currentChanged.connect(lambda i: self.show_single(SINGLE_PANES[i]))
        column.addWidget(self.pane_switch)
        self.notice = QLabel(self)
        self.notice.setObjectName("viewer-notice")
        self.notice.setWordWrap(True)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notice.setStyleSheet("QLabel { background: #fff4e5; color: #5a3b00; padding: 10px; "
                                  "border: 1px solid #e0b070; font-size: 11pt; }")
        self.notice.setVisible(False)
        column.addWidget(self.notice)
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(4)
        column.addLayout(self._grid, 1)
        for key, title in PANE_TITLES.items():
            cell = QWidget(self)
            cell_column = QVBoxLayout(cell)
            cell_column.setContentsMargins(0, 0, 0, 0)
            cell_column.setSpacing(2)
            label = PaneTitle(title, cell)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # panes stay equal
            pane = Pane(cell)
            pane.setFrameShape(QFrame.Shape.NoFrame)
            pane.setObjectName(f"pane-{key}")
            pane.wheel_zoom.connect(self._on_wheel)
            pane.hovered.connect(self._on_hover)
            pane.scrolled.connect(self._on_scrolled)
            pane.clicked.connect(self._on_click)
            pane.resized.connect(self._on_pane_resized)
            cell_column.addWidget(label)
            cell_column.addWidget(pane, 1)
            self.panes[key], self.titles[key], self.cells[key] = pane, label, cell
        self.panes["image"].overlay.setVisible(False)
        self._arrange()

    def _build_analysis_controls(self) -> None:
        """``analysis_controls``: what the third pane shows, and the low-confidence threshold. The window puts
        them in its toolbar (they have no parent until then)."""
        self.analysis_controls = QWidget()
        row = QHBoxLayout(self.analysis_controls)
        row.setContentsMargins(0, 0, 0, 0)
        self.analysis_box = CompactComboBox(self.analysis_controls)
        self.analysis_box.setObjectName("analysis")
        for key, text in ANALYSES.items():
            self.analysis_box.add_item(text, key, short=SHORT_ANALYSES.get(key))
        self.analysis_box.set_base_tooltip("What the third pane shows")
        self.analysis_box.currentIndexChanged.connect(lambda _i: self.set_analysis(self.analysis_box.currentData()))
        self.threshold_box = QDoubleSpinBox(self.analysis_controls)
        self.threshold_box.setObjectName("confidence-threshold")
        self.threshold_box.setRange(0.0, 1.0)
        self.threshold_box.setSingleStep(0.05)
        self.threshold_box.setDecimals(2)
        self.threshold_box.setValue(0.2)
        self.threshold_box.setPrefix("margin < ")
        self.threshold_box.setToolTip("Low confidence: top-1 minus top-2 class probability below this")
        self.threshold_box.setVisible(False)
        self.threshold_box.valueChanged.connect(lambda _v: self._render_overlays())
        self.layout_box = QComboBox(self.analysis_controls)
        self.layout_box.setObjectName("layout")
        for key, text in LAYOUTS.items():
            self.layout_box.addItem(text, key)
        self.layout_box.setToolTip("How the panes share the space: Auto picks side by side or a 2x2 grid, "
                                   "whichever shows the image larger, and one pane for images without ground truth")
        self.layout_box.currentIndexChanged.connect(lambda _i: self.set_layout(self.layout_box.currentData()))
        # compact: the toolbar must fit beside the docks at 1280 px
        self.layout_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layout_box.setMinimumContentsLength(7)
        row.addWidget(QLabel("Layout", self.analysis_controls))
        row.addWidget(self.layout_box)
        row.addSpacing(8)
        row.addWidget(QLabel("Third pane", self.analysis_controls))
        row.addWidget(self.analysis_box)
        row.addWidget(self.threshold_box)

    # --- layout ------------------------------------------------------------------------------------------

    def set_layout(self, mode: str) -> None:
        """One of ``LAYOUTS``: "auto", "side", "grid" or "single"."""
        if mode not in LAYOUTS:
            raise ValueError(f"unknown layout {mode!r}")
        self.layout_mode = mode
        self.layout_box.setCurrentIndex(list(LAYOUTS).index(mode))
        self._arrange()

    def show_single(self, key: str) -> None:
        """The pane that the one-pane layout shows (the switcher's tabs; keys 1-4 in the window)."""
        if key not in SINGLE_PANES:
            raise ValueError(f"unknown pane {key!r}")
        self.single_pane = key
        self.pane_switch.setCurrentIndex(SINGLE_PANES.index(key))
        if self.arrangement == "single":
            self._arrange()

    def visible_panes(self) -> list[str]:
        """The panes the current arrangement shows, in reading order."""
        if self.arrangement == "single":
            return [self.single_pane]
        return ["gt", "pred", "error", "image"] if self.arrangement == "grid" else ["gt", "pred", "error"]

    def _choose_arrangement(self) -> str:
        """Auto: one pane without ground truth; else the layout whose panes show the image at the larger scale."""
        if self.layout_mode != "auto":
            return self.layout_mode
        c = self.content
        if c is None:
            return "side"
        if c.ground_truth is None:
            return "single"
        height, width = c.image.shape[:2]
        room_w, room_h = max(self.width(), 1), max(self.height() - 2 * TITLE_HEIGHT, 1)
        side = min(room_w / 3 / width, room_h / height)
        grid = min(room_w / 2 / width, room_h / 2 / height)
        return "grid" if grid > side * 1.05 else "side"  # ties keep the familiar row

    def _arrange(self) -> None:
        arrangement = self._choose_arrangement()
        if arrangement == "single" and self.layout_mode == "auto" and self.content is not None \
                and self.content.ground_truth is None and self.single_pane in ("gt", "error"):
            self.single_pane = "pred"  # nothing to show in the others
            self.pane_switch.setCurrentIndex(SINGLE_PANES.index("pred"))
        changed = arrangement != self.arrangement
        self.arrangement = arrangement
        shown = self.visible_panes()
        placement = (arrangement, tuple(shown))
        if placement != self._placement:  # re-placing on every resize would relayout for nothing
            self._placement = placement
            for key, cell in self.cells.items():
                self._grid.removeWidget(cell)
                cell.setVisible(key in shown)
            columns, rows = (2, 2) if arrangement == "grid" else (len(shown), 1)
            for position, key in enumerate(shown):
                row, column = GRID_CELLS[key] if arrangement == "grid" else (0, position)
                self._grid.addWidget(self.cells[key], row, column)
            for index in range(4):
                self._grid.setColumnStretch(index, 1 if index < columns else 0)
                self._grid.setRowStretch(index, 1 if index < rows else 0)
            self.pane_switch.setVisible(arrangement == "single")
        if changed and self.content is not None:
            if self.fit_mode:
                self.fit()
            else:
                self._sync_from(self._master())

    def _master(self) -> Pane:
        """The pane whose transform the others copy: the first one shown."""
        return self.panes[self.visible_panes()[0]]

    # --- content -----------------------------------------------------------------------------------------

    def set_notice(self, text: str) -> None:
        """A message in the viewer itself (why nothing is shown, what to do); "" hides it."""
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def set_content(self, content: ViewContent | None, keep_view: bool = False) -> None:
        """Show an image and its masks; ``keep_view`` keeps zoom and position (same-size images)."""
        if content is not None:
            self.set_notice("")
        same_size = (
            keep_view and self.content is not None and content is not None
            and self.content.image.shape == content.image.shape
        )
        previous, self.content = self.content, content
        if content is None or previous is None or content.image is not previous.image:
            self.flips = self.margin = self.suspects = None  # they belong to the image shown (controllers set them again)
        if content is None:
            self._analysis_shown = False
            for pane in self.panes.values():
                pane.base.setPixmap(to_pixmap(np.zeros((1, 1, 3), np.uint8)))
                pane.overlay.setVisible(False)
            self.content_changed.emit()
            return
        base = to_pixmap(content.image)
        height, width = content.image.shape[:2]
        for pane in self.panes.values():
            pane.base.setPixmap(base)
            pane.scene().setSceneRect(QRectF(0, 0, width, height))
        self._render_overlays()
        self._arrange()
        if not same_size or self.fit_mode:
            self.fit()
        self.content_changed.emit()

    def set_analysis(self, mode: str) -> None:
        """What the third pane shows: one of ``ANALYSES`` ("errors", "tpfpfn", "flips", "confidence")."""
        if mode not in ANALYSES:
            raise ValueError(f"unknown analysis {mode!r}")
        changed = mode != self.analysis
        self.analysis = mode
        self.analysis_box.setCurrentIndex(list(ANALYSES).index(mode))
        self.threshold_box.setVisible(mode == "confidence")
        self.pane_switch.setTabText(SINGLE_PANES.index("error"), ANALYSES[mode])
        self._render_overlays()
        self.set_opacity(self.opacity)  # the third pane's image is dimmed under sparse layers
        if changed:
            self.analysis_changed.emit(mode)

    def set_flips(self, flips: np.ndarray | None) -> None:
        """The A/B flip map of the image shown (None: no comparison)."""
        self.flips = flips
        self._render_overlays()

    def set_margin(self, margin: np.ndarray | None) -> None:
        """Top-1 minus top-2 probability per pixel of the image shown (None: not computed)."""
        self.margin = margin
        self._render_overlays()

    def set_suspects(self, suspects: np.ndarray | None) -> None:
        """The suspected-label-error map of the image shown (None: not computed)."""
        self.suspects = suspects
        self._render_overlays()

    def set_confidence_threshold(self, value: float) -> None:
        self.threshold_box.setValue(value)

    def set_marker(self, x: int | None, y: int | None = None) -> None:
        """Mark pixel (x, y) in every pane (the inspector's pinned pixel); None removes the mark."""
        self.marker = None if x is None else (x, y)
        for pane in self.panes.values():
            pane.set_marker(x, y)

    def pair_mask(self) -> np.ndarray | None:
        """Pixels of the highlighted confusion pair (ground truth ``highlight`` predicted ``highlight_pred``)."""
        c = self.content
        if c is None or self.highlight_pred is None or c.ground_truth is None or c.prediction is None:
            return None
        return (c.ground_truth == self.highlight) & (c.prediction == self.highlight_pred)

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
        # Layers that colour only some pixels (flips, TP/FP/FN, low confidence) sit on a dimmed image, so a red
        # "broken" pixel cannot vanish on a red object; the error map covers every pixel itself.
        self.panes["error"].base.setOpacity(1.0 if self.analysis == "errors" else SPARSE_LAYER_IMAGE_OPACITY)

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
        return {"gt": gt, "pred": pred, "error": self._analysis_shown}

    def _fits(self, array: np.ndarray | None) -> bool:
        return array is not None and self.content is not None and array.shape == self.content.image.shape[:2]

    def _analysis_layer(self) -> IndexedLayer | None:
        """The third pane's RGBA layer, or None when what it needs is missing."""
        c = self.content
        both = c is not None and c.ground_truth is not None and c.prediction is not None
        if self.analysis == "errors":
            return self._error_layer() if both else None
        if self.analysis == "tpfpfn":
            ok = both and self.highlight is not None
            return tpfpfn_layer(c.ground_truth, c.prediction, self.highlight, c.ignore_index) if ok else None
        if self.analysis == "flips":
            return flips_layer(self.flips) if self._fits(self.flips) else None
        if self.analysis == "suspects":
            return suspects_layer(self.suspects) if self._fits(self.suspects) else None
        threshold = self.threshold_box.value()
        return low_confidence_layer(self.margin, threshold) if self._fits(self.margin) else None

    def _analysis_title(self) -> str:
        c, mode = self.content, self.analysis
        if mode == "tpfpfn":
            if c.ground_truth is None or c.prediction is None or self.highlight is None:
                return "TP / FP / FN (pick a class; needs ground truth)"
            return f"{str(c.names.name(self.highlight)).strip()}: TP green, FP orange, FN blue"
        if mode == "flips":
            if not self._fits(self.flips):
                return "Flips A→B (Run > Compare with Checkpoint…)"
            return "Flips A→B: green fixed by B, red broken"
        if mode == "suspects":
            if not self._fits(self.suspects):
                return "Suspected label errors (after the split is evaluated; needs ground truth)"
            return f"Suspected label errors: {int(self.suspects.sum()):,} px (magenta)"
        if not self._fits(self.margin):
            return "Low confidence (computing…)" if c.prediction is not None else "Low confidence (pending)"
        return "Low confidence (yellow)"

    def _render_overlays(self) -> None:
        content = self.content
        if content is None:
            return
        titles = {"gt": "Ground truth", "pred": "Prediction", "error": "Errors (red wrong, grey ignored)"}
        if content.ground_truth is not None:
            self.panes["gt"].overlay.set_layer(self._class_layer(content.ground_truth, self.highlight))
        else:
            titles["gt"] = "Ground truth (none)"
        if content.prediction is not None:
            chosen = self.highlight_pred if self.highlight_pred is not None else self.highlight
            self.panes["pred"].overlay.set_layer(self._class_layer(content.prediction, chosen))
        else:
            titles["pred"] = "Prediction (pending)"
        layer = self._analysis_layer()
        self._analysis_shown = layer is not None
        if layer is not None:
            self.panes["error"].overlay.set_layer(layer)
        else:
            titles["error"] = "Errors (need ground truth)" if content.ground_truth is None else "Errors (pending)"
        if self.highlight is not None:
            name = str(content.names.name(self.highlight)).strip()
            other = name if self.highlight_pred is None else str(content.names.name(self.highlight_pred)).strip()
            pair = name if self.highlight_pred is None else f"{name} → {other}"
            titles = {"gt": f"Ground truth: only {name}", "pred": f"Prediction: only {other}",
                      "error": f"Errors: only {pair}"}
        if self.analysis != "errors":
            titles["error"] = self._analysis_title()
        mask = self.pair_mask()
        pixels = "" if mask is None else f"{int(np.count_nonzero(mask)):,} px of this confusion in the image"
        self.titles["error"].setToolTip(pixels)
        for key, text in titles.items():
            self.titles[key].setText(text)
        self.set_opacity(self.opacity)
        self._apply_visibility()

    def refresh_region(self, top: int, left: int, bottom: int, right: int) -> None:
        """The ground truth changed inside this rectangle only (an edit): repaint just that part of the ground
        truth pane and of an error or TP/FP/FN layer; masks whose codes are not their ids repaint whole."""
        c = self.content
        if c is None or c.ground_truth is None:
            return
        if c.ground_truth.dtype != np.uint8 or self.panes["gt"].overlay.codes_shape() != c.ground_truth.shape:
            self._render_overlays()
            return
        window = (slice(top, bottom), slice(left, right))
        self.panes["gt"].overlay.patch(top, left, c.ground_truth[window])
        if c.prediction is None or not self._analysis_shown or self.analysis not in ("errors", "tpfpfn"):
            return
        gt, pred = c.ground_truth[window], c.prediction[window]
        if self.analysis == "tpfpfn":
            codes = tpfpfn_layer(gt, pred, self.highlight, c.ignore_index).codes
        else:
            codes = self._error_layer_of(gt, pred).codes
        self.panes["error"].overlay.patch(top, left, codes)

    def _class_layer(self, ids: np.ndarray, only: int | None) -> IndexedLayer:
        c = self.content
        return class_layer(ids, c.palette, c.ignore_index, only)

    def _error_layer(self) -> IndexedLayer:
        """The error map (wrong red, correct dark, ignored grey); with a highlight, only that class or pair."""
        c = self.content
        return self._error_layer_of(c.ground_truth, c.prediction)

    def _error_layer_of(self, gt: np.ndarray, pred: np.ndarray) -> IndexedLayer:
        visible = None
        if self.highlight_pred is not None:
            visible = (gt == self.highlight) & (pred == self.highlight_pred)
        elif self.highlight is not None:
            visible = (gt == self.highlight) | (pred == self.highlight)
        return error_layer(gt, pred, self.content.ignore_index, visible)

    # --- zoom and pan ----------------------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        return float(self._master().transform().m11())

    def fit(self) -> None:
        """Fit the whole image in the first pane shown, and copy that view to the others."""
        master = self._master()
        rect = master.scene().sceneRect()
        if rect.isEmpty():
            return
        master.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self.fit_mode = True
        self._sync_from(master)

    def actual_size(self) -> None:
        """1:1, one image pixel per screen pixel."""
        master = self._master()
        master.resetTransform()
        self.fit_mode = False
        self._sync_from(master)

    def zoom_by(self, factor: float) -> None:
        master = self._master()
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
        if self.layout_mode == "auto":
            self._arrange()
        if self.fit_mode and self.content is not None:
            self.fit()

    def _on_pane_resized(self) -> None:
        """A new arrangement resizes the panes only once the layout runs: refit then."""
        if self.sender() is self._master() and self.fit_mode and self.content is not None:
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
        inside = self.describe(x, y) != ""
        self.pixel_hovered.emit(x if inside else -1, y if inside else -1)

    def _on_click(self, x: int, y: int) -> None:
        if self.describe(x, y):
            self.pixel_clicked.emit(x, y)

"""The pixel inspector: ground truth, prediction, top-3 probabilities and margin of the hovered (or pinned) pixel.

Probabilities come from the core's ``Predictor.predict_probs`` for the image on screen only, computed in the job
runner when the inspector is visible or the viewer's low-confidence layer is on, and kept compactly (top-3 class
ids and float16 probabilities) until another image or model is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from segstudio.gui.widgets.on_screen import follow_dock, on_screen

JOB = "probabilities"
TOP_K = 3


@dataclass
class TopK:
    """Top-k class ids and probabilities, (k, H, W), of one image with one model, and the margin, all made in
    the worker: hovering reads one pixel of each (computing the margin per mouse move took 89 ms at 4000x3000)."""

    key: tuple[str, int]  # (model token, id of the image array)
    image: np.ndarray
    probs: np.ndarray  # float16
    ids: np.ndarray  # uint8 for up to 256 classes
    margin: np.ndarray  # top-1 minus top-2 probability per pixel, float32


def top_margin(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability per pixel (float32; 1 with a single class)."""
    if len(probs) < 2:
        return np.ones(probs.shape[1:], dtype=np.float32)
    return probs[0].astype(np.float32) - probs[1].astype(np.float32)


@dataclass
class PixelInfo:
    """What the inspector shows for one pixel (names resolved; None where unknown)."""

    x: int
    y: int
    ground_truth: int | None
    predicted: int | None
    ignored: bool | None
    top: list[tuple[int, float]] | None
    margin: float | None


def pixel_info(content: Any, topk: TopK | None, x: int, y: int) -> PixelInfo | None:
    """The facts about pixel (x, y) of the viewer's content, or None outside the image."""
    if content is None or not (0 <= y < content.image.shape[0] and 0 <= x < content.image.shape[1]):
        return None
    gt = None if content.ground_truth is None else int(content.ground_truth[y, x])
    pred = None if content.prediction is None else int(content.prediction[y, x])
    top = margin = None
    if topk is not None and topk.image is content.image:
        top = [(int(topk.ids[k, y, x]), float(topk.probs[k, y, x])) for k in range(len(topk.ids))]
        margin = float(topk.margin[y, x])
    ignored = None if gt is None else gt == content.ignore_index
    return PixelInfo(x, y, gt, pred, ignored, top, margin)


def compute_topk(predictor: Any, image: np.ndarray, top_k: int = TOP_K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probs float16, ids, margin float32), the first two of shape (k, H, W), for an RGB array (worker thread)."""
    from PIL import Image

    _ids, probs, top_ids = predictor.predict_probs(Image.fromarray(image), top_k=top_k)
    probs = probs.astype(np.float16, copy=False)
    return probs, top_ids, top_margin(probs)


class PixelInspector(QWidget):
    """The inspector panel; ``unpin_requested`` from its button, ``visibility_changed`` when shown or hidden."""

    unpin_requested = Signal()
    visibility_changed = Signal(bool)
    ROWS = ("Pixel", "Ground truth", "Predicted", "Top 1", "Top 2", "Top 3", "Margin (1st − 2nd)", "Ignored")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = QLabel("Hover over the image; click a pixel to pin it.", self)
        self.mode.setWordWrap(True)
        self.values: dict[str, QLabel] = {}
        form = QFormLayout()
        for name in self.ROWS:
            label = QLabel("–", self)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setObjectName(f"inspector-{name.split()[0].lower()}-{name.split()[-1].lower()}")
            form.addRow(name, label)
            self.values[name] = label
        self.unpin = QPushButton("Unpin", self)
        self.unpin.setEnabled(False)
        self.unpin.clicked.connect(self.unpin_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.mode)
        layout.addLayout(form)
        layout.addWidget(self.unpin)
        layout.addStretch(1)
        self.info: PixelInfo | None = None

    def show_info(self, info: PixelInfo | None, names: Any, pinned: bool, computing: bool) -> None:
        """Fill the rows from ``info`` (None clears them)."""
        self.info = info
        self.unpin.setEnabled(pinned)
        self.mode.setText("Pinned: click another pixel to move the pin." if pinned
                          else "Hover over the image; click a pixel to pin it.")
        name = (lambda i: str(names.name(i)).strip()) if names is not None else str
        texts = dict.fromkeys(self.ROWS, "–")
        if info is not None:
            texts["Pixel"] = f"x {info.x}, y {info.y}"
            texts["Ground truth"] = "none (no ground truth)" if info.ground_truth is None else (
                "ignored" if info.ignored else name(info.ground_truth))
            texts["Predicted"] = "pending" if info.predicted is None else name(info.predicted)
            texts["Ignored"] = "n/a" if info.ignored is None else ("yes" if info.ignored else "no")
            if info.top is not None:
                for rank, (class_id, prob) in enumerate(info.top[:TOP_K], start=1):
                    texts[f"Top {rank}"] = f"{name(class_id)}  {100 * prob:.1f}%"
                texts["Margin (1st − 2nd)"] = f"{100 * info.margin:.1f} points"
            elif computing:
                texts["Top 1"] = "computing…"
        for key, text in texts.items():
            self.values[key].setText(text)

    def event(self, event: QEvent) -> bool:
        follow_dock(self, event, self.visibility_changed)
        return super().event(event)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.visibility_changed.emit(True)

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802
        super().hideEvent(event)
        self.visibility_changed.emit(False)


SETTLE_MS = 250  # an image shown this long gets its probabilities computed


class InspectorController(QObject):
    """Follows the viewer's hover and clicks, and computes the shown image's top-3 probabilities on demand."""

    def __init__(self, panel: PixelInspector, viewer: Any, review: Any, jobs_runner: Any,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.panel, self.viewer, self.review, self.jobs = panel, viewer, review, jobs_runner
        self.topk: TopK | None = None
        self.pinned: tuple[int, int] | None = None
        self.hovered: tuple[int, int] | None = None
        self._pending: tuple[str, int] | None = None
        self._image: np.ndarray | None = None
        # Probabilities cost a forward pass: wait until the person stops on an image, so stepping through a
        # split with the arrow keys never queues work (nor competes with decoding the next image).
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS, timeout=self.ensure)
        viewer.pixel_hovered.connect(self._on_hover)
        viewer.pixel_clicked.connect(self.pin)
        viewer.content_changed.connect(self._on_content)
        viewer.analysis_changed.connect(lambda _mode: self.ensure())
        panel.visibility_changed.connect(lambda _shown: self.ensure())
        panel.unpin_requested.connect(self.unpin)
        review.model_loaded.connect(lambda _spec: self.ensure())

    def _key(self) -> tuple[str, int] | None:
        content, bundle = self.viewer.content, self.review.bundle
        if content is None or bundle is None:
            return None
        return bundle.token, id(content.image)

    def wanted(self) -> bool:
        return on_screen(self.panel) or self.viewer.analysis == "confidence"

    def ensure(self) -> None:
        """Start computing the shown image's probabilities if they are wanted and not there yet."""
        key = self._key()
        if key is None or not self.wanted() or self._pending == key:
            return
        if self.topk is not None and self.topk.key == key:
            if self.viewer.margin is None:
                self.viewer.set_margin(self.topk.margin)
            return
        image, predictor = self.viewer.content.image, self.review.bundle.predictor
        self._pending = key
        self.jobs.submit(JOB, lambda ctx: (key, image, compute_topk(predictor, image)),
                         on_result=self._on_topk, on_error=self._on_error)
        self.refresh()

    def _on_topk(self, value: tuple[tuple[str, int], np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        key, image, (probs, ids, margin) = value
        if self._pending == key:
            self._pending = None
        if key != self._key():
            self.ensure()  # another image or model is on screen now
            return
        self.topk = TopK(key, image, probs, ids, margin)
        self.viewer.set_margin(self.topk.margin)
        self.refresh()

    def _on_error(self, info: Any) -> None:
        self._pending = None
        self.review.status.emit(f"Pixel probabilities: {info.message}")

    def _on_content(self) -> None:
        image = self.viewer.content.image if self.viewer.content is not None else None
        if image is not self._image:  # another image: its own probabilities, no pin
            self._image, self.pinned = image, None
            if self.topk is not None and self.topk.image is not image:
                self.topk = None
        self._settle.start()
        self.refresh()

    def _on_hover(self, x: int, y: int) -> None:
        self.hovered = (x, y) if x >= 0 else None
        if self.pinned is None:
            self.refresh()

    def pin(self, x: int, y: int) -> None:
        self.pinned = (x, y)
        self.refresh()

    def unpin(self) -> None:
        self.pinned = None
        self.refresh()

    def info(self) -> PixelInfo | None:
        point = self.pinned or self.hovered
        topk = self.topk if self.topk is not None and self.topk.key == self._key() else None
        return None if point is None else pixel_info(self.viewer.content, topk, *point)

    def refresh(self) -> None:
        if self.viewer.marker != self.pinned:
            self.viewer.set_marker(*(self.pinned or (None, None)))
        content = self.viewer.content
        names = content.names if content is not None else None
        computing = self._pending is not None and self._pending == self._key()
        self.panel.show_info(self.info(), names, self.pinned is not None, computing)

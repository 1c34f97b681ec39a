"""The model panel: choose a checkpoint (demo, scratch, a folder, a Hub id), see the load report and device, and,
for a checkpoint with a classification head (such as nvidia/mit-b0), the top-5 classes of the image on screen."""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.training import describe_options
from segstudio.gui.widgets.on_screen import follow_dock
from segstudio.gui.widgets.on_screen import on_screen as panel_on_screen

DEVICES = ("auto", "cpu", "cuda")
TOP_CLASSES = 5


class ClassesBox(QGroupBox):
    """The top classes of the image on screen: rank, name and probability (as a bar)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(f"Image classes (top {TOP_CLASSES})", parent)
        self.note = QLabel("", self)
        self.note.setObjectName("classes-note")
        self.note.setWordWrap(True)
        grid = QGridLayout()
        self.names: list[QLabel] = []
        self.bars: list[QProgressBar] = []
        for rank in range(TOP_CLASSES):
            name = QLabel("", self)
            name.setObjectName(f"class-{rank + 1}")
            name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            name.setWordWrap(True)  # ImageNet names can be long: wrap rather than widen the dock
            bar = QProgressBar(self)
            bar.setRange(0, 1000)
            bar.setMaximumWidth(110)
            grid.addWidget(QLabel(f"{rank + 1}.", self), rank, 0)
            grid.addWidget(name, rank, 1)
            grid.addWidget(bar, rank, 2)
            self.names.append(name)
            self.bars.append(bar)
        grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(grid)
        self.show_scores([], "")

    def show_scores(self, scores: Sequence, note: str) -> None:
        """``scores``: ClassScore-like items (label, class_id, probability), most probable first."""
        self.note.setText(note)
        self.note.setVisible(bool(note))
        for rank, (name, bar) in enumerate(zip(self.names, self.bars, strict=True)):
            score = scores[rank] if rank < len(scores) else None
            name.setText("" if score is None else f"{score.label} ({score.class_id})")
            name.setToolTip("" if score is None else score.label)
            bar.setValue(0 if score is None else round(1000 * score.probability))
            bar.setFormat("" if score is None else f"{100 * score.probability:.1f}%")
            bar.setTextVisible(score is not None)

    def texts(self) -> list[str]:
        """What the rows say, "name (id)  12.3%" (tests, screenshots)."""
        return [f"{n.text()}  {b.format()}" for n, b in zip(self.names, self.bars, strict=True) if n.text()]


class ModelPanel(QWidget):
    """Emits ``load_requested(spec, device)``; the main window runs the load in a worker. ``visibility_changed``
    when shown, hidden, or its dock's tab is chosen or left (the top classes are computed only while on screen)."""

    load_requested = Signal(str, str)
    visibility_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = QComboBox(self)
        self.spec.setEditable(True)
        self.spec.addItems(["demo", "scratch"])
        self.spec.setToolTip("demo, scratch, a local checkpoint folder, or a Hugging Face Hub model id")
        self.spec.lineEdit().setPlaceholderText("demo, a folder or a Hub id")
        self.spec.lineEdit().returnPressed.connect(self._request)
        browse = QPushButton("Folder…", self)
        browse.clicked.connect(self.browse)
        self.load_button = QPushButton("Load", self)
        self.load_button.clicked.connect(self._request)
        self.device = QComboBox(self)
        self.device.addItems(list(DEVICES))
        self.status = QLabel("No model loaded.", self)
        self.status.setObjectName("model-status")
        self.status.setWordWrap(True)
        self.report = QPlainTextEdit(self)
        self.report.setReadOnly(True)
        self.report.setPlaceholderText("The load report appears here.")
        self.report.setMaximumBlockCount(500)
        row = QHBoxLayout()
        row.addWidget(self.spec, 1)
        row.addWidget(browse)
        row.addWidget(self.load_button)
        form = QFormLayout()
        form.addRow("Checkpoint", row)
        form.addRow("Device", self.device)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.report, 1)
        self.classes = ClassesBox(self)
        self.classes.setVisible(False)  # only for checkpoints with a classification head
        layout.addWidget(self.classes)

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a checkpoint folder")
        if folder:
            self.spec.setEditText(folder)
            self._request()

    def set_recent(self, specs: list[str]) -> None:
        current = self.spec.currentText()
        self.spec.clear()
        self.spec.addItems(list(dict.fromkeys(["demo", "scratch", *specs])))
        self.spec.setEditText(current)

    def _request(self) -> None:
        spec = self.spec.currentText().strip()
        if spec:
            self.load_requested.emit(spec, self.device.currentText())

    def set_loading(self, spec: str) -> None:
        self.load_button.setEnabled(False)
        self.status.setText(f"Loading {spec}…")

    def set_loaded(self, spec: str, device: str, num_labels: int, summary: str, ok: bool,
                   training_options: dict | None = None) -> None:
        """A model is in use: its load report and, if the checkpoint records them, the options it was trained
        with."""
        self.load_button.setEnabled(True)
        self.spec.setEditText(spec)
        warning = "" if ok else " — <b>some weights are newly initialised</b>"
        self.status.setText(f"<b>{spec}</b> on <b>{device}</b>, {num_labels} classes{warning}")
        if training_options is not None:
            summary += "\n\ntrained with (segstudio train --config training_options.json repeats it):\n  " + \
                "\n  ".join(describe_options(training_options))
        self.report.setPlainText(summary)

    def set_failed(self, spec: str, message: str, still_using: str | None = None) -> None:
        """A load failed: say which, and which model is still in use (its report stays below)."""
        self.load_button.setEnabled(True)
        self.spec.setEditText(still_using or spec)
        current = (f"Still using <b>{html.escape(still_using)}</b>:" if still_using
                   else "No model is loaded.")
        self.status.setText(f"Could not load <b>{html.escape(spec)}</b>: {html.escape(message)}<br>{current}")
        if not still_using:
            self.report.clear()

    def set_classes(self, scores: Sequence | None, note: str = "") -> None:
        """Show the top classes (``scores``) or a note; None hides the box (no classification head)."""
        self.classes.setVisible(scores is not None)
        if scores is not None:
            self.classes.show_scores(scores, note)

    def on_screen(self) -> bool:
        """Visible and not behind another tab."""
        return panel_on_screen(self)

    def event(self, event: QEvent) -> bool:
        follow_dock(self, event, self.visibility_changed)
        return super().event(event)

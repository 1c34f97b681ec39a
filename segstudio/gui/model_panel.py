"""The model panel: choose a checkpoint (demo, scratch, a folder, a Hub id), see the load report and device."""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

DEVICES = ("auto", "cpu", "cuda")


class ModelPanel(QWidget):
    """Emits ``load_requested(spec, device)``; the main window runs the load in a worker."""

    load_requested = Signal(str, str)

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

    def set_loaded(self, spec: str, device: str, num_labels: int, summary: str, ok: bool) -> None:
        self.load_button.setEnabled(True)
        self.spec.setEditText(spec)
        warning = "" if ok else " — <b>some weights are newly initialised</b>"
        self.status.setText(f"<b>{spec}</b> on <b>{device}</b>, {num_labels} classes{warning}")
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

"""The fine-tuning panel: settings, Start / Cancel, progress with ETA, live loss and mean-IoU curves, log lines
and the checkpoints written, each one click away from review."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QValueAxis
from PySide6.QtCore import QMargins, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.export import ExportError
from segstudio.core.training import (
    OptionError,
    check_options,
    checkpoint_caption,
    read_options_file,
    write_options_file,
)
from segstudio.gui.dialogs.messages import ask, error_box
from segstudio.gui.settings import AppSettings
from segstudio.gui.widgets.advanced_training import AdvancedTrainingOptions
from segstudio.gui.workers.train_job import TrainEvent, TrainRequest
from segstudio.gui.workers.worker import ErrorInfo

PATH_ROLE = Qt.ItemDataRole.UserRole
KEPT_RUNS = 3  # earlier runs' curves kept, dimmed, beside the current one
OPTIONS_KEY = "training/options"  # the form's options, remembered (JSON)
OPTIONS_FILTER = "Training options (*.json *.yaml *.yml)"


def format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "ETA –"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"ETA {seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


class Curve(QChartView):
    """A small line chart that grows as points arrive."""

    def __init__(self, title: str, y_label: str, y_range: tuple[float, float] | None = None,
                 parent: QWidget | None = None) -> None:
        chart = QChart()
        chart.setTitle(title)
        chart.legend().hide()
        chart.setMargins(QMargins(2, 2, 2, 2))
        super().__init__(chart, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.series = QLineSeries()
        chart.addSeries(self.series)
        self.x_axis, self.y_axis = QValueAxis(), QValueAxis()
        self.x_axis.setTitleText("step")
        self.x_axis.setLabelFormat("%d")
        self.y_axis.setTitleText(y_label)
        chart.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.y_axis, Qt.AlignmentFlag.AlignLeft)
        self.series.attachAxis(self.x_axis)
        self.series.attachAxis(self.y_axis)
        self.fixed_y = y_range
        self.previous: list[QLineSeries] = []
        self.length = 1
        self.clear()
        self.setMinimumHeight(140)

    def clear(self) -> None:
        self.series.clear()
        self.set_length(1)
        self.y_axis.setRange(*(self.fixed_y or (0.0, 1.0)))

    def keep_as_previous(self) -> None:
        """Start a new run: the current curve stays, dimmed, to compare with (the last ``KEPT_RUNS`` runs)."""
        if self.series.count():
            old = QLineSeries()
            old.replace(self.series.points())
            pen = QPen(QColor(150, 150, 150))
            pen.setStyle(Qt.PenStyle.DashLine)
            old.setPen(pen)
            self.chart().addSeries(old)
            old.attachAxis(self.x_axis)
            old.attachAxis(self.y_axis)
            self.previous.append(old)
            while len(self.previous) > KEPT_RUNS:
                self.chart().removeSeries(self.previous.pop(0))
        self.series.clear()
        self._fit()

    def set_length(self, steps: int) -> None:
        """The x axis spans the whole run (whole steps only: a 0..1 axis read "0 0 0 1")."""
        self.length = max(1, int(steps))
        self._fit()

    def _fit(self) -> None:
        points = [p for s in (self.series, *self.previous) for p in s.points()]
        top_x = max([self.length, *(p.x() for p in points)])
        self.x_axis.setRange(0, top_x)
        self.x_axis.setTickCount(int(min(6, top_x + 1)))
        if self.fixed_y is None:
            top = max((p.y() for p in points), default=0.0)
            self.y_axis.setRange(0.0, top * 1.1 if top > 0 else 1.0)

    def add(self, x: float, y: float) -> None:
        if not math.isfinite(y):
            return
        self.series.append(x, y)
        self._fit()

    def values(self) -> list[tuple[float, float]]:
        return [(p.x(), p.y()) for p in self.series.points()]


class TrainingPanel(QWidget):
    """Emits ``start_requested(TrainRequest)``, ``cancel_requested()``, ``review_requested(path)`` and
    ``final_evaluation_requested()`` (score the weights a cancelled run reached)."""

    start_requested = Signal(object)
    cancel_requested = Signal()
    review_requested = Signal(str)
    final_evaluation_requested = Signal()

    def __init__(self, parent: QWidget | None = None, settings: AppSettings | None = None) -> None:
        super().__init__(parent)
        self._build_settings()
        self.app_settings = settings
        self.extra_options: dict[str, Any] = {}  # options from a file that the form does not show
        if settings is not None:
            self._restore_options()
        self.load_options_button = QPushButton("Load options from file…", self)
        self.load_options_button.clicked.connect(self._on_load_options)
        self.save_options_button = QPushButton("Save options…", self)
        self.save_options_button.clicked.connect(self._on_save_options)
        self.start_button = QPushButton("Start training", self)
        self.start_button.clicked.connect(self._on_start)
        self.resume_button = QPushButton("Resume a run…", self)
        self.resume_button.setToolTip("Continue a stopped run from its newest complete checkpoint, with its settings")
        self.resume_button.clicked.connect(self._on_resume)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.progress = QProgressBar(self)
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.final_eval_button = QPushButton("Evaluate the weights reached", self)
        self.final_eval_button.setToolTip("Score the model a cancelled run saved on the validation images, as the "
                                          "run's own evaluations did: the mean-IoU curve gets its last point")
        self.final_eval_button.clicked.connect(self.final_evaluation_requested)
        self.final_eval_button.hide()
        self.loss_chart = Curve("Training loss", "loss")
        self.iou_chart = Curve("Validation mean IoU", "mIoU", (0.0, 1.0))
        self.iou_chart.series.setPointsVisible(True)  # a few evaluations (and a cancelled run's last) as dots
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.checkpoints = QListWidget(self)
        self.checkpoints.itemDoubleClicked.connect(self._review_item)
        self.review_button = QPushButton("Review with selected checkpoint", self)
        self.review_button.clicked.connect(self._review_selected)
        self._build_layout()
        self._started = 0.0
        self._step = 0
        self._stopped_bar = ("", 1, 0)  # the bar of the stopped run (format, maximum, value) while evaluating

    def _build_settings(self) -> None:
        self.model_spec = QLineEdit("demo", self)
        self.model_spec.setToolTip("Fine-tune a fresh copy of this checkpoint (demo, scratch, a folder, a Hub id)")
        self.length_unit = QComboBox(self)
        self.length_unit.addItems(["steps", "epochs"])
        self.steps = QSpinBox(self)
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(200)
        self.epochs = QDoubleSpinBox(self)
        self.epochs.setRange(0.01, 1000.0)
        self.epochs.setValue(3.0)
        self.epochs.setVisible(False)
        self.length_unit.currentTextChanged.connect(self._on_unit)
        self.learning_rate = QDoubleSpinBox(self)
        self.learning_rate.setDecimals(6)
        self.learning_rate.setRange(1e-6, 1.0)
        self.learning_rate.setSingleStep(1e-5)
        self.learning_rate.setValue(6e-5)
        self.batch_size = QSpinBox(self)
        self.batch_size.setRange(1, 512)
        self.batch_size.setValue(8)
        self.image_size = QSpinBox(self)
        self.image_size.setRange(0, 2048)
        self.image_size.setSingleStep(32)
        self.image_size.setSpecialValueText("model's")
        self.device = QComboBox(self)
        self.device.addItems(["auto", "cpu", "cuda"])
        self.mixed_precision = QCheckBox("Mixed precision (CUDA only)", self)
        self.mixed_precision.setChecked(True)
        self.eval_steps = QSpinBox(self)
        self.eval_steps.setRange(0, 1_000_000)
        self.eval_steps.setSpecialValueText("auto")
        self.eval_limit = QSpinBox(self)
        self.eval_limit.setRange(0, 1_000_000)
        self.eval_limit.setSpecialValueText("all")
        self.evaluate_on_cancel = QCheckBox("Evaluate when cancelled", self)
        self.evaluate_on_cancel.setToolTip("When a run is cancelled after a step, score the weights it reached, so "
                                           "the mean-IoU curve ends where the run stopped")
        self.output_dir = QLineEdit(str(Path.home() / "segstudio-runs"), self)
        self.advanced = AdvancedTrainingOptions(self)

    def _build_layout(self) -> None:
        length = QHBoxLayout()
        length.addWidget(self.steps, 1)
        length.addWidget(self.epochs, 1)
        length.addWidget(self.length_unit)
        output = QHBoxLayout()
        output.addWidget(self.output_dir, 1)
        browse = QPushButton("…", self)
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse_output)
        output.addWidget(browse)
        form = QFormLayout()
        form.addRow("Start from", self.model_spec)
        form.addRow("Length", length)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Image size", self.image_size)
        form.addRow("Device", self.device)
        form.addRow("", self.mixed_precision)
        form.addRow("Evaluate every", self.eval_steps)
        form.addRow("Evaluate on", self.eval_limit)
        form.addRow("", self.evaluate_on_cancel)
        form.addRow("Output folder", output)
        files = QHBoxLayout()
        files.addWidget(self.load_options_button)
        files.addWidget(self.save_options_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        self.advanced_toggle = QPushButton("Advanced options", self)
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.toggled.connect(self.advanced.setVisible)
        self.advanced.setVisible(False)
        options = QWidget(self)
        options_column = QVBoxLayout(options)
        options_column.setContentsMargins(0, 0, 0, 0)
        options_column.addLayout(form)
        options_column.addWidget(self.advanced_toggle)
        options_column.addWidget(self.advanced)
        options_column.addLayout(files)
        options_column.addStretch(1)
        scroll = QScrollArea(self)  # the options scroll, so the dock fits a 1280x800 screen
        scroll.setWidget(options)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(options.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        self.checkpoints.setMinimumHeight(48)
        settings = QWidget(self)
        column = QVBoxLayout(settings)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(scroll, 3)
        column.addLayout(buttons)
        column.addWidget(self.progress)
        column.addWidget(self.final_eval_button)
        column.addWidget(QLabel("Checkpoints (double-click to review)"))
        column.addWidget(self.checkpoints, 1)
        column.addWidget(self.review_button)
        charts = QSplitter(Qt.Orientation.Vertical, self)
        charts.addWidget(self.loss_chart)
        charts.addWidget(self.iou_chart)
        charts.addWidget(self.log)
        for index, stretch in enumerate((3, 3, 2)):  # the curves get the room, the log the rest
            charts.setStretchFactor(index, stretch)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(settings)
        splitter.addWidget(charts)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    # --- settings ------------------------------------------------------------------------------------------

    def _on_unit(self, unit: str) -> None:
        self.steps.setVisible(unit == "steps")
        self.epochs.setVisible(unit == "epochs")

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for checkpoints", self.output_dir.text())
        if folder:
            self.output_dir.setText(folder)

    def options(self) -> dict[str, Any]:
        """The training options the form shows (``segstudio train``'s and a config file's names)."""
        steps_mode = self.length_unit.currentText() == "steps"
        options = {
            "max_steps": self.steps.value() if steps_mode else None,
            "epochs": None if steps_mode else self.epochs.value(),
            "batch_size": self.batch_size.value(),
            "learning_rate": self.learning_rate.value(),
            "image_size": self.image_size.value() or None,
            "device": self.device.currentText(),
            "mixed_precision": self.mixed_precision.isChecked(),
            "eval_steps": self.eval_steps.value() or None,
            "eval_limit": self.eval_limit.value() or None,
            **self.advanced.options(),
            # a live curve: every step for short runs, about 50 points for long ones
            "logging_steps": max(1, min(10, self.steps.value() // 50)) if steps_mode else 10,
        }
        return {**options, **self.extra_options}

    def set_options(self, options: dict[str, Any]) -> None:
        """Show checked options (as ``check_options`` returns them) in the form; those it has no field for are
        kept and go with the next run."""
        if options.get("max_steps") is not None:
            self.length_unit.setCurrentText("steps")
            self.steps.setValue(options["max_steps"])
        elif options.get("epochs") is not None:
            self.length_unit.setCurrentText("epochs")
            self.epochs.setValue(options["epochs"])
        for name in ("batch_size", "image_size", "eval_steps", "eval_limit"):
            if name in options:
                getattr(self, name).setValue(options[name] or 0)
        if "learning_rate" in options:
            self.learning_rate.setValue(options["learning_rate"])
        if "device" in options:
            self.device.setCurrentText(options["device"])
        if "mixed_precision" in options:
            self.mixed_precision.setChecked(options["mixed_precision"])
        self.advanced.set_options(options)
        self.extra_options = {name: options[name] for name in ("logging_steps", "save_total_limit")
                              if name in options}

    def request(self) -> TrainRequest:
        """The run the form describes; a new ``run-YYYYmmdd-HHMMSS`` folder inside the output folder."""
        run_dir = Path(self.output_dir.text()).expanduser() / time.strftime("run-%Y%m%d-%H%M%S")
        self.remember_options()
        settings = {"output_dir": str(run_dir), **self.options()}
        return TrainRequest(model_spec=self.model_spec.text().strip() or "demo", settings=settings)

    def remember_options(self) -> None:
        """Keep the form's options (and output folder) in QSettings for the next session."""
        if self.app_settings is not None:
            options = self.options()
            if "logging_steps" not in self.extra_options:
                del options["logging_steps"]  # follows the run's length, unless a file set it
            self.app_settings.set(OPTIONS_KEY, json.dumps(options))
            self.app_settings.set("training/output", self.output_dir.text())

    def _restore_options(self) -> None:
        try:
            remembered = json.loads(str(self.app_settings.get(OPTIONS_KEY, "{}")))
            self.set_options(check_options(remembered if isinstance(remembered, dict) else {}, "remembered"))
        except (ValueError, OptionError):
            pass  # options of another version: the defaults
        self.output_dir.setText(str(self.app_settings.get("training/output", self.output_dir.text())))

    def _on_load_options(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load training options", self.output_dir.text(), OPTIONS_FILTER)
        if not path:
            return
        try:
            self.set_options(read_options_file(path))
        except OptionError as exc:
            self._refuse("Training options", str(exc))
            return
        self.remember_options()
        self.append_log(f"options loaded from {path}")

    def _on_save_options(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save training options", self.output_dir.text(), OPTIONS_FILTER)
        if not path:
            return
        if Path(path).suffix.lower() not in (".json", ".yaml", ".yml"):
            path += ".json"  # after the dialog's own overwrite question, which asked about the name without it
            if Path(path).exists() and not ask(self, "Save training options",
                                               f"{Path(path).name} already exists. Replace it?"):
                return
        try:
            write_options_file(path, self.options())
        except (OptionError, ExportError) as exc:  # ExportError: a full disk, a folder not writable
            self._refuse("Training options", str(exc))
            return
        self.append_log(f"options saved to {path} (segstudio train --config {path} repeats them)")

    def _refuse(self, title: str, message: str) -> None:
        self.append_log(message)
        error_box(self, ErrorInfo(title, message, "", "OptionError"))

    def resume_request(self, run_dir: str) -> TrainRequest:
        """Continue the run in ``run_dir`` with its own settings, on the device chosen here."""
        settings = {"output_dir": str(Path(run_dir).expanduser()), "resume": True,
                    "device": self.device.currentText(), "mixed_precision": self.mixed_precision.isChecked()}
        return TrainRequest(model_spec="", settings=settings)

    def _on_start(self) -> None:
        self.start_requested.emit(self.request())

    def _on_resume(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training run to resume", self.output_dir.text())
        if folder:
            self.start_requested.emit(self.resume_request(folder))

    # --- a run ---------------------------------------------------------------------------------------------

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if running:
            self._started = time.monotonic()
            self._step = 0
            self.loss_chart.keep_as_previous()
            self.iou_chart.keep_as_previous()
            self.checkpoints.clear()
            self.final_eval_button.hide()
            self.progress.setRange(0, 0)
            self.progress.setFormat("loading the model…")

    def set_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("stopping after this step…")
        self.append_log("cancel requested: stopping after this step and saving the model")

    def on_event(self, event: TrainEvent) -> None:
        data = event.data
        if event.kind == "progress":
            self._step = data["step"]
            if data["max_steps"] != self.loss_chart.length:
                self.loss_chart.set_length(data["max_steps"])
                self.iou_chart.set_length(data["max_steps"])
            self.progress.setRange(0, max(1, data["max_steps"]))
            self.progress.setValue(data["step"])
            self.progress.setFormat(f"step %v / %m — epoch {data['epoch']:.2f} — {format_eta(data['eta'])}")
        elif event.kind == "log":
            if "loss" in data:
                self.loss_chart.add(data.get("step", 0), data["loss"])
                self.append_log(f"step {int(data.get('step', 0))}: loss {data['loss']:.4f}"
                                f"  lr {data.get('learning_rate', 0):.2e}")
        elif event.kind == "evaluate":
            miou = data.get("eval_mean_iou", math.nan)
            self.iou_chart.add(data["step"], miou)
            self.append_log(f"step {data['step']}: validation mean IoU {miou:.4f}")
        elif event.kind == "checkpoint":
            self.add_checkpoint(data["path"])
            self.append_log(f"checkpoint saved: {data['path']}")
        elif event.kind == "message":
            self.append_log(data["text"])

    def add_checkpoint(self, path: str) -> None:
        for i in range(self.checkpoints.count()):
            if self.checkpoints.item(i).data(PATH_ROLE) == path:
                return
        item = QListWidgetItem(f"{checkpoint_caption(Path(path))}  —  {path}")
        item.setData(PATH_ROLE, path)
        self.checkpoints.addItem(item)
        self.checkpoints.setCurrentItem(item)

    def set_finished(self, checkpoints: list[str], cancelled: bool, final: str | None) -> None:
        self.set_running(False)
        for path in checkpoints:
            self.add_checkpoint(path)
        elapsed = time.monotonic() - self._started
        if cancelled and self.progress.maximum() == 0:  # stopped before its first step: no busy bar left running
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat(f"cancelled before the first step, after {elapsed:.0f} s")
        elif cancelled:  # the bar stays where the run stopped
            self.progress.setValue(self._step)
            self.progress.setFormat(f"cancelled at step {self._step} of %m after {elapsed:.0f} s")
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat(f"finished after {elapsed:.0f} s")
        state = "cancelled" if cancelled else "finished"
        if final:
            self.append_log(f"{state}: model saved to {final}")
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    @property
    def steps_seen(self) -> int:
        """The last step the running (or last) run reported; 0 before its first step."""
        return self._step

    def offer_final_evaluation(self, step: int) -> None:
        """A cancelled run saved the weights of ``step``: offer to score them."""
        self.final_eval_button.setText(f"Evaluate the weights reached (step {step})")
        self.final_eval_button.setEnabled(True)
        self.final_eval_button.show()

    def set_final_evaluating(self, step: int) -> None:
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.final_eval_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._stopped_bar = (self.progress.format(), self.progress.maximum(), self.progress.value())
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"evaluating the weights at step {step}…")
        self.append_log(f"evaluating the weights reached at step {step} on the validation images")

    def set_final_score(self, step: int, metrics: dict | None, message: str = "") -> None:
        """The final evaluation ended: its mean IoU is the curve's last point (None: cancelled or failed)."""
        self.start_button.setEnabled(True)
        self.resume_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        stopped, maximum, value = self._stopped_bar
        self.progress.setRange(0, maximum)
        self.progress.setValue(value)
        if metrics is None:
            self.final_eval_button.setEnabled(True)
            self.progress.setFormat(stopped)
            self.append_log(message or "final evaluation cancelled")
            return
        miou = metrics.get("eval_mean_iou", math.nan)
        self.iou_chart.add(step, miou)
        self.final_eval_button.hide()
        self.progress.setFormat(f"{stopped} — mean IoU {miou:.4f}" if stopped else f"mean IoU {miou:.4f}")
        self.append_log(f"step {step} (cancelled): validation mean IoU {miou:.4f}")

    def set_failed(self, message: str) -> None:
        self.start_button.setEnabled(True)
        self.resume_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("failed")
        self.append_log(f"training failed: {message}")

    def append_log(self, text: str) -> None:
        self.log.appendPlainText(text)

    def checkpoint_paths(self) -> list[str]:
        return [self.checkpoints.item(i).data(PATH_ROLE) for i in range(self.checkpoints.count())]

    def _review_item(self, item: QListWidgetItem) -> None:
        self.review_requested.emit(item.data(PATH_ROLE))

    def _review_selected(self) -> None:
        item = self.checkpoints.currentItem()
        if item is not None:
            self._review_item(item)

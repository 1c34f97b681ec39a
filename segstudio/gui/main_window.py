"""The main window: composes the panels as docks around the viewer and wires them; it computes nothing."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QPaintEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.gui.actions import build_actions
from segstudio.gui.controllers.classify import ClassifyController
from segstudio.gui.controllers.compare import CompareController
from segstudio.gui.controllers.corrections import CorrectionsController
from segstudio.gui.controllers.export import ExportController
from segstudio.gui.controllers.mask_editing import MaskEditingController
from segstudio.gui.controllers.retrain import RetrainController
from segstudio.gui.controllers.review import ReviewController
from segstudio.gui.controllers.review_record import ReviewRecordController
from segstudio.gui.controllers.training import TrainingController
from segstudio.gui.dialogs import messages as dialogs
from segstudio.gui.dialogs.open_dataset import DatasetOptionsDialog
from segstudio.gui.settings import AppSettings
from segstudio.gui.widgets.class_table import ClassTable
from segstudio.gui.widgets.confusions import ConfusionsPanel
from segstudio.gui.widgets.dataset_panel import DatasetPanel
from segstudio.gui.widgets.edit_panel import EditPanel
from segstudio.gui.widgets.guard_banner import GuardBanner, GuardController
from segstudio.gui.widgets.image_list import ImageListModel
from segstudio.gui.widgets.inspector import InspectorController, PixelInspector
from segstudio.gui.widgets.label_issues_view import SuspectsController
from segstudio.gui.widgets.legend import LegendWidget
from segstudio.gui.widgets.model_panel import ModelPanel
from segstudio.gui.widgets.training_panel import TrainingPanel, format_eta
from segstudio.gui.widgets.viewer import ANALYSES, LAYOUTS, ImageViewer
from segstudio.gui.workers import jobs
from segstudio.gui.workers.loaders import AsyncLoader
from segstudio.gui.workers.worker import ErrorInfo, JobRunner

TITLE = "SegStudio"
AUTOLOAD_FALLBACK_MS = 2000  # start loading the demo even if the window is never painted (hidden)


class MainWindow(QMainWindow):
    """``MainWindow(settings=..., autoload=False)`` in tests; ``autoload`` opens the demo after showing."""

    # A window hidden while its work stopped has now closed and no other window is visible. Qt does not count a
    # hidden window's close as the last window closing, so whoever owns the event loop quits on this (run_app).
    last_window_closed = Signal()

    def __init__(self, settings: AppSettings | QSettings | None = None, autoload: bool = True) -> None:
        super().__init__()
        self.setWindowTitle(TITLE)
        self.setObjectName("SegStudioMainWindow")
        self.settings = settings if isinstance(settings, AppSettings) else AppSettings(settings)
        self.jobs = JobRunner(self)
        self.loader = AsyncLoader(self)
        self.errors: list[ErrorInfo] = []
        self._closing = False
        self._close_when_idle = False
        self._view_saved = False
        self._warmed = False
        self._build_widgets()
        self.review = ReviewController(self.jobs, self.loader, self.image_model, self.dataset_panel, self.viewer,
                                       self.legend, self.class_table, self.confusions, self.model_panel, self)
        self.exporter = ExportController(self, self.review, self.jobs, self.settings)
        self.guard = GuardController(self.review, self.jobs, self.guard_banner, self)
        self.training = TrainingController(self, self.training_panel, self.review, self.jobs, self.settings)
        self.compare = CompareController(self, self.review, self.jobs, self)
        self.inspect = InspectorController(self.inspector, self.viewer, self.review, self.jobs, self)
        self.classify = ClassifyController(self.model_panel, self.viewer, self.review, self.jobs, self)
        self.suspects = SuspectsController(self.viewer, self.review, self.jobs, self)
        self.corrections = CorrectionsController(self, self.review, self.jobs, self.settings, self)
        self.retrain = RetrainController(self, self.review, self.training, self.compare, self)
        self.editing = MaskEditingController(self.viewer, self.review, self.edit_panel, self.legend, self.jobs, self)
        self.record = ReviewRecordController(self.review, self.dataset_panel, self.image_model,
                                             self.corrections.folder_for, self)
        self._build_docks()
        self._build_status_bar()
        self.actions = build_actions(self)
        self._wire()
        self._refresh_recent()
        self.resize(1600, 900)
        self.resizeDocks([self.docks["images"], self.docks["legend"]], [380, 440], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["legend"], self.docks["classes"]], [220, 480], Qt.Orientation.Vertical)
        self.settings.restore_window(self)
        self.setAcceptDrops(True)
        # Loading starts once the window has been painted: the loading thread imports torch and datasets,
        # and started any earlier it would hold the GIL while the first frame waits (measured: +0.8 s).
        self._autoload_pending = autoload
        if autoload:
            QTimer.singleShot(AUTOLOAD_FALLBACK_MS, self, self._start_autoload)  # if no paint ever comes

    # --- composition ----------------------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.image_model = ImageListModel(self.loader, self)
        self.dataset_panel = DatasetPanel(self.image_model, self)
        self.viewer = ImageViewer(self)
        self.legend = LegendWidget(self)
        self.class_table = ClassTable(self)
        self.confusions = ConfusionsPanel(self)
        self.model_panel = ModelPanel(self)
        self.inspector = PixelInspector(self)
        self.training_panel = TrainingPanel(self, settings=self.settings)
        self.edit_panel = EditPanel(self)
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(self.settings.get("view/opacity", 50, int)))
        self.opacity.setMinimumWidth(60)  # never a stub on a small screen
        self.opacity.setMaximumWidth(200)
        self.viewer.set_opacity(self.opacity.value() / 100)
        self.viewer.set_confidence_threshold(float(self.settings.get("view/confidence_threshold", 0.2, float)))
        analysis = str(self.settings.get("view/analysis", "errors"))
        # Flips need a comparison, which no start has: restoring them would show an empty pane
        self.viewer.set_analysis(analysis if analysis in ANALYSES and analysis != "flips" else "errors")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Opacity"))
        bar.addWidget(self.opacity)
        for text, slot, tip in (("Fit", self.viewer.fit, "Fit the image (Ctrl+0)"),
                                ("1:1", self.viewer.actual_size, "One image pixel per screen pixel (Ctrl+1)")):
            button = QToolButton(self)  # compact: the toolbar must fit a 1280-pixel screen beside the docks
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            bar.addWidget(button)
        bar.addSpacing(6)
        bar.addWidget(self.viewer.analysis_controls)
        bar.addStretch(1)
        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(2, 2, 2, 2)
        column.addLayout(bar)
        self.guard_banner = GuardBanner(central)
        column.addWidget(self.guard_banner)
        column.addWidget(self.viewer, 1)
        self.setCentralWidget(central)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState / restoreState key
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right, bottom = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                               Qt.DockWidgetArea.BottomDockWidgetArea)
        self.docks = {
            "images": self._dock("Images", "dock-images", self.dataset_panel, left),
            "legend": self._dock("Legend", "dock-legend", self.legend, right),
            "classes": self._dock("Classes", "dock-classes", self.class_table, right),
            "confusions": self._dock("Confusions", "dock-confusions", self.confusions, right),
            "model": self._dock("Model", "dock-model", self.model_panel, right),
            "inspector": self._dock("Inspector", "dock-inspector", self.inspector, right),
            "training": self._dock("Training", "dock-training", self.training_panel, bottom),
            "edit": self._dock("Edit", "dock-edit", self.edit_panel, right),
        }
        self.tabifyDockWidget(self.docks["classes"], self.docks["confusions"])
        self.tabifyDockWidget(self.docks["confusions"], self.docks["model"])
        self.tabifyDockWidget(self.docks["model"], self.docks["inspector"])
        self.docks["classes"].raise_()
        self.docks["training"].hide()
        self.docks["edit"].hide()

    def _build_status_bar(self) -> None:
        """Messages on the left, the hovered pixel and the running job on the right (all plain labels:
        QStatusBar.showMessage would hide the hover text while a message shows)."""
        status = self.statusBar()
        self.message_label = QLabel("", self)
        self.message_label.setObjectName("message")
        self._message_timer = QTimer(self, singleShot=True, interval=10_000, timeout=self.message_label.clear)
        self.hover_label = QLabel("", self)
        self.hover_label.setObjectName("hover")
        self.hover_label.setMinimumWidth(380)
        self.job_label = QLabel("", self)
        self.job_progress = QProgressBar(self)
        self.job_progress.setMaximumWidth(220)
        self.job_cancel = QToolButton(self)
        self.job_cancel.setText("Cancel")
        self.job_cancel.clicked.connect(self.review.cancel)
        self.job_cancel.clicked.connect(self.compare.cancel)
        status.addWidget(self.message_label, 1)
        status.addPermanentWidget(self.hover_label)
        for widget in (self.job_label, self.job_progress, self.job_cancel):
            status.addPermanentWidget(widget)
            widget.setVisible(False)

    def _wire(self) -> None:
        a, review = self.actions, self.review
        a.open_dataset.triggered.connect(self.ask_dataset)
        a.open_dataset_folder.triggered.connect(self.dataset_panel.browse)
        a.open_dataset_options.triggered.connect(self.open_dataset_with_options)
        a.corrections_folder.triggered.connect(self.corrections.choose_folder)
        a.fine_tune_corrected.triggered.connect(self.retrain.start)
        a.open_model.triggered.connect(self.ask_model)
        a.open_model_folder.triggered.connect(self.model_panel.browse)
        a.export.triggered.connect(self.exporter.ask_and_export)
        a.quit.triggered.connect(self.close)
        a.fit.triggered.connect(self.viewer.fit)
        a.actual_size.triggered.connect(self.viewer.actual_size)
        a.zoom_in.triggered.connect(lambda: self.viewer.zoom_by(1.25))
        a.zoom_out.triggered.connect(lambda: self.viewer.zoom_by(0.8))
        for key, action in a.layers.items():
            action.toggled.connect(lambda on, k=key: self.viewer.set_layer_visible(k, on))
        a.next_image.triggered.connect(lambda: self.dataset_panel.step(1))
        a.previous_image.triggered.connect(lambda: self.dataset_panel.step(-1))
        a.clear_selection.triggered.connect(lambda: review.rank_by_class(-1))
        a.evaluate.triggered.connect(lambda: review.evaluate(explicit=True))
        a.cancel.triggered.connect(review.cancel)
        a.cancel.triggered.connect(self.compare.cancel)
        a.compare.triggered.connect(self.compare.choose_checkpoint)
        for key, status in (("accept", "accepted"), ("flag", "needs_fix"), ("fixed", "fixed"),
                            ("unreviewed", "unreviewed")):
            a.review[key].triggered.connect(lambda _=False, s=status: self.record.set_status(s))
        a.review["next_unreviewed"].triggered.connect(lambda: self.record.next_unreviewed())
        a.review["note"].triggered.connect(self.record.edit_note)
        a.train.triggered.connect(self.show_training)
        a.cancel_training.triggered.connect(self.training.cancel)
        a.about.triggered.connect(lambda: dialogs.about(self, review.bundle.device if review.bundle else None))
        a.shortcuts.triggered.connect(lambda: dialogs.shortcuts(self, QWidget.actions(self)))
        for key, action in a.layouts.items():
            action.triggered.connect(lambda _=False, k=key: self.viewer.set_layout(k))
        for key, action in a.panes.items():
            action.triggered.connect(lambda _=False, k=key: self.show_pane(k))
        for key, action in a.palettes.items():
            action.triggered.connect(lambda _=False, k=key: review.set_palette(k))
        palette = str(self.settings.get("view/palette", "ade20k"))
        review.set_palette(palette if palette in a.palettes else "ade20k")
        a.palettes[review.palette].setChecked(True)
        self.viewer.layout_box.currentIndexChanged.connect(self._sync_layout_actions)
        self._wire_editing()
        self.dataset_panel.show_view("Grid" if self.settings.get("view/image_list", "List") == "Grid" else "List")
        layout = str(self.settings.get("view/layout", "auto"))
        self.viewer.set_layout(layout if layout in LAYOUTS else "auto")
        self._sync_layout_actions()
        self.jobs.jobs_changed.connect(self._update_cancel_actions)
        self._update_cancel_actions()
        for dock in self.docks.values():
            self.docks_menu.addAction(dock.toggleViewAction())
        self.opacity.valueChanged.connect(lambda v: self.viewer.set_opacity(v / 100))
        self.viewer.hover_text.connect(self.hover_label.setText)
        review.status.connect(self.show_status)
        review.error.connect(self.show_error)
        review.progress.connect(self._on_progress)
        review.progress_done.connect(self._on_progress_done)
        self.compare.status.connect(self.show_status)
        self.compare.error.connect(self.show_error)
        self.compare.progress.connect(self._on_progress)
        self.compare.progress_done.connect(self._on_progress_done)
        review.dataset_opened.connect(lambda spec: self._remember("datasets", spec))
        review.model_loaded.connect(self._on_model_loaded)
        self.training.finished.connect(self._on_trained)
        self.jobs.busy_changed.connect(self._on_busy)

    def _wire_editing(self) -> None:
        a, editing = self.actions, self.editing
        editing.store_provider = self.corrections.store
        self.edit_panel.use_actions(a.edit_mode, a.edit_tools, [a.undo, a.redo, a.set_ignore])
        a.edit_mode.toggled.connect(editing.set_enabled)
        editing.mode_changed.connect(self._on_edit_mode)
        for key, action in a.edit_tools.items():
            action.triggered.connect(lambda _=False, k=key: editing.set_tool(k))
        a.bigger_brush.triggered.connect(lambda: editing.resize_brush(1.25))
        a.smaller_brush.triggered.connect(lambda: editing.resize_brush(0.8))
        a.set_ignore.triggered.connect(editing.pick_ignore)
        a.undo.triggered.connect(editing.stack.undo)
        a.redo.triggered.connect(editing.stack.redo)
        editing.stack.canUndoChanged.connect(a.undo.setEnabled)
        editing.stack.canRedoChanged.connect(a.redo.setEnabled)
        a.undo.setEnabled(False)
        a.redo.setEnabled(False)
        editing.status.connect(self.show_status)
        editing.correction_saved.connect(self.record.correction_saved)
        editing.rescored.connect(self.compare.follow_edit)
        self.review.dataset_changed.connect(editing.refresh_classes)
        self.review.model_loaded.connect(lambda _spec: editing.refresh_classes())

    def _on_edit_mode(self, on: bool) -> None:
        """Edit mode shows the Edit panel; the menu item follows a mode set from elsewhere."""
        self.actions.edit_mode.setChecked(on)
        dock = self.docks["edit"]
        dock.setVisible(on)
        if on:
            dock.raise_()
            self.show_status("Edit mode: the left button paints the ground truth (M leaves it).")

    # --- public API (menus, tests, drag and drop) -----------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if self._autoload_pending:
            QTimer.singleShot(0, self, self._start_autoload)

    def _start_autoload(self) -> None:
        if self._autoload_pending:
            self._autoload_pending = False
            self.autoload()

    def autoload(self) -> None:
        """Open the demo dataset (validation split), then the demo model; predictions stream in."""
        self.review.autoload("demo")

    def open_dataset(self, spec: str) -> None:
        self.review.open_dataset(spec)

    def open_dataset_with_options(self) -> None:
        """Ask for a source and its options (Hub configuration, revision, columns, label convention)."""
        dialog = DatasetOptionsDialog(self.dataset_panel.spec.currentText(), self)
        if dialog.exec() == DatasetOptionsDialog.DialogCode.Accepted:
            self.review.open_dataset(dialog.spec(), dialog.options())

    def set_dataset(self, dataset: Any, split: str | None = None) -> None:
        self.review.set_dataset(dataset, split)

    def open_model(self, spec: str, device: str = "auto", image_size: int | None = None) -> None:
        self.review.open_model(spec, device, image_size)

    def show_training(self) -> None:
        """Run > Train (Ctrl+T): the Training panel with its settings, to check before Start (never a run
        started with settings nobody saw); while a run goes on, its progress."""
        dock = self.docks["training"]
        dock.show()
        dock.raise_()
        if self.training.running():
            self.show_status("Training is running: its progress is in the Training panel.")
        else:
            self.training_panel.start_button.setFocus()
            self.show_status("Check the training settings, then press Start training.")

    def show_pane(self, key: str) -> None:
        """Keys 1-4: that pane alone, large (the one-pane layout)."""
        if self.viewer.layout_mode != "single":
            self.viewer.set_layout("single")
        self.viewer.show_single(key)

    def _sync_layout_actions(self, _index: int = 0) -> None:
        self.actions.layouts[self.viewer.layout_mode].setChecked(True)

    def _update_cancel_actions(self) -> None:
        """Cancel items are enabled only while there is something to cancel."""
        self.actions.cancel.setEnabled(self.jobs.is_running("evaluate") or self.jobs.is_running("compare"))
        self.actions.cancel_training.setEnabled(self.training.running())

    def show_status(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setToolTip(text)
        self._message_timer.start()

    def show_error(self, info: ErrorInfo) -> None:
        self.errors.append(info)
        self.show_status(f"{info.title}: {info.message}")
        if not self._closing:
            dialogs.error_box(self, info)

    def ask_dataset(self) -> QInputDialog:
        """File > Open Dataset (Ctrl+O): a chooser of its own, so the shortcut never leaves focus in a text box
        that would swallow the next shortcuts' letters."""
        items = list(dict.fromkeys(["demo", *self.settings.recent("datasets")]))
        return self._ask("Open Dataset", "demo, a local folder or a Hub dataset id:", items, self.open_dataset)

    def ask_model(self) -> QInputDialog:
        """File > Open Model (Ctrl+Shift+O): demo, scratch, a checkpoint folder, a Hub id, or a recent one."""
        items = list(dict.fromkeys(["demo", "scratch", *self.settings.recent("models")]))
        return self._ask("Open Model", "demo, scratch, a checkpoint folder or a Hub model id:", items,
                         lambda spec: self.open_model(spec, self.model_panel.device.currentText()))

    def _ask(self, title: str, label: str, items: list[str], then) -> QInputDialog:
        dialog = QInputDialog(self)
        dialog.setWindowTitle(title)
        dialog.setLabelText(label)
        dialog.setComboBoxItems(items)
        dialog.setComboBoxEditable(True)
        dialog.setOkButtonText("Open")
        dialog.resize(520, dialog.sizeHint().height())
        dialog.textValueSelected.connect(lambda text: text.strip() and then(text.strip()))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _on_model_loaded(self, spec: str) -> None:
        if spec not in ("demo", "scratch"):
            self._remember("models", spec)
        self.training_panel.model_spec.setText(spec)

    def _on_trained(self, result: Any) -> None:
        """The new checkpoint is offered again next time (File > Open Recent, the model box)."""
        if result.final_checkpoint:
            self._remember("models", str(result.final_checkpoint))

    def warm_up(self) -> None:
        """Import the training stack in the background, once (see ``jobs.warm_up``)."""
        self._warmed = True
        self.jobs.submit("warm-up", jobs.warm_up, on_error=self.show_error)

    def _remember(self, kind: str, spec: str) -> None:
        self.settings.add_recent(kind, spec)
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        menu = self.actions.recent_menu
        menu.clear()
        datasets, models = self.settings.recent("datasets"), self.settings.recent("models")
        for spec in datasets:
            menu.addAction(f"Dataset: {spec}").triggered.connect(lambda _=False, s=spec: self.open_dataset(s))
        for spec in models:
            menu.addAction(f"Model: {spec}").triggered.connect(lambda _=False, s=spec: self.open_model(s))
        menu.setEnabled(bool(datasets or models))
        self.dataset_panel.set_recent(datasets)
        self.model_panel.set_recent(models)

    # --- progress -------------------------------------------------------------------------------------------

    def _on_progress(self, done: int, total: int, eta: float | None, label: str) -> None:
        self.job_progress.setRange(0, max(total, 1))
        self.job_progress.setValue(done)
        self.job_label.setText(f"{label} {done} / {total} — {format_eta(eta)}")
        for widget in (self.job_label, self.job_progress, self.job_cancel):
            widget.setVisible(True)

    def _on_progress_done(self, text: str) -> None:
        for widget in (self.job_label, self.job_progress, self.job_cancel):
            widget.setVisible(False)
        self.show_status(text)
        if not self._warmed and not self._closing:  # the first predictions are in: prepare for training
            self.warm_up()

    def _on_busy(self, busy: bool) -> None:
        if not busy and self._close_when_idle:
            QTimer.singleShot(0, self, self.close)

    # --- drag and drop --------------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.handle_paths(paths)

    def handle_paths(self, paths: list[str]) -> None:
        """A checkpoint folder is loaded as the model; image files and folders are predicted."""
        checkpoints = [p for p in paths if jobs.is_checkpoint_folder(p)]
        images = [p for p in paths if p not in checkpoints]
        if checkpoints:
            self.open_model(checkpoints[0])
        if images:
            self.show_status(f"Looking for images in {len(images)} dropped item(s)…")
            self.jobs.submit("find", lambda ctx: jobs.find_dropped_images(images),
                             on_result=self.review.add_dropped, on_error=self.show_error)

    # --- closing --------------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._closing and not self._may_drop_unsaved_edits():
            event.ignore()
            return
        if self.training.running() and not self._closing:
            question = "Training is running. Stop it after the current step and keep the model trained so far?"
            if not dialogs.ask(self, "Stop training?", question):
                event.ignore()
                return
        if self.jobs.is_running():
            self._closing = self._close_when_idle = True
            self.training.cancel()
            # Nothing new may start (a model that finishes loading must not start predicting), and the window
            # goes at once: a step that cannot be interrupted (reading weights, one batch) ends unseen.
            self.jobs.stop_all()
            self._save_view_settings()
            self.hide()
            event.ignore()  # closes itself when the last job has finished (_on_busy)
            return
        self._save_view_settings()
        self.editing.save_now(retry=False)
        self.editing.stop_retrying()
        self.loader.shutdown()
        self.record.close()
        hidden_while_closing = self._close_when_idle
        self._closing = True
        event.accept()
        if hidden_while_closing and not _other_visible_windows(self):
            self.last_window_closed.emit()

    def _may_drop_unsaved_edits(self) -> bool:
        """Save the edited mask now; if an edit still cannot be saved, closing loses it only when the person says so."""
        editing = self.editing
        if editing.save_now(settle=True) and not editing.unsaved():
            return True
        reason = editing.save_problem or "no corrections folder"
        question = (f"{editing.unsaved()} edited mask(s) could not be saved ({reason}). Close anyway and lose them? "
                    "Choose No to keep the window open, then free some space or pick another folder with "
                    "File > Corrections Folder.")
        return dialogs.ask(self, "Close without saving the edits?", question)

    def _save_view_settings(self) -> None:
        if not self._view_saved:  # once: a window hidden while closing saved its geometry before hiding
            self._view_saved = True
            self.settings.set("view/opacity", self.opacity.value())
            self.settings.set("view/analysis", self.viewer.analysis)
            self.settings.set("view/layout", self.viewer.layout_mode)
            self.settings.set("view/palette", self.review.palette)
            self.settings.set("view/image_list", self.dataset_panel.view_mode.currentText())
            self.settings.set("view/confidence_threshold", self.viewer.threshold_box.value())
            self.settings.save_window(self)

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Cancel and wait for every background thread (tests and the application's exit)."""
        self._closing = True
        self.jobs.shutdown(timeout_ms)
        return self.loader.shutdown(timeout_ms)


def _other_visible_windows(window: QMainWindow) -> list[QWidget]:
    """The visible top-level windows besides ``window``."""
    return [w for w in QApplication.topLevelWidgets() if w is not window and w.isWindow() and w.isVisible()]

"""Export wiring: the dialog's choice becomes an export job with a progress dialog and a clear outcome."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QMessageBox, QProgressDialog, QWidget

from segstudio import __version__
from segstudio.gui.controllers.review import ReviewController
from segstudio.gui.dialogs.export import ExportChoice, ExportDialog
from segstudio.gui.settings import AppSettings
from segstudio.gui.workers.export_job import ExportProgress, ExportRequest, ExportSummary, export_predictions
from segstudio.gui.workers.worker import ErrorInfo, JobRunner


def exported_box(parent: QWidget, summary: ExportSummary) -> QMessageBox:
    """A non-blocking note of what was written where, with a button that opens the folder."""
    box = QMessageBox(QMessageBox.Icon.Information, "Export finished",
                      f"Exported {summary.written} image(s) to {summary.output_dir}", parent=parent)
    box.setObjectName("export-finished")
    open_folder = box.addButton("Open Folder", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Close)
    folder = QUrl.fromLocalFile(str(summary.output_dir))
    open_folder.clicked.connect(lambda: QDesktopServices.openUrl(folder))
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.open()
    return box


def _number(value):
    return None if isinstance(value, float) and math.isnan(value) else value


class ExportController(QObject):
    """Runs exports for the review state; ``finished(summary)`` or the review's ``error`` when it fails."""

    finished = Signal(object)

    def __init__(self, window: QWidget, review: ReviewController, jobs: JobRunner, settings: AppSettings) -> None:
        super().__init__(window)
        self.window, self.review, self.jobs, self.settings = window, review, jobs, settings
        self.dialog: QProgressDialog | None = None
        self.last: ExportSummary | None = None
        self.done_box: QMessageBox | None = None

    def ask_and_export(self) -> None:
        results = self.review.results(create=False)
        has_metrics = results is not None and results.scored > 0
        folder = self.settings.get("export/folder", str(Path.home() / "segstudio-export"), str)
        formats = [f for f in str(self.settings.get("export/formats", "index")).split(",") if f]
        listed = self.review.panel.proxy.rowCount() if self.review.source is not None else None
        total = len(self.review.source) if self.review.source is not None else None
        dialog = ExportDialog(self.window, folder, self.review.source is not None, has_metrics, listed, total,
                              formats, bool(self.settings.get("export/metrics", True, bool)))
        if dialog.exec() == QDialog.DialogCode.Accepted:
            choice = dialog.choice()
            self.settings.set("export/folder", str(choice.output_dir))
            self.settings.set("export/formats", ",".join(choice.formats))
            self.settings.set("export/metrics", choice.metrics)
            self.export(choice)

    def export(self, choice: ExportChoice) -> bool:
        """Start the export job; False (with an error dialog) when there is nothing to export."""
        review = self.review
        problem = self._problem(choice)
        if problem:
            review.error.emit(ErrorInfo("Export", problem, "", "ExportError"))
            return False
        source, bundle = review.source, review.bundle
        results = review.results(create=False)
        if choice.listed_only:
            proxy = review.panel.proxy
            indices = sorted(proxy.entry_at(row) for row in range(proxy.rowCount()))
        else:
            indices = list(range(len(source))) if choice.whole_split else [review.row]
        request = ExportRequest(choice.output_dir, indices, choice.formats)
        if choice.metrics and results is not None and results.scored:
            request.metrics = self.metrics_payload(results)
            request.class_rows = request.metrics["per_class"]
        label_map, convention = review.label_map(), review.convention()
        self._show_progress(len(indices) if choice.formats else 0)
        self.jobs.submit(
            "export",
            lambda ctx: export_predictions(ctx, source, results, bundle, label_map, convention, request),
            on_progress=self._on_progress, on_result=self._on_result, on_error=self._on_error,
        )
        return True

    def _problem(self, choice: ExportChoice) -> str | None:
        review = self.review
        if review.source is None:
            return "Nothing to export: open a dataset or drop images first."
        if not choice.formats and not choice.metrics:
            return "Choose at least one mask format or the metrics."
        if not choice.whole_split and review.row is None:
            return "Select an image first."
        if review.bundle is None:
            return "Load a model first: the masks to export are its predictions."
        if self.jobs.is_running("export"):
            return "An export is already running."
        return None

    def metrics_payload(self, results) -> dict:
        """metrics.json: totals, per class, per image (NaN written as null by the core's writer)."""
        review = self.review
        names = review.label_map()
        metrics = results.metrics()
        rows = [
            {"class_id": r.class_id, "class_name": str(names.name(r.class_id)).strip(), "iou": r.iou,
             "accuracy": r.accuracy, "gt_pixels": r.gt_pixels, "pred_pixels": r.pred_pixels, "images": r.images}
            for r in results.class_rows()
        ]
        images = []
        for entry in review.source.entries:
            outcome = results.get(entry.index)
            if outcome is not None:
                images.append({"index": entry.index, "file_name": entry.file_name, "scene_category": entry.scene,
                               "mean_iou": _number(outcome.mean_iou),
                               "pixel_accuracy": _number(outcome.pixel_accuracy), "error": outcome.error})
        return {
            "segstudio_version": __version__,
            "dataset": getattr(review.dataset, "source", None),
            "split": review.source.split,
            "model": review.bundle.spec,
            "images_scored": results.scored,
            "images_total": results.total,
            **{k: v for k, v in metrics.items() if k in ("mean_iou", "mean_accuracy", "overall_accuracy")},
            "per_class": rows,
            "per_image": images,
        }

    def _show_progress(self, total: int) -> None:
        self.dialog = QProgressDialog("Exporting…", "Cancel", 0, max(total, 1), self.window)
        self.dialog.setWindowTitle("Export")
        self.dialog.setWindowModality(Qt.WindowModality.NonModal)
        self.dialog.setMinimumDuration(300)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self._cancel)
        self.dialog.setValue(0)

    def _cancel(self) -> None:
        self.jobs.cancel("export")

    def _on_progress(self, progress: ExportProgress) -> None:
        if self.dialog is not None:
            self.dialog.setMaximum(max(progress.total, 1))
            self.dialog.setValue(progress.done)
            self.dialog.setLabelText(f"Exporting {progress.done} of {progress.total}…")

    def _close_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.canceled.disconnect(self._cancel)
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None

    def _on_result(self, summary: ExportSummary) -> None:
        self._close_dialog()
        self.last = summary
        if summary.cancelled:
            self.review.status.emit(f"Export cancelled: {summary.output_dir} is as it was")
        else:
            self.review.status.emit(f"Exported {summary.written} image(s) to {summary.output_dir}")
            self.done_box = exported_box(self.window, summary)
        self.finished.emit(summary)

    def _on_error(self, info: ErrorInfo) -> None:
        self._close_dialog()
        self.review.error.emit(ErrorInfo("Export failed", info.message, info.details, info.kind))

"""Training wiring: the panel's request becomes a training job on a QThread; events flow back to the panel."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from segstudio.gui.controllers.review import ReviewController
from segstudio.gui.widgets.training_panel import TrainingPanel
from segstudio.gui.workers.train_job import TrainEvent, TrainRequest, run_training
from segstudio.gui.workers.worker import ErrorInfo, JobRunner

JOB = "train"


class TrainingController(QObject):
    """Start / cancel fine-tuning; ``finished(result)`` with the core's TrainResult."""

    finished = Signal(object)

    def __init__(self, parent: QObject, panel: TrainingPanel, review: ReviewController, jobs: JobRunner) -> None:
        super().__init__(parent)
        self.panel, self.review, self.jobs = panel, review, jobs
        self.result: Any = None
        panel.start_requested.connect(self.start)
        panel.cancel_requested.connect(self.cancel)
        panel.review_requested.connect(self.review_checkpoint)

    def running(self) -> bool:
        return self.jobs.is_running(JOB)

    def start_from_panel(self) -> None:
        self.start(self.panel.request())

    def start(self, request: TrainRequest) -> bool:
        dataset = self.review.dataset
        if dataset is None:
            self.review.error.emit(ErrorInfo("Training", "Open a dataset first: training uses its train split.",
                                             "", "NoDataset"))
            return False
        if self.running():
            self.review.status.emit("Training is already running.")
            return False
        if "train" not in dataset.splits:
            self.review.error.emit(ErrorInfo("Training", f"{dataset.source} has no train split.", "", "NoSplit"))
            return False
        if self.review.gate is not None and not self.review.gate("train", True):
            return False
        self.result = None
        self.panel.set_running(True)
        self.panel.append_log(f"output: {request.settings['output_dir']}")
        self.jobs.submit(JOB, lambda ctx: run_training(ctx, dataset, request),
                         on_progress=self._on_event, on_result=self._on_result, on_error=self._on_error)
        return True

    def cancel(self) -> None:
        if self.running():
            self.jobs.cancel(JOB)
            self.panel.set_cancelling()

    def _on_event(self, event: TrainEvent) -> None:
        self.panel.on_event(event)

    def _on_result(self, result: Any) -> None:
        self.result = result
        final = str(result.final_checkpoint) if result.final_checkpoint else None
        self.panel.set_finished([str(p) for p in result.checkpoints], result.cancelled, final)
        skipped = getattr(result, "skipped_items", {})
        for name, reason in skipped.items():
            self.panel.append_log(f"skipped {name}: {reason}")
        state = "cancelled; the model so far is saved" if result.cancelled else "finished"
        left_out = f" ({len(skipped)} unreadable item(s) left out, see the log)" if skipped else ""
        self.review.status.emit(f"Training {state}: {final or result.output_dir}{left_out}")
        self.finished.emit(result)

    def _on_error(self, info: ErrorInfo) -> None:
        self.panel.set_failed(info.message)
        self.review.error.emit(ErrorInfo("Training failed", info.message, info.details, info.kind))

    def review_checkpoint(self, path: str) -> None:
        """Load a checkpoint for review; the shown split is evaluated with it."""
        self.review.open_model(path)

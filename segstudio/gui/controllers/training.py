"""Training wiring: the panel's request becomes a training job on a QThread; events flow back to the panel."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from segstudio.core.training import completion_info
from segstudio.gui.controllers.review import ReviewController
from segstudio.gui.settings import AppSettings
from segstudio.gui.widgets.training_panel import TrainingPanel
from segstudio.gui.workers.train_job import TrainEvent, TrainRequest, run_final_evaluation, run_training
from segstudio.gui.workers.worker import ErrorInfo, JobRunner

JOB = "train"
FINAL_EVAL_JOB = "final-evaluation"
EVALUATE_ON_CANCEL = "training/evaluate_on_cancel"


class TrainingController(QObject):
    """Start / cancel fine-tuning; ``finished(result)`` with the core's TrainResult. A run cancelled after a step
    can have its final weights scored (``final_scored(RunScore or None)``), by request or by the remembered box."""

    finished = Signal(object)
    final_scored = Signal(object)

    def __init__(self, parent: QObject, panel: TrainingPanel, review: ReviewController, jobs: JobRunner,
                 settings: AppSettings | None = None) -> None:
        super().__init__(parent)
        self.panel, self.review, self.jobs, self.settings = panel, review, jobs, settings
        self.result: Any = None
        self._run_dataset: Any = None
        self._final_step = 0
        panel.start_requested.connect(self.start)
        panel.cancel_requested.connect(self.cancel)
        panel.review_requested.connect(self.review_checkpoint)
        panel.final_evaluation_requested.connect(self.evaluate_final)
        if settings is not None:
            panel.evaluate_on_cancel.setChecked(bool(settings.get(EVALUATE_ON_CANCEL, False, bool)))
            panel.evaluate_on_cancel.toggled.connect(self._remember_evaluate_on_cancel)

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
        self._run_dataset = dataset
        self.panel.set_running(True)
        self.panel.append_log(f"output: {request.settings['output_dir']}")
        self.jobs.submit(JOB, lambda ctx: run_training(ctx, dataset, request),
                         on_progress=self._on_event, on_result=self._on_result, on_error=self._on_error)
        return True

    def cancel(self) -> None:
        if self.running():
            self.jobs.cancel(JOB)
            self.panel.set_cancelling()
        elif self.jobs.is_running(FINAL_EVAL_JOB):
            self.jobs.cancel(FINAL_EVAL_JOB)

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
        self._offer_final_evaluation(result)

    # --- the final evaluation of a cancelled run ---------------------------------------------------------

    def _offer_final_evaluation(self, result: Any) -> None:
        """After a cancel that followed at least one step, with validation images and no score for that step yet."""
        step = completion_info(result.final_checkpoint).get("step") if result.final_checkpoint else None
        split = self._run_dataset.splits.get("validation") if self._run_dataset is not None else None
        scored = any(x == step for x, _ in self.panel.iou_chart.values())
        if (not result.cancelled or not isinstance(step, int) or self.panel.steps_seen < 1 or scored
                or split is None or "annotation" not in split.column_names):
            return
        self._final_step = step
        self.panel.offer_final_evaluation(step)
        if self.panel.evaluate_on_cancel.isChecked():
            self.evaluate_final()

    def evaluate_final(self) -> bool:
        """Score the weights the cancelled run saved, in the background (Cancel stops it)."""
        if self.result is None or self._run_dataset is None or self.running():
            return False
        dataset, output = self._run_dataset, str(self.result.output_dir)
        worker = self.jobs.submit(FINAL_EVAL_JOB, lambda ctx: run_final_evaluation(ctx, dataset, output),
                                  on_result=self._on_final_score, on_error=self._on_final_error)
        if worker is not None:  # None while the window closes; the result arrives queued, after this
            self.panel.set_final_evaluating(self._final_step)
        return worker is not None

    def _on_final_score(self, score: Any) -> None:
        if score is None:
            self.panel.set_final_score(self._final_step, None, "final evaluation cancelled")
        else:
            self.panel.set_final_score(score.step, score.metrics)
        self.final_scored.emit(score)

    def _on_final_error(self, info: ErrorInfo) -> None:
        self.panel.set_final_score(self._final_step, None, f"final evaluation failed: {info.message}")
        self.review.error.emit(ErrorInfo("Final evaluation failed", info.message, info.details, info.kind))
        self.final_scored.emit(None)

    def _remember_evaluate_on_cancel(self, checked: bool) -> None:
        if self.settings is not None:
            self.settings.set(EVALUATE_ON_CANCEL, checked)

    def _on_error(self, info: ErrorInfo) -> None:
        self.panel.set_failed(info.message)
        self.review.error.emit(ErrorInfo("Training failed", info.message, info.details, info.kind))

    def review_checkpoint(self, path: str) -> None:
        """Load a checkpoint for review; the shown split is evaluated with it."""
        self.review.open_model(path)

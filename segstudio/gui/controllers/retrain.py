"""Close the loop: fine-tune the open model on the corrected data, then compare the new checkpoint with it.

Run > Fine-tune on Corrected Data starts training (the Training panel's settings) from the open model A on the
dataset as the window reads it, with its corrections; when the run finishes, the A/B review scores the shown split
with the new checkpoint as B, so the person sees what the fixes bought.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal


class RetrainController(QObject):
    """One fine-tune-and-compare at a time; ``compared(spec)`` when B's comparison has started."""

    compared = Signal(str)

    def __init__(self, window: Any, review: Any, training: Any, compare: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window, self.review, self.training, self.compare = window, review, training, compare
        self.pending: str | None = None  # the checkpoint waiting for A's evaluation before the comparison
        self._running = False
        self._asked_evaluation = False
        training.finished.connect(self._on_trained)
        review.progress_done.connect(self._compare_when_ready)

    def refusal(self) -> str | None:
        """Why the loop cannot start now (None: it can)."""
        dataset = self.review.dataset
        if dataset is None or self.review.bundle is None:
            return "open a dataset and the model to improve (A) first"
        if dataset.corrections is None or not dataset.corrections.items:
            return ("the dataset is read without corrections: correct some masks, or choose the folder they are in "
                    "(File > Corrections Folder…)")
        if self.training.running():
            return "training is already running"
        return None

    def start(self) -> bool:
        """Fine-tune model A on the corrected dataset with the Training panel's settings."""
        problem = self.refusal()
        if problem:
            self.review.status.emit(f"Fine-tune on corrected data: {problem}.")
            return False
        request = self.training.panel.request()
        request.model_spec = self.review.bundle.spec
        self.window.docks["training"].show()
        self.training.panel.append_log(f"fine-tuning {request.model_spec} on {self.review.dataset.corrections.items} "
                                       f"corrected mask(s) from {self.review.dataset.corrections.folder}")
        self._running = self.training.start(request)
        return self._running

    def _on_trained(self, result: Any) -> None:
        if not self._running:
            return  # a run started from the Training panel: nothing to compare
        self._running = False
        if result.cancelled or result.final_checkpoint is None:
            self.review.status.emit("Fine-tune on corrected data: the run did not finish; nothing to compare.")
            return
        self.pending, self._asked_evaluation = str(result.final_checkpoint), False
        self._compare_when_ready()

    def _compare_when_ready(self, *_args) -> None:
        """Compare as soon as the shown split is scored with model A (the A/B review needs A's predictions)."""
        if self.pending is None:
            return
        results = self.review.results(create=False)
        if results is None or not results.complete:
            if not self._asked_evaluation and not self.review.jobs.is_running("evaluate"):
                self._asked_evaluation = True  # once: a cancelled evaluation is not started again
                self.review.evaluate()
            return
        spec, self.pending = self.pending, None
        self.compare.compare_with(spec)
        self.compared.emit(spec)

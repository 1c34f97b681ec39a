"""Checkpoint A/B review in the GUI: score the shown split with checkpoint B in a worker and show the change.

A is the model already open (its predictions of the split are cached); B is loaded and scored in the job runner
by the core's ``evaluate_b`` (the B half of ``segstudio compare``), which also counts each image's pixels fixed /
broken by B. The class table gains IoU B and Δ columns, the image list can rank by B's net improvement or
regression, and the viewer's "Flips A→B" layer shows the image on screen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

from segstudio.gui.controllers.results import ImageOutcome, SplitResults, outcome_from, scored_against
from segstudio.gui.controllers.sources import SplitSource
from segstudio.gui.workers import jobs
from segstudio.gui.workers.worker import ErrorInfo

JOB = "compare"
CHOOSE_FOLDER = "Folder…"
RANK_TITLES = {"improved": "Net fixed", "regressed": "Net broken"}  # pixels, B against A


@dataclass
class CompareUpdate:
    """B's outcomes and flips since the last update."""

    tag: Any
    outcomes: list[ImageOutcome]
    flips: dict[int, tuple[int, int]]
    done: int
    total: int


@dataclass
class CompareOutcome:
    """How a comparison run ended."""

    tag: Any
    spec: str
    cancelled: bool
    done: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def run_comparison(ctx: Any, source: SplitSource, spec: str, device: str, predictions_a: dict[int, Any],
                   num_labels: int, tag: Any) -> CompareOutcome:
    """Load checkpoint B and score the split with it, counting flips against A's packed predictions (worker)."""
    bundle = jobs.load_model_bundle(spec, source.dataset, device)
    jobs.import_core("evaluate")
    from segstudio.core.evaluation import EvaluationCancelled, evaluate_b

    have = bundle.loaded.label_map.num_labels
    if have != num_labels:
        raise ValueError(f"checkpoint B predicts {have} classes but model A and the dataset have {num_labels}")
    batch: dict[str, Any] = {"outcomes": [], "flips": {}, "done": 0, "sent": 0.0}

    def flush() -> None:
        ctx.progress(CompareUpdate(tag, batch["outcomes"], batch["flips"], batch["done"], len(source)))
        batch.update(outcomes=[], flips={}, sent=time.monotonic())

    def on_image(result: Any, prediction: Any, counts: tuple[int, int] | None) -> None:
        if counts is not None:
            batch["flips"][result.index] = counts
        batch["outcomes"].append(outcome_from(result.index, prediction, result.confusion, result.error, have))
        batch["done"] += 1
        if time.monotonic() - batch["sent"] >= jobs.STREAM_INTERVAL_S:
            flush()

    try:
        result, _flips = evaluate_b(source.dataset, source.split, bundle.predictor,
                                    lambda i: predictions_a[i].unpack() if i in predictions_a else None,
                                    cancel=ctx.cancel_event, on_image=on_image)
    except EvaluationCancelled as stopped:
        flush()
        return CompareOutcome(tag, spec, True, batch["done"], list(stopped.partial.skipped))
    flush()
    return CompareOutcome(tag, spec, False, batch["done"], list(result.skipped))


class CompareController(QObject):
    """Owns one comparison: the shown split scored by checkpoint B, against the open model A."""

    status = Signal(str)
    error = Signal(object)  # ErrorInfo
    progress = Signal(int, int, object, str)
    progress_done = Signal(str)

    def __init__(self, window: QWidget, review: Any, jobs_runner: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window, self.review, self.jobs = window, review, jobs_runner
        self.class_table, self.image_model = review.class_table, review.image_model
        self.viewer, self.panel = review.viewer, review.panel
        self.tag: tuple[str, str] | None = None  # (model A token, source token) of the comparison shown
        self._run = 0  # which run the streamed updates must come from (an earlier run may still be stopping)
        self.spec = ""
        self.results: SplitResults | None = None
        self.flips: dict[int, tuple[int, int]] = {}
        self.complete = False
        self._refresh = QTimer(self, singleShot=True, interval=250, timeout=self.refresh)
        self.viewer.content_changed.connect(self.update_viewer)
        review.model_loaded.connect(self._check)
        review.dataset_opened.connect(self._check)
        self.panel.split_chosen.connect(self._check)
        self.class_table.rank_images.connect(self.rank)
        self.class_table.end_comparison.connect(self.clear)

    def active(self) -> bool:
        """A comparison of what is on screen (A and the split unchanged since it started)."""
        review = self.review
        return (self.tag is not None and review.bundle is not None and review.source is not None
                and self.tag == (review.bundle.token, review.source.token))

    def choose_checkpoint(self) -> QInputDialog:
        """Checkpoint B: demo, a recent checkpoint, a Hub id typed in, or a folder chosen with "Folder…"."""
        recent = self.window.settings.recent("models") if hasattr(self.window, "settings") else []
        dialog = QInputDialog(self.window)
        dialog.setWindowTitle("Compare with checkpoint B")
        dialog.setLabelText("Checkpoint B: demo, a recent checkpoint, a folder or a Hub model id")
        dialog.setComboBoxItems([*dict.fromkeys([*recent, "demo"]), CHOOSE_FOLDER])
        dialog.setComboBoxEditable(True)
        dialog.setOkButtonText("Compare")
        dialog.resize(560, dialog.sizeHint().height())
        dialog.textValueSelected.connect(self._on_chosen)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _on_chosen(self, text: str) -> None:
        spec = text.strip()
        if spec == CHOOSE_FOLDER:
            spec = QFileDialog.getExistingDirectory(self.window, "Compare with a checkpoint folder (B)")
        if spec:
            self.compare_with(spec)

    def _refusal(self) -> str | None:
        review = self.review
        results = review.results(create=False)
        if review.bundle is None or review.source is None:
            return "Open a dataset and a model (A) first."
        if not isinstance(review.source, SplitSource) or results is None or (results.done and not results.scored):
            return "Comparing needs a split with ground truth."
        if not results.complete:
            return "Wait until the split is evaluated with the open model (A), then compare."
        return None

    def compare_with(self, spec: str, device: str = "auto") -> None:
        """Load checkpoint ``spec`` as B and score the shown split with it in the background."""
        problem = self._refusal()
        if problem:
            self.status.emit(f"Compare: {problem}")
            return
        if self.review.gate is not None and not self.review.gate("compare", True):
            return
        review = self.review
        self.clear()
        results_a = review.results(create=False)
        predictions_a = {i: o.prediction for i, o in results_a.outcomes.items() if o.prediction is not None}
        num_labels = review.bundle.loaded.label_map.num_labels
        self.tag, self.spec, self.complete = (review.bundle.token, review.source.token), spec, False
        self.results = SplitResults(num_labels, review.ignore_index(), len(review.source))
        self._run += 1
        source, tag = review.source, (*self.tag, self._run)
        self.status.emit(f"Comparing with {spec}…")
        self.progress.emit(0, len(source), None, "Comparing")
        self.jobs.submit(JOB, lambda ctx: run_comparison(ctx, source, spec, device, predictions_a, num_labels, tag),
                         on_progress=self._on_update, on_result=self._on_done, on_error=self._on_error)

    def cancel(self) -> None:
        self.jobs.cancel(JOB)

    def _on_update(self, update: CompareUpdate) -> None:
        if self.tag is None or update.tag != (*self.tag, self._run) or self.results is None:
            return
        for outcome in update.outcomes:
            self.results.add(outcome)
        self.flips.update(update.flips)
        edited = self.review.edited_mask
        for outcome in update.outcomes if edited is not None else ():
            mask = edited(self.tag[1], outcome.index)  # an image edited before B reached it
            if mask is not None:
                self._score_b(outcome.index, mask)
        self.progress.emit(update.done, update.total, None, "Comparing")
        if not self._refresh.isActive():
            self._refresh.start()

    def follow_edit(self, source: Any, row: int, mask: np.ndarray) -> None:
        """B's score and flips of an image whose ground truth was just edited, against the edited mask."""
        if self.results is not None and self.tag is not None and self.tag[1] == source.token \
                and self._score_b(row, mask):
            self.refresh()

    def _score_b(self, row: int, mask: np.ndarray) -> bool:
        """Re-score B's outcome of ``row`` and its flips against ``mask``; False when B has not scored it yet."""
        from segstudio.core.evaluation import flip_counts

        outcome_b, ignore_index = self.results.get(row), self.review.ignore_index()
        edited = scored_against(outcome_b, mask, ignore_index) if outcome_b is not None else None
        if edited is None:
            return False
        self.results.replace(edited)
        results_a = self.review.cache.get(*self.tag)
        outcome_a = results_a.get(row) if results_a is not None else None
        if row in self.flips and outcome_a is not None and outcome_a.prediction is not None:
            self.flips[row] = flip_counts(outcome_a.prediction.unpack(), outcome_b.prediction.unpack(), mask,
                                          ignore_index)
        return True

    def _on_done(self, outcome: CompareOutcome) -> None:
        if self.tag is None or outcome.tag != (*self.tag, self._run) or self.results is None:
            return
        self.complete = not outcome.cancelled
        self.refresh()
        self.class_table.sort_by_delta()
        if outcome.cancelled:
            self.progress_done.emit("Comparison cancelled")
            return
        a, b = self.review.results(create=False).metrics()["mean_iou"], self.results.metrics()["mean_iou"]
        text = f"Compared with {outcome.spec}: mean IoU A {100 * a:.1f}% → B {100 * b:.1f}% ({100 * (b - a):+.1f})"
        self.progress_done.emit(text + (f"; {len(outcome.skipped)} skipped" if outcome.skipped else ""))

    def _on_error(self, info: ErrorInfo) -> None:
        self.progress_done.emit(f"Comparison failed: {info.message}")
        self.tag = None
        self.error.emit(ErrorInfo("Compare with checkpoint", info.message, info.details, info.kind))

    def _check(self, *_args) -> None:
        if self.tag is not None and not self.active():
            self.clear()

    def clear(self) -> None:
        """End the comparison: cancel B's run, drop its columns, ranking and flips."""
        ended = self.tag is not None
        if self.jobs.is_running(JOB):
            self.cancel()
        self.tag, self.results, self.flips, self.complete = None, None, {}, False
        self.class_table.set_comparison(None)
        self.image_model.set_flips(None)
        rank = self.image_model.rank
        if rank is not None and rank[0] in RANK_TITLES:
            self.review.rank_by_class(-1)
        self.viewer.set_flips(None)
        if ended:  # the status bar must not go on showing B's figures
            self.status.emit("A/B comparison ended")

    def refresh(self) -> None:
        """Push B's per-class IoU and the per-image flips into the table, list and viewer."""
        self._refresh.stop()
        if not self.active() or self.results is None:
            return
        iou_b = {row.class_id: row.iou for row in self.results.class_rows()} if self.results.scored else {}
        done = "" if self.complete else f" (so far {self.results.done} of {self.results.total})"
        fixed = sum(f for f, _ in self.flips.values())
        broken = sum(b for _, b in self.flips.values())
        name = Path(self.spec).name or self.spec
        note = f"A/B with B = {name}{done}: {fixed:,} px fixed, {broken:,} px broken by B"
        results_a = self.review.results(create=False)
        if self.results.scored and results_a is not None and results_a.scored:  # the headline figure, beside A's
            a, b = results_a.metrics()["mean_iou"], self.results.metrics()["mean_iou"]
            note = f"<b>mean IoU B {100 * b:.1f}%</b> (A {100 * a:.1f}%, {100 * (b - a):+.1f}). " + note
        self.class_table.set_comparison(iou_b, note)
        self.image_model.set_flips(self.flips)
        self.update_viewer()

    def rank(self, kind: str) -> None:
        """Rank the image list by B's net improvement ("improved") or regression ("regressed")."""
        if not self.active():
            self.status.emit("Compare: no comparison for this split and model.")
            return
        title = RANK_TITLES[kind]
        self.image_model.set_flips(self.flips)
        self.image_model.set_rank((kind,), title)
        self.panel.set_ranking(title)
        self.panel.select_proxy_row(0)
        self.viewer.set_analysis("flips")

    def flip_map(self) -> np.ndarray | None:
        """The flip map of the image on screen (None without a comparison or B's prediction of it)."""
        content = self.viewer.content
        if not self.active() or content is None or content.index is None or self.results is None:
            return None
        outcome = self.results.get(content.index)
        if outcome is None or outcome.prediction is None or content.ground_truth is None or content.prediction is None:
            return None
        if outcome.prediction.shape != content.ground_truth.shape:  # the next image is still being decoded
            return None
        from segstudio.core.evaluation import flip_map

        return flip_map(content.prediction, outcome.prediction.unpack(), content.ground_truth, content.ignore_index)

    def update_viewer(self) -> None:
        flips = self.flip_map()
        if flips is not None or self.viewer.flips is not None:
            self.viewer.set_flips(flips)

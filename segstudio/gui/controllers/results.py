"""Predictions and scores of one (model, image source) pair, filled as a worker streams them in (no Qt).

Predictions are kept as compressed uint8 masks and scores as the core's sparse per-image confusions, never
logits; the running confusion matrix is the core's :class:`ConfusionMatrix`, so the totals are the core's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from segstudio.gui.controllers.sources import PackedMask


@dataclass
class ImageOutcome:
    """One predicted image: its mask, its sparse confusion (None without ground truth) and per-class areas.

    The areas are computed once (in the worker), so ranking thousands of images by a class is array lookups.
    """

    index: int
    prediction: PackedMask | None
    confusion: Any | None
    pred_area: np.ndarray | None
    error: str | None = None
    gt_area: np.ndarray | None = None
    intersect: np.ndarray | None = None
    mean_iou: float = math.nan
    pixel_accuracy: float = math.nan

    def has_class(self, class_id: int) -> bool:
        """In the ground truth (or, without one, in the prediction)."""
        area = self.gt_area if self.gt_area is not None else self.pred_area
        return area is not None and 0 <= class_id < len(area) and bool(area[class_id] > 0)

    def class_errors(self, class_id: int) -> int:
        """Pixels wrong for ``class_id`` in this image: missed (FN) plus wrongly claimed (FP); -1 if absent."""
        if self.gt_area is None or self.pred_area is None:
            return -1
        gt, pred = int(self.gt_area[class_id]), int(self.pred_area[class_id])
        if gt == 0 and pred == 0:
            return -1
        return gt + pred - 2 * int(self.intersect[class_id])

    def pair_pixels(self, gt: int, pred: int) -> int:
        """Pixels of ground-truth ``gt`` predicted as ``pred``."""
        return 0 if self.confusion is None else int(self.confusion.count(gt, pred))


def outcome_from(index: int, prediction: np.ndarray | None, confusion: Any, error: str | None,
                 num_labels: int) -> ImageOutcome:
    """Pack a prediction and compute its areas for keeping (called in the worker thread)."""
    if prediction is None:
        return ImageOutcome(index, None, confusion, None, error)
    outcome = ImageOutcome(index, PackedMask.pack(prediction), confusion, None, error)
    if confusion is not None:
        outcome.gt_area, outcome.pred_area = confusion.label_area, confusion.pred_area
        outcome.intersect = confusion.intersect
        outcome.mean_iou, outcome.pixel_accuracy = float(confusion.mean_iou), float(confusion.pixel_accuracy)
    else:
        outcome.pred_area = np.bincount(prediction.ravel(), minlength=num_labels)[:num_labels]
    return outcome


def rescored(outcome: ImageOutcome, confusion: Any) -> ImageOutcome:
    """The same prediction scored against another ground truth (an edited mask): its confusion and areas."""
    return dataclasses.replace(outcome, confusion=confusion, gt_area=confusion.label_area,
                               pred_area=confusion.pred_area, intersect=confusion.intersect,
                               mean_iou=float(confusion.mean_iou), pixel_accuracy=float(confusion.pixel_accuracy))


def scored_against(outcome: ImageOutcome, labels: np.ndarray, ignore_index: int) -> ImageOutcome | None:
    """The outcome's prediction scored against ``labels`` (model ids, as the evaluation scores an image); None
    without a prediction and a score to replace, or for labels of another size."""
    from segstudio.core.metrics import ConfusionMatrix

    if outcome.prediction is None or outcome.confusion is None or outcome.prediction.shape != labels.shape:
        return None
    matrix = ConfusionMatrix(outcome.confusion.num_labels, ignore_index)
    return rescored(outcome, matrix.update(outcome.prediction.unpack(), labels))


class SplitResults:
    """Everything predicted so far for one source with one model."""

    def __init__(self, num_labels: int, ignore_index: int, total: int) -> None:
        from segstudio.core.metrics import ConfusionMatrix

        self.num_labels = num_labels
        self.total = total
        self.outcomes: dict[int, ImageOutcome] = {}
        self._matrix = ConfusionMatrix(num_labels, ignore_index)
        self.images_per_class = np.zeros(num_labels, dtype=np.int64)
        self.complete = False
        self.errors: list[tuple[int, str]] = []
        self.label_issues: Any = None  # the core's LabelIssueReport once the whole split is evaluated

    def add(self, outcome: ImageOutcome) -> None:
        if outcome.index in self.outcomes:
            return
        self.outcomes[outcome.index] = outcome
        if outcome.error:
            self.errors.append((outcome.index, outcome.error))
        self._count(outcome, 1)

    def replace(self, outcome: ImageOutcome) -> None:
        """Put ``outcome`` in place of its image's (an edited mask re-scored it): the old confusion leaves the
        running matrix and the per-class image counts, the new one joins them (integers: undo gives back
        exactly the numbers before)."""
        old = self.outcomes.get(outcome.index)
        if old is None:
            self.add(outcome)
            return
        self._count(old, -1)
        self.outcomes[outcome.index] = outcome
        self.errors = [(i, e) for i, e in self.errors if i != outcome.index]
        if outcome.error:
            self.errors.append((outcome.index, outcome.error))
        self._count(outcome, 1)

    def _count(self, outcome: ImageOutcome, sign: int) -> None:
        if outcome.confusion is None:
            return
        if sign > 0:
            self._matrix.add(outcome.confusion)
        else:
            self._matrix.remove(outcome.confusion)
        self.images_per_class[outcome.gt_area > 0] += sign

    def get(self, index: int) -> ImageOutcome | None:
        return self.outcomes.get(index)

    @property
    def done(self) -> int:
        return len(self.outcomes)

    @property
    def scored(self) -> int:
        return sum(1 for o in self.outcomes.values() if o.confusion is not None)

    @property
    def matrix(self) -> np.ndarray:
        return self._matrix.matrix

    def metrics(self) -> dict:
        """The core's ``compute()`` on the running matrix (NaN-filled before anything is scored)."""
        return self._matrix.compute()

    def class_rows(self) -> list:
        from segstudio.core.metrics import class_table

        return class_table(self.matrix, self.images_per_class)

    def top_confusions(self, k: int = 20) -> list[tuple[int, int, int, float]]:
        from segstudio.core.metrics import top_confusions

        return [tuple(item) for item in top_confusions(self.matrix, k)]

    def missing(self) -> list[int]:
        return [i for i in range(self.total) if i not in self.outcomes]


class ResultsCache:
    """``SplitResults`` per (model token, source token): browsing back to a split is instant.

    At most ``capacity`` pairs are kept; the least recently shown goes first (each group of dropped images is
    a source of its own, so a long session of drops would otherwise keep every group's predictions).
    """

    def __init__(self, capacity: int = 12) -> None:
        self.capacity = max(1, capacity)
        self._items: dict[tuple[str, str], SplitResults] = {}  # oldest first

    def __len__(self) -> int:
        return len(self._items)

    def get(self, model_token: str, source_token: str) -> SplitResults | None:
        key = (model_token, source_token)
        found = self._items.pop(key, None)
        if found is not None:
            self._items[key] = found  # now the most recent
        return found

    def put(self, model_token: str, source_token: str, results: SplitResults) -> None:
        self._items.pop((model_token, source_token), None)
        self._items[(model_token, source_token)] = results
        while len(self._items) > self.capacity:
            del self._items[next(iter(self._items))]

    def retain(self, source_tokens: set[str]) -> None:
        """Forget the results of every other source (a new dataset was opened)."""
        for key in [k for k in self._items if k[1] not in source_tokens]:
            del self._items[key]

    def drop_model(self, model_token: str) -> None:
        for key in [k for k in self._items if k[0] == model_token]:
            del self._items[key]

    def clear(self) -> None:
        self._items.clear()

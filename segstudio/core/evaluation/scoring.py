"""Scoring a split through the one inference path: totals, per image, per class and per scene."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from segstudio.core.data.imageio import ImageReadError, read_pair, stored_cells
from segstudio.core.data.label_guard import refuse_double_reduction
from segstudio.core.data.schema import DataSourceError, SegDataset
from segstudio.core.inference.predictor import Predictor
from segstudio.core.metrics.confusion import ClassStats, ConfusionMatrix, ImageConfusion, class_table
from segstudio.core.model import ModelLoadError

if TYPE_CHECKING:
    from segstudio.core.review.label_issues import LabelIssueCollector


class EvaluationCancelled(Exception):
    """The person cancelled; what was scored so far is in ``partial``."""

    def __init__(self, partial: EvaluationResult) -> None:
        super().__init__("evaluation cancelled")
        self.partial = partial


@dataclass
class ImageResult:
    """One image's outcome: its sparse confusion (None without ground truth) or why it was skipped."""

    index: int
    file_name: str
    scene: str
    confusion: ImageConfusion | None = None
    prediction: np.ndarray | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def mean_iou(self) -> float:
        return float(self.confusion.mean_iou) if self.confusion is not None else float("nan")

    @property
    def pixel_accuracy(self) -> float:
        return float(self.confusion.pixel_accuracy) if self.confusion is not None else float("nan")


@dataclass
class EvaluationResult:
    """Everything ``evaluate`` reports; ``metrics`` has the keys and numbers of evaluate's ``mean_iou``."""

    matrix: np.ndarray
    images: list[ImageResult]
    skipped: list[tuple[str, str]]
    metrics: dict
    images_per_class: np.ndarray
    scene_names: list[str]
    confusion: ConfusionMatrix | None = None

    def class_rows(self) -> list[ClassStats]:
        """Per-class rows from the same areas as ``metrics`` (out-of-range pixels included, as evaluate does)."""
        return class_table(self.confusion if self.confusion is not None else self.matrix, self.images_per_class)

    def by_scene(self) -> dict[str, dict]:
        """Metrics per scene_category, from the per-image confusions."""
        per_scene: dict[str, ConfusionMatrix] = {}
        num_labels = self.matrix.shape[0]
        for image in self.images:
            if image.confusion is None:
                continue
            per_scene.setdefault(image.scene, ConfusionMatrix(num_labels)).add(image.confusion)
        return {
            scene: {**matrix.compute(), "images": sum(1 for i in self.images if i.scene == scene and i.confusion)}
            for scene, matrix in sorted(per_scene.items())
        }


def _load_row(index: int, row: dict, dataset: SegDataset, scenes: list[str]) -> tuple[ImageResult, object, object]:
    """The row's image and mask (model ids), read by the one image / mask reader; ImageReadError if unusable."""
    scene_id = row.get("scene_category")
    scene = scenes[scene_id] if isinstance(scene_id, int) and 0 <= scene_id < len(scenes) else ""
    result = ImageResult(index=index, file_name=str(row.get("file_name", index)), scene=scene)
    image, stored = read_pair(row["image"], row.get("annotation"))
    if stored is None:
        return result, image, None
    mask = dataset.convention.to_model_ids(stored)
    stray = dataset.convention.stray_values(stored, dataset.label_map.num_labels)
    if stray.size:
        result.warnings.append(f"values beyond the label map: {stray.tolist()[:10]}")
    return result, image, mask


def _refuse_what_cannot_be_scored(dataset: SegDataset, split: str, predictor: Predictor, limit: int | None) -> None:
    """A split the dataset lacks, a ``limit`` below 1 or a model of another class count: one line, before any work
    (the command line refuses them too; a model's class k is not the dataset's class k when the counts differ)."""
    if split not in dataset.splits:
        raise DataSourceError(f"{dataset.source} has no {split} split (it has: {', '.join(dataset.splits)})")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataSourceError(f"limit must be a whole number of at least 1 (or None for every image), got {limit!r}")
    have, want = getattr(predictor, "num_labels", None), dataset.label_map.num_labels
    if have is not None and have != want:
        raise ModelLoadError(f"the model predicts {have} classes but the dataset's label map has {want}; pass "
                             "--label-map or --reduce-labels/--no-reduce-labels to match")


def evaluate_split(
    dataset: SegDataset,
    split: str,
    predictor: Predictor,
    *,
    limit: int | None = None,
    on_image: Callable[[ImageResult], None] | None = None,
    cancel: threading.Event | None = None,
    keep_predictions: bool = True,
    label_issues: LabelIssueCollector | None = None,
    shard: tuple[int, int] | None = None,
) -> EvaluationResult:
    """Predict and score every image of ``split`` (unannotated images are predicted, not scored).

    Raises ``LabelConventionError`` before any work when the masks are already reduced and reduce_labels is on,
    ``LabelMapError`` when the ignore index 255 is also a class (more than 255 classes). With ``label_issues``,
    each annotated image also goes into that collector (``segstudio.core.review.label_issues``) in the same pass.
    ``shard=(rank, world)`` scores only the images whose index is ``rank`` modulo ``world`` (one process of
    several, see ``segstudio.core.evaluation.distributed``).
    """
    _refuse_what_cannot_be_scored(dataset, split, predictor, limit)
    refuse_double_reduction(dataset, split)
    num_labels = dataset.label_map.num_labels
    dataset.convention.require_ignore_outside(num_labels)
    matrix = ConfusionMatrix(num_labels, dataset.convention.ignore_index)
    scenes = dataset.scene_names(split)
    images: list[ImageResult] = []
    skipped: list[tuple[str, str]] = []
    images_per_class = np.zeros(num_labels, dtype=np.int64)
    pending: dict[int, tuple[ImageResult, np.ndarray | None]] = {}

    rows = stored_cells(dataset.splits[split])
    count = len(rows) if limit is None else min(limit, len(rows))

    def inputs():
        for index in range(count) if shard is None else range(shard[0], count, shard[1]):
            if cancel is not None and cancel.is_set():
                return
            row = rows[index]
            try:
                result, image, mask = _load_row(index, row, dataset, scenes)
            except ImageReadError as exc:
                name, reason = str(row.get("file_name", index)), exc.reason
                failed = ImageResult(index=index, file_name=name, scene="", error=reason)
                skipped.append((name, reason))
                images.append(failed)
                if on_image:
                    on_image(failed)
                continue
            pending[index] = (result, mask)
            yield index, image

    stream = (predictor.predict_iter(inputs()) if label_issues is None
              else label_issues.scan(predictor, inputs(), lambda key: pending[key][1]))
    for index, prediction in stream:
        result, mask = pending.pop(index)
        if mask is not None:
            result.confusion = matrix.update(prediction, mask)
            present = result.confusion.label_area > 0
            images_per_class[present] += 1
        if keep_predictions:
            result.prediction = prediction
        images.append(result)
        if on_image:
            on_image(result)
    images.sort(key=lambda item: item.index)
    outcome = EvaluationResult(
        matrix=matrix.matrix.copy(),
        images=images,
        skipped=skipped,
        metrics=matrix.compute(),
        images_per_class=images_per_class,
        scene_names=scenes,
        confusion=matrix,
    )
    if cancel is not None and cancel.is_set():
        raise EvaluationCancelled(outcome)
    return outcome

"""Checkpoint A/B review on one split: per-class IoU of both models, and per image the pixels B fixed or broke.

Both models are scored by the core's ``evaluate_split`` (one evaluation loop); this module only keeps A's
predictions (zlib-compressed) long enough to compare B's with them, pixel by pixel, against the ground truth.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from segstudio.core.data.imageio import ImageReadError, read_mask, stored_cells
from segstudio.core.data.schema import SegDataset
from segstudio.core.evaluation.scoring import EvaluationResult, ImageResult, evaluate_split
from segstudio.core.inference.predictor import Predictor
from segstudio.core.labels.label_map import IGNORE_INDEX
from segstudio.core.metrics.confusion import ClassStats

UNCHANGED, FIXED, BROKEN = 0, 1, 2


def flip_map(pred_a: np.ndarray, pred_b: np.ndarray, ground_truth: np.ndarray,
             ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """uint8 (H, W): 0 unchanged, 1 fixed by B (A wrong, B right), 2 broken by B (A right, B wrong).

    Ignored pixels are always 0.
    """
    gt = np.asarray(ground_truth)
    if not (np.shape(pred_a) == np.shape(pred_b) == gt.shape):
        raise ValueError(f"shapes differ: A {np.shape(pred_a)}, B {np.shape(pred_b)}, ground truth {gt.shape}")
    valid = gt != ignore_index
    right_a = (np.asarray(pred_a) == gt) & valid
    right_b = (np.asarray(pred_b) == gt) & valid
    flips = np.zeros(gt.shape, dtype=np.uint8)
    flips[right_b & ~right_a] = FIXED
    flips[right_a & ~right_b] = BROKEN
    return flips


def flip_counts(pred_a: np.ndarray, pred_b: np.ndarray, ground_truth: np.ndarray,
                ignore_index: int = IGNORE_INDEX) -> tuple[int, int]:
    """(fixed, broken): pixels wrong→right and right→wrong from A to B (ignored pixels excluded)."""
    counts = np.bincount(flip_map(pred_a, pred_b, ground_truth, ignore_index).ravel(), minlength=3)
    return int(counts[FIXED]), int(counts[BROKEN])


@dataclass(frozen=True)
class ClassChange:
    """One class's IoU with A and with B (NaN where undefined)."""

    class_id: int
    iou_a: float
    iou_b: float

    @property
    def delta(self) -> float:
        return self.iou_b - self.iou_a


@dataclass(frozen=True)
class ImageFlips:
    """One scored image: pixels B fixed and broke, and both models' mean IoU on it."""

    index: int
    file_name: str
    fixed: int
    broken: int
    mean_iou_a: float = math.nan
    mean_iou_b: float = math.nan

    @property
    def net(self) -> int:
        """Net improvement in pixels (fixed minus broken)."""
        return self.fixed - self.broken


def class_changes(rows_a: list[ClassStats], rows_b: list[ClassStats]) -> list[ClassChange]:
    """Pair the per-class rows of two evaluations of the same label map."""
    if len(rows_a) != len(rows_b):
        raise ValueError(f"the models have {len(rows_a)} and {len(rows_b)} classes")
    return [ClassChange(a.class_id, float(a.iou), float(b.iou)) for a, b in zip(rows_a, rows_b, strict=True)]


def by_delta(changes: list[ClassChange]) -> list[ClassChange]:
    """Largest IoU gain first, largest loss last; classes without a defined change at the end."""
    return sorted(changes, key=lambda c: (math.isnan(c.delta), -c.delta if not math.isnan(c.delta) else 0.0))


def ground_truth(dataset: SegDataset, split: str, index: int, rows=None) -> np.ndarray | None:
    """The row's mask as model ids (the one mask reader, then the dataset's convention), or None without one.

    ``rows``: the split's annotation column as :func:`stored_cells` gives it, when the caller keeps one.
    """
    if rows is None:
        if "annotation" not in dataset.splits[split].column_names:
            return None
        rows = stored_cells(dataset.splits[split].select_columns(["annotation"]))
    annotation = rows[index]["annotation"]
    return None if annotation is None else dataset.convention.to_model_ids(read_mask(annotation))


class FlipCounter:
    """Counts, as B's results arrive, the pixels B fixed and broke against A's prediction of the same image."""

    def __init__(self, dataset: SegDataset, split: str, prediction_a: Callable[[int], np.ndarray | None]) -> None:
        self.dataset, self.split, self.prediction_a = dataset, split, prediction_a
        self.flips: dict[int, tuple[int, int]] = {}
        rows = dataset.splits[split]
        self._masks = (stored_cells(rows.select_columns(["annotation"])) if "annotation" in rows.column_names
                       else None)

    def add(self, result_b: ImageResult, prediction_b: np.ndarray | None) -> tuple[int, int] | None:
        """(fixed, broken) for a scored image of B, or None (unscored, or no prediction of A)."""
        if result_b.confusion is None or prediction_b is None or self._masks is None:
            return None
        pred_a = self.prediction_a(result_b.index)
        if pred_a is None:
            return None
        try:
            mask = ground_truth(self.dataset, self.split, result_b.index, self._masks)
        except ImageReadError:  # B scored it, so the mask was readable; a file changed meanwhile
            return None
        if mask is None or mask.shape != np.shape(pred_a):
            return None
        counts = flip_counts(pred_a, prediction_b, mask, self.dataset.convention.ignore_index)
        self.flips[result_b.index] = counts
        return counts


@dataclass
class Comparison:
    """What ``compare_split`` reports: both evaluations, per-class changes and per-image flips."""

    split: str
    a: EvaluationResult
    b: EvaluationResult
    classes: list[ClassChange]
    images: list[ImageFlips] = field(default_factory=list)

    @property
    def skipped(self) -> dict[str, str]:
        """Unreadable rows, left out of both evaluations: file name -> reason."""
        return dict(self.a.skipped + self.b.skipped)

    @property
    def mean_iou_delta(self) -> float:
        return float(self.b.metrics["mean_iou"]) - float(self.a.metrics["mean_iou"])

    def most_improved(self, count: int = 5) -> list[ImageFlips]:
        return sorted((i for i in self.images if i.net > 0), key=lambda i: (-i.net, i.index))[:count]

    def most_regressed(self, count: int = 5) -> list[ImageFlips]:
        return sorted((i for i in self.images if i.net < 0), key=lambda i: (i.net, i.index))[:count]

    def to_json_dict(self, label_map, model_a: str = "A", model_b: str = "B") -> dict:
        """per_class (A / B / delta IoU) and per_image (fixed, broken, net) as plain values."""
        return {
            "split": self.split, "model_a": model_a, "model_b": model_b,
            "mean_iou_a": self.a.metrics["mean_iou"], "mean_iou_b": self.b.metrics["mean_iou"],
            "mean_iou_delta": self.mean_iou_delta,
            "skipped": [{"file_name": name, "reason": reason} for name, reason in self.skipped.items()],
            "per_class": [
                {"class_id": c.class_id, "class_name": label_map.name(c.class_id), "iou_a": c.iou_a,
                 "iou_b": c.iou_b, "delta": c.delta}
                for c in self.classes
            ],
            "per_image": [
                {"index": i.index, "file_name": i.file_name, "fixed": i.fixed, "broken": i.broken, "net": i.net,
                 "mean_iou_a": i.mean_iou_a, "mean_iou_b": i.mean_iou_b}
                for i in self.images
            ],
        }


def _pack(ids: np.ndarray) -> tuple[tuple[int, ...], str, bytes]:
    ids = np.ascontiguousarray(ids)
    return ids.shape, ids.dtype.str, zlib.compress(ids.tobytes(), 1)


def _unpack(packed: tuple[tuple[int, ...], str, bytes]) -> np.ndarray:
    shape, dtype, data = packed
    return np.frombuffer(zlib.decompress(data), dtype=np.dtype(dtype)).reshape(shape)


def evaluate_b(
    dataset: SegDataset,
    split: str,
    predictor_b: Predictor,
    prediction_a: Callable[[int], np.ndarray | None],
    *,
    limit: int | None = None,
    cancel: threading.Event | None = None,
    on_image: Callable[[ImageResult, np.ndarray | None, tuple[int, int] | None], None] | None = None,
    shard: tuple[int, int] | None = None,
) -> tuple[EvaluationResult, dict[int, tuple[int, int]]]:
    """Evaluate B on ``split`` and count, per image, the pixels B fixed and broke against A's prediction.

    ``on_image(result, prediction, flips)`` after each image (``flips`` None when unscored). The one B half of a
    comparison: ``compare_split`` and the window's A/B review both call it. Raises ``EvaluationCancelled``.
    """
    counter = FlipCounter(dataset, split, prediction_a)

    def score(result: ImageResult) -> None:
        prediction, result.prediction = result.prediction, None
        counts = counter.add(result, prediction)
        if on_image:
            on_image(result, prediction, counts)

    result = evaluate_split(dataset, split, predictor_b, limit=limit, cancel=cancel, on_image=score, shard=shard)
    return result, counter.flips


def compare_split(
    dataset: SegDataset,
    split: str,
    predictor_a: Predictor,
    predictor_b: Predictor,
    *,
    limit: int | None = None,
    cancel: threading.Event | None = None,
    on_image: Callable[[str, ImageResult], None] | None = None,
    shard: tuple[int, int] | None = None,
) -> Comparison:
    """Evaluate A, then B, on ``split``; ``on_image("A" | "B", result)`` after each image.

    ``shard=(rank, world)``: only the images whose index is ``rank`` modulo ``world`` (see ``evaluate_split``).

    Raises ``EvaluationCancelled`` (with the partial evaluation of the model running) when cancelled.
    """
    kept: dict[int, tuple[tuple[int, ...], str, bytes]] = {}

    def keep_a(result: ImageResult) -> None:
        prediction, result.prediction = result.prediction, None
        if prediction is not None:
            kept[result.index] = _pack(prediction)
        if on_image:
            on_image("A", result)

    result_a = evaluate_split(dataset, split, predictor_a, limit=limit, cancel=cancel, on_image=keep_a, shard=shard)
    result_b, flips = evaluate_b(
        dataset, split, predictor_b, lambda index: _unpack(kept[index]) if index in kept else None,
        limit=limit, cancel=cancel, on_image=(lambda result, _p, _f: on_image("B", result)) if on_image else None,
        shard=shard)
    by_index_b = {image.index: image for image in result_b.images}
    images = [
        ImageFlips(image.index, image.file_name, *flips[image.index], image.mean_iou, by_index_b[image.index].mean_iou)
        for image in result_a.images
        if image.index in flips
    ]
    return Comparison(split, result_a, result_b, class_changes(result_a.class_rows(), result_b.class_rows()), images)

"""evaluate's ``mean_iou`` (metrics/mean_iou/mean_iou.py) re-implemented step by step: the baseline that tests and
``benchmarks/bench_metrics.py`` hold ``ConfusionMatrix`` to (same keys, same numbers).

As in current evaluate, every label_map entry reads the original labels (older scripts applied them in turn), and
``reduce_labels`` turns label 0 into 255 whatever the ignore index (``metrics.mean_iou`` says where that differs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from segstudio.core.labels.label_map import IGNORE_INDEX
from segstudio.core.metrics.confusion import quiet_nanmean


def reference_areas(
    pred: Any,
    label: Any,
    num_labels: int,
    ignore_index: int = IGNORE_INDEX,
    label_map: Mapping[int, int] | None = None,
    reduce_labels: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """evaluate's ``intersect_and_union`` for one image: (intersect, union, pred area, label area)."""
    pred = np.array(pred)
    label = np.array(label)
    if label_map is not None:
        original = label.copy()
        for old_id, new_id in label_map.items():
            label[original == old_id] = new_id
    if reduce_labels:
        label[label == 0] = 255
        label = label - 1
        label[label == 254] = 255
    mask = label != ignore_index
    mask = np.not_equal(label, ignore_index)  # evaluate computes the mask twice
    pred = pred[mask]
    label = np.array(label)[mask]  # and copies the labels once more before masking them
    intersect = pred[pred == label]
    bins = {"bins": num_labels, "range": (0, num_labels - 1)}
    area_intersect = np.histogram(intersect, **bins)[0]
    area_pred = np.histogram(pred, **bins)[0]
    area_label = np.histogram(label, **bins)[0]
    return area_intersect, area_pred + area_label - area_intersect, area_pred, area_label


def reference_mean_iou(
    preds: Iterable,
    labels: Iterable,
    num_labels: int,
    ignore_index: int = IGNORE_INDEX,
    nan_to_num: float | None = None,
    label_map: Mapping[int, int] | None = None,
    reduce_labels: bool = False,
) -> dict:
    """Hugging Face evaluate's ``mean_iou`` re-implemented faithfully (the slow baseline)."""
    totals = [np.zeros(num_labels, dtype=np.float64) for _ in range(4)]
    for pred, label in zip(preds, labels, strict=False):
        for total, area in zip(
            totals,
            reference_areas(pred, label, num_labels, ignore_index, label_map, reduce_labels),
            strict=True,
        ):
            total += area
    intersect, union, _pred, label_area = totals
    with np.errstate(divide="ignore", invalid="ignore"):
        all_acc = intersect.sum() / label_area.sum()
        iou = intersect / union
        acc = intersect / label_area
    metrics = {
        "mean_iou": quiet_nanmean(iou),
        "mean_accuracy": quiet_nanmean(acc),
        "overall_accuracy": all_acc,
        "per_category_iou": iou,
        "per_category_accuracy": acc,
    }
    if nan_to_num is not None:
        metrics = {key: np.nan_to_num(value, nan=nan_to_num) for key, value in metrics.items()}
    return metrics

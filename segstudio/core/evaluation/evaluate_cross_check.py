"""Cross-check our metrics with Hugging Face evaluate's ``mean_iou`` when it can be loaded."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from segstudio.core.data.schema import SegDataset
from segstudio.core.evaluation.scoring import EvaluationResult
from segstudio.core.labels.label_map import IGNORE_INDEX


def load_evaluate_mean_iou():
    """evaluate's metric, or None with the reason (it is fetched from the Hub unless cached).

    ``evaluate.load("mean_iou")`` first runs ``./mean_iou/mean_iou.py`` when the working folder has one: the load
    runs from an empty temporary folder, so the numbers checked against are evaluate's own.
    """
    previous = os.getcwd()
    try:
        import evaluate

        with tempfile.TemporaryDirectory(prefix="segstudio-cross-check-") as empty:
            os.chdir(empty)
            try:
                return evaluate.load("mean_iou"), ""
            finally:
                os.chdir(previous)
    except Exception as exc:  # evaluate raises many kinds when offline; all mean "not available"
        return None, f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def cross_check(result: EvaluationResult, dataset: SegDataset, split: str) -> str:
    """A one-paragraph report: evaluate's numbers against ours, or why they could not be computed.

    With reduce_labels and an ignore index other than 255, evaluate's own reduction turns label 0 into 255 (see
    ``metrics.mean_iou``), so its metric is given the labels as SegStudio reduced them, and the report says so.
    """
    metric, reason = load_evaluate_mean_iou()
    if metric is None:
        return (
            "cross-check: evaluate's mean_iou could not be loaded (it is fetched from the Hugging Face Hub and is "
            f"not cached here: {reason}); our metrics stand alone"
        )
    convention = dataset.convention
    reduce_first = convention.reduce_labels and convention.ignore_index != IGNORE_INDEX
    rows = dataset.splits[split]
    for image in result.images:
        if image.prediction is None or image.confusion is None:
            continue
        reference = np.asarray(rows[image.index]["annotation"])
        metric.add(prediction=image.prediction,
                   reference=convention.to_model_ids(reference) if reduce_first else reference)
    theirs = metric.compute(
        num_labels=dataset.label_map.num_labels,
        ignore_index=convention.ignore_index,
        reduce_labels=convention.reduce_labels and not reduce_first,
    )
    diffs = {key: abs(float(theirs[key]) - float(result.metrics[key])) for key in ("mean_iou", "mean_accuracy", "overall_accuracy")}
    worst = max(diffs.values())
    verdict = "agree" if worst < 1e-6 else "DIFFER"
    details = ", ".join(f"{k} {float(theirs[k]):.6f} vs {float(result.metrics[k]):.6f}" for k in diffs)
    note = (
        f" (labels reduced by SegStudio before evaluate saw them: evaluate's reduce_labels turns label 0 into 255, "
        f"not into the ignore index {convention.ignore_index})" if reduce_first else ""
    )
    return f"cross-check: evaluate's mean_iou and ours {verdict} (largest difference {worst:.2e}): {details}{note}"

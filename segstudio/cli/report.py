"""What the CLI prints: progress bars, training lines, metric tables and the evaluation JSON."""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from segstudio import __version__


@contextmanager
def progress_bar(total: int | None, label: str):
    """A progress bar on stderr (hidden when stderr is not a terminal and the run is short, and on every process
    but rank 0 under torchrun / accelerate launch)."""
    quiet = os.environ.get("RANK", "0").strip() not in ("", "0")
    bar = tqdm(total=total, desc=label, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False, disable=quiet)
    try:
        yield bar
    finally:
        bar.close()


class ConsoleTrainingListener:
    """Prints training progress as a bar, and losses and evaluations as lines."""

    def __enter__(self) -> ConsoleTrainingListener:
        self.bar: tqdm | None = None
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def on_progress(self, step: int, max_steps: int, epoch: float, eta_seconds: float | None) -> None:
        if self.bar is None:
            self.bar = tqdm(total=max_steps, desc="training", unit="step", file=sys.stderr, dynamic_ncols=True)
        self.bar.n = step
        self.bar.set_postfix(epoch=f"{epoch:.2f}", refresh=False)
        self.bar.refresh()

    def _write(self, text: str) -> None:
        (self.bar.write if self.bar is not None else print)(text)

    def on_log(self, logs: dict) -> None:
        if "loss" in logs:
            self._write(f"step {logs['step']}: loss {logs['loss']:.4f}  lr {logs.get('learning_rate', 0):.2e}")

    def on_evaluate(self, step: int, metrics: dict) -> None:
        miou = metrics.get("eval_mean_iou", float("nan"))
        self._write(f"step {step}: eval mean IoU {miou:.4f}  loss {metrics.get('eval_loss', float('nan')):.4f}")

    def on_checkpoint(self, path: Path) -> None:
        self._write(f"checkpoint {path}")

    def on_message(self, text: str) -> None:
        self._write(text)


def _fmt(value: float) -> str:
    return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.4f}"


def print_evaluation(result, dataset) -> None:
    """Totals, then the per-class table (classes present in ground truth or prediction)."""
    metrics = result.metrics
    scored = sum(1 for image in result.images if image.confusion is not None)
    print(f"images scored: {scored}   skipped: {len(result.skipped)}")
    print(f"mean IoU {_fmt(metrics['mean_iou'])}   mean accuracy {_fmt(metrics['mean_accuracy'])}   "
          f"overall accuracy {_fmt(metrics['overall_accuracy'])}")
    print(f"{'id':>4}  {'class':<24} {'IoU':>6} {'acc':>6} {'gt pixels':>12} {'images':>6}")
    for row in result.class_rows():
        if row.gt_pixels == 0 and row.pred_pixels == 0:
            continue
        name = dataset.label_map.name(row.class_id).strip()[:24]
        print(f"{row.class_id:>4}  {name:<24} {_fmt(row.iou)} {_fmt(row.accuracy)} {row.gt_pixels:>12} {row.images:>6}")
    warn_stray_values(result)


def warn_stray_values(result) -> None:
    """One line on stderr when masks the label check's sample did not reach hold values beyond the label map."""
    odd = [image for image in result.images if image.warnings]
    if odd:
        print(f"segstudio: warning: {len(odd)} mask(s) hold values beyond the label map (first: {odd[0].file_name}, "
              f"{odd[0].warnings[0]}); they are scored as errors, as evaluate's mean_iou scores them: fix those "
              "masks or pass a --label-map that names every id (--json lists each image's)", file=sys.stderr)


def class_rows(result, label_map) -> list[dict]:
    """Per-class rows with the CSV's columns: class_id, class_name, iou, accuracy, gt_pixels, pred_pixels, images."""
    return [
        {"class_id": r.class_id, "class_name": label_map.name(r.class_id), "iou": r.iou, "accuracy": r.accuracy,
         "gt_pixels": r.gt_pixels, "pred_pixels": r.pred_pixels, "images": r.images}
        for r in result.class_rows()
    ]


def evaluation_json(result, dataset, loaded, split: str) -> dict:
    """Everything ``evaluate --json`` writes (NaN becomes null when written)."""
    names = dataset.label_map
    return {
        "segstudio_version": __version__,
        "dataset": dataset.source,
        "split": split,
        "model": loaded.source,
        "id2label_sha256_16": names.digest(),
        "reduce_labels": dataset.convention.reduce_labels,
        "ignore_index": dataset.convention.ignore_index,
        **result.metrics,
        "per_class": class_rows(result, names),
        "per_image": [
            {"index": i.index, "file_name": i.file_name, "scene_category": i.scene, "mean_iou": i.mean_iou,
             "pixel_accuracy": i.pixel_accuracy, "error": i.error, "warnings": i.warnings}
            for i in result.images
        ],
        "by_scene_category": {
            scene: {"images": m["images"], "mean_iou": m["mean_iou"], "mean_accuracy": m["mean_accuracy"],
                    "overall_accuracy": m["overall_accuracy"]}
            for scene, m in result.by_scene().items()
        },
        "skipped": [{"file_name": name, "reason": reason} for name, reason in result.skipped],
    }

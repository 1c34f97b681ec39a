"""Label-error ranking on the demo validation split with known, realistic corruptions; and its cost.

A fixed share of the 48 demo validation masks (seeded) gets one corruption each, in turn: a region given a wrong
class, an object erased to "other" (ignored), a boundary shifted, an object missing (painted as its surroundings).
The demo model then scores the corrupted split. Reported: precision at k (k = corrupted images) and AUROC of the
image ranking, pixel precision / recall of the suspected map against the pixels a corruption changed (changed
pixels that became "other" are ignored, so no pixel map can find them: they are left out of the recall), for
SegStudio's score and, side by side, the softmin of self-confidence (cleanlab's default image score, temperature
0.1, as cleanlab computes it), and cleanlab's own ``get_label_quality_scores`` when cleanlab is installed (it is
not a dependency). Then the time of ``scan_split`` (evaluation and label issues in one pass) against plain
``evaluate_split`` on the same split, rounds interleaved, and the size of the per-image summaries kept.

    .venv/bin/python benchmarks/bench_label_issues.py [--share 0.25] [--seed 0] [--rounds 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import datasets
import numpy as np
from PIL import Image

from segstudio.core.data.demo_dataset import load_demo
from segstudio.core.evaluation.scoring import evaluate_split
from segstudio.core.inference.loading import load_for_inference
from segstudio.core.inference.predictor import Predictor
from segstudio.core.review.label_issues import LabelIssueCollector, scan_split, softmin_score, suspected_map
from segstudio.process_setup import keep_freed_memory

KINDS = ("wrong class", "erased to other", "boundary shift", "missing object")
WINDOW = 96  # side of the square a corruption works in (demo images are 256x256)


def _window(rng: np.random.Generator, where: np.ndarray) -> tuple[slice, slice]:
    """A WINDOW-sized square around a random pixel of ``where``."""
    ys, xs = np.nonzero(where)
    pick = rng.integers(len(ys))
    h, w = where.shape
    y0 = int(np.clip(ys[pick] - WINDOW // 2, 0, h - WINDOW))
    x0 = int(np.clip(xs[pick] - WINDOW // 2, 0, w - WINDOW))
    return slice(y0, y0 + WINDOW), slice(x0, x0 + WINDOW)


def corrupt(mask: np.ndarray, kind: str, rng: np.random.Generator, num_labels: int) -> np.ndarray:
    """One corruption of a dataset-id mask (0 = other, k + 1 = class k), as an annotator would make it."""
    out = mask.copy()
    values, counts = np.unique(mask[mask > 0], return_counts=True)
    if kind == "boundary shift":  # everything in a window moved by 10 px: its boundaries are off
        window = _window(rng, mask > 0)
        shifted = np.roll(mask, (10, 10), axis=(0, 1))
        out[window] = shifted[window]
        return out
    # an object: the smallest class with enough pixels to be one (large ones are background stuff)
    candidates = values[counts >= 300]
    cls = int(candidates[np.argmin(counts[counts >= 300])]) if len(candidates) else int(values[0])
    window = _window(rng, mask == cls)
    region = np.zeros(mask.shape, dtype=bool)
    region[window] = mask[window] == cls
    if kind == "wrong class":
        out[region] = rng.choice([v for v in range(1, num_labels + 1) if v != cls])
    elif kind == "erased to other":
        out[region] = 0
    else:  # missing object: painted as the class most common around it
        ring = np.zeros(mask.shape, dtype=bool)
        ring[window] = ~region[window] & (mask[window] > 0)
        around = np.bincount(mask[ring], minlength=num_labels + 1) if ring.any() else np.ones(1)
        out[region] = int(np.argmax(around)) if ring.any() else 0
    return out


def corrupted_split(dataset, share: float, seed: int):
    """The validation split with ``share`` of its masks corrupted; (dataset, {index: kind}, originals)."""
    rng = np.random.default_rng(seed)
    rows = dataset.splits["validation"]
    originals = [np.asarray(row["annotation"]) for row in rows]
    chosen = rng.choice(len(rows), size=round(share * len(rows)), replace=False)
    kinds = {int(index): KINDS[n % len(KINDS)] for n, index in enumerate(sorted(chosen))}
    masks = [corrupt(m, kinds[i], rng, dataset.label_map.num_labels) if i in kinds else m
             for i, m in enumerate(originals)]
    split = rows.map(lambda _row, i: {"annotation": Image.fromarray(masks[i])}, with_indices=True,
                     keep_in_memory=True)
    dataset.splits["validation"] = split
    return dataset, kinds, originals, masks


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a corrupted image scores lower (worse) than a clean one; ties count half."""
    bad, good = scores[positive], scores[~positive]
    lower = (bad[:, None] < good[None, :]).sum() + 0.5 * (bad[:, None] == good[None, :]).sum()
    return float(lower / (len(bad) * len(good)))


def precision_at_k(scores: np.ndarray, positive: np.ndarray) -> float:
    k = int(positive.sum())
    return float(positive[np.argsort(scores, kind="stable")[:k]].mean())


class KeepingCollector(LabelIssueCollector):
    """The collector, also keeping every image's probabilities (benchmark only: to draw and score the maps)."""

    def __init__(self, num_labels: int) -> None:
        super().__init__(num_labels)
        self.pixels: dict[int, tuple] = {}

    def add(self, index, labels, ids, given, top) -> None:
        super().add(index, labels, ids, given, top)
        self.pixels[index] = (np.array(labels), ids, given, top)


def cleanlab_scores(collector: KeepingCollector, count: int, num_labels: int) -> np.ndarray | None:
    """cleanlab's softmin image scores from full probability maps, or None when cleanlab is not installed.

    cleanlab has no ignore index: ignored pixels get the model's own prediction as their label.
    """
    try:
        from cleanlab.segmentation.rank import get_label_quality_scores
    except ImportError:
        return None
    labels, probs = [], []
    for index in range(count):
        label, ids, given, top = collector.pixels[index]
        ignored = label >= num_labels
        label = np.where(ignored, ids, label).astype(np.int64)
        given = np.where(ignored, top, given)
        # softmin reads only p(given label), which is exact here; the rest is spread to sum to 1
        other = np.where(ids == label, 0.0, top)
        rest = np.clip(1.0 - given - other, 0.0, None) / num_labels
        full = np.repeat(rest[None], num_labels, axis=0).astype(np.float32)
        np.put_along_axis(full, ids[None].astype(np.int64), (other + rest)[None].astype(np.float32), axis=0)
        np.put_along_axis(full, label[None], (given + rest)[None].astype(np.float32), axis=0)
        labels.append(label)
        probs.append(full)
    scores, _ = get_label_quality_scores(np.stack(labels), np.stack(probs), method="softmin", verbose=False)
    return np.asarray(scores)


def quality(dataset, predictor, kinds, originals, masks) -> dict:
    count = len(masks)
    num_labels = dataset.label_map.num_labels
    collector = KeepingCollector(num_labels)
    evaluate_split(dataset, "validation", predictor, keep_predictions=False, label_issues=collector)
    report = collector.report({})
    positive = np.array([i in kinds for i in range(count)])
    ours = np.ones(count)
    for image in report.images:
        ours[image.index] = image.score
    softmin = np.array([softmin_score(collector.pixels[i][2][collector.pixels[i][0] < num_labels])
                        for i in range(count)])
    hit = suspected = truth = 0
    for index in range(count):
        labels, ids, given, top = collector.pixels[index]
        flagged = suspected_map(labels, ids, given, top, report.thresholds)
        changed = (masks[index] != originals[index]) & (masks[index] > 0)
        hit += int((flagged & changed).sum())
        suspected += int(flagged.sum())
        truth += int(changed.sum())
    keep = np.array([kinds.get(i) != "erased to other" for i in range(count)])
    order = np.argsort(ours, kind="stable")
    ranks = {KINDS[n]: [int(np.nonzero(order == i)[0][0]) + 1 for i, k in kinds.items() if k == KINDS[n]]
             for n in range(len(KINDS))}
    figures = {
        "images": count, "corrupted": int(positive.sum()),
        "segstudio": {"precision_at_k": precision_at_k(ours, positive), "auroc": auroc(ours, positive)},
        "softmin_self_confidence": {"precision_at_k": precision_at_k(softmin, positive),
                                    "auroc": auroc(softmin, positive)},
        "excluding_erased_to_other": {
            name: {"precision_at_k": precision_at_k(s[keep], positive[keep]), "auroc": auroc(s[keep], positive[keep])}
            for name, s in (("segstudio", ours), ("softmin_self_confidence", softmin))},
        "pixel_precision": hit / suspected if suspected else float("nan"),
        "pixel_recall": hit / truth if truth else float("nan"),
        "ranks_of_corrupted_by_kind": ranks,
        "summary_bytes_per_image": sum(s.nbytes for s in collector.summaries.values())
        / max(1, len(collector.summaries)),
    }
    baseline = cleanlab_scores(collector, count, num_labels)
    if baseline is None:
        print("cleanlab is not installed: its get_label_quality_scores baseline was skipped "
              "(softmin_self_confidence is the same formula, computed here)")
    else:
        figures["cleanlab_softmin"] = {"precision_at_k": precision_at_k(baseline, positive),
                                       "auroc": auroc(baseline, positive)}
    return figures


def _timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def timing(dataset, predictor, rounds: int) -> dict:
    """Plain evaluation and evaluation with label issues on the same split, alternating which goes first.

    CPU time is reported beside wall time: on a shared machine other processes stretch the wall clock of one
    side of a round but barely change how much CPU the work itself takes.
    """
    plain, scanned = [], []
    runs = {"plain": lambda: evaluate_split(dataset, "validation", predictor, keep_predictions=False),
            "scan": lambda: scan_split(dataset, "validation", predictor)}
    for round_index in range(rounds):
        order = ("plain", "scan") if round_index % 2 == 0 else ("scan", "plain")
        measured = {name: _timed(runs[name]) for name in order}
        plain.append(measured["plain"])
        scanned.append(measured["scan"])
    wall = [s[0] / p[0] for s, p in zip(scanned, plain, strict=True)]
    cpu = [s[1] / p[1] for s, p in zip(scanned, plain, strict=True)]
    return {"evaluate_s": [p[0] for p in plain], "label_issues_s": [s[0] for s in scanned],
            "evaluate_cpu_s": [p[1] for p in plain], "label_issues_cpu_s": [s[1] for s in scanned],
            "ratio_rounds": wall, "ratio_median": statistics.median(wall),
            "cpu_ratio_rounds": cpu, "cpu_ratio_median": statistics.median(cpu)}


def side_by_side(dataset, predictor, repeats: int) -> dict:
    """Each batch's evaluation work (forward, ids, confusion) with and without label issues, timed back to back,
    best of ``repeats`` per batch and side, images decoded beforehand: the machine's drift hits both sides alike."""
    from segstudio.core.metrics.confusion import ConfusionMatrix

    rows = dataset.splits["validation"]
    num_labels = dataset.label_map.num_labels
    items = [(i, rows[i]["image"].convert("RGB"), dataset.convention.to_model_ids(np.asarray(rows[i]["annotation"])))
             for i in range(len(rows))]
    size = predictor.batch_size
    batches = [items[i:i + size] for i in range(0, len(items), size)]

    def plain(batch):
        matrix = ConfusionMatrix(num_labels)
        for key, ids in predictor.predict_iter((key, image) for key, image, _ in batch):
            matrix.update(ids, batch[key % size][2])

    def scanned(batch):
        matrix, collector = ConfusionMatrix(num_labels), LabelIssueCollector(num_labels)
        for key, ids, given, top in predictor.predict_confidence_iter(batch):
            labels = batch[key % size][2]
            matrix.update(ids, labels)
            collector.add(key, labels, ids, given, top)

    best = {"plain": [], "scan": []}
    for batch in batches:
        times = {"plain": [], "scan": []}
        for repeat in range(repeats):
            for name in (("plain", "scan") if repeat % 2 == 0 else ("scan", "plain")):
                times[name].append(_timed(lambda n=name, b=batch: (plain if n == "plain" else scanned)(b)))
        for name in best:
            best[name].append((min(t[0] for t in times[name]), min(t[1] for t in times[name])))
    wall = sum(b[0] for b in best["scan"]) / sum(b[0] for b in best["plain"])
    cpu = sum(b[1] for b in best["scan"]) / sum(b[1] for b in best["plain"])
    return {"plain_ms_per_image": 1000 * sum(b[0] for b in best["plain"]) / len(items),
            "scan_ms_per_image": 1000 * sum(b[0] for b in best["scan"]) / len(items),
            "wall_ratio": wall, "cpu_ratio": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="whole-split timing rounds (0: none)")
    parser.add_argument("--repeats", type=int, default=5, help="side-by-side repeats per batch (0: none)")
    args = parser.parse_args()
    keep_freed_memory()  # as the CLI and the app do first
    datasets.disable_progress_bars()
    dataset, kinds, originals, masks = corrupted_split(load_demo(), args.share, args.seed)
    predictor = Predictor(load_for_inference("demo", "cpu"), device="cpu")
    figures = quality(dataset, predictor, kinds, originals, masks)
    print(f"{figures['corrupted']} of {figures['images']} masks corrupted")
    for name in ("segstudio", "softmin_self_confidence", "cleanlab_softmin"):
        if name in figures:
            print(f"{name:>24}: precision@k {figures[name]['precision_at_k']:.3f}  AUROC {figures[name]['auroc']:.3f}")
    for name, values in figures["excluding_erased_to_other"].items():
        print(f"{name:>24}: precision@k {values['precision_at_k']:.3f}  AUROC {values['auroc']:.3f}"
              "  (without the images erased to other: ignored pixels, invisible to any ranking here)")
    print(f"suspected-pixel map: precision {figures['pixel_precision']:.3f}  recall {figures['pixel_recall']:.3f}")
    print(f"ranks of corrupted images by kind: {figures['ranks_of_corrupted_by_kind']}")
    print(f"per-image summary kept: {figures['summary_bytes_per_image']:.0f} bytes")
    if args.rounds:
        figures["timing"] = timing(dataset, predictor, args.rounds)
        t = figures["timing"]
        print(f"evaluate {min(t['evaluate_s']):.2f} s, with label issues {min(t['label_issues_s']):.2f} s: "
              f"ratio {t['ratio_median']:.2f}x (rounds {', '.join(f'{r:.2f}' for r in t['ratio_rounds'])}); "
              f"CPU time {min(t['evaluate_cpu_s']):.2f} s vs {min(t['label_issues_cpu_s']):.2f} s: "
              f"{t['cpu_ratio_median']:.2f}x (rounds {', '.join(f'{r:.2f}' for r in t['cpu_ratio_rounds'])})")
    if args.repeats:
        figures["side_by_side"] = t = side_by_side(dataset, predictor, args.repeats)
        print(f"side by side, per batch of {predictor.batch_size} (best of {args.repeats}): evaluation "
              f"{t['plain_ms_per_image']:.1f} ms/image, with label issues {t['scan_ms_per_image']:.1f} ms/image: "
              f"{t['wall_ratio']:.2f}x (CPU time {t['cpu_ratio']:.2f}x)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

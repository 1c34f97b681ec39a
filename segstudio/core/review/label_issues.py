"""Label-error ranking: which pixels and images of a split look mislabelled, found in the evaluation pass.

Method (confident learning, Northcutt et al., per pixel): the self-confidence of a pixel labelled k is the model's
softmax probability p_k there; the threshold t_k of class k is the mean self-confidence over every pixel labelled
k in the split. A pixel labelled k is *suspected* when the model predicts another class j (its argmax) with
p_j >= t_j while p_k < t_k: the model is confident, by that class's own standard, in another class than the given
one. Ignored pixels are never suspected.

Streaming: thresholds need the whole split, so each image keeps only a small summary, the pixel counts of its
mispredicted pixels per (label, prediction, p_label level, p_prediction level), with probabilities quantised to
``LEVELS`` steps; the thresholds are applied to those summaries at the end, with no second forward pass and no
per-pixel probabilities kept. The comparisons are made on the quantised values (``level(p) < level(t)``), in the
counts and in :func:`suspected_map` alike, so a map drawn later counts exactly the pixels reported.

Image score (label quality, 0..1, low = suspicious): cleanlab's softmin (temperature 0.1) over the image's
labelled pixels of the *calibrated* self-confidence ``min(1, p_k / t_k)``: a pixel only counts as doubtful when the
model is less sure of its label than it usually is of that class (a class it is always unsure of does not make every
image that shows it suspicious). It is computed at the end from each image's histogram of (label, self-confidence
level), so p_k is taken at its level's centre (an error below 1 / (2 * LEVELS)). Chosen with
``benchmarks/bench_label_issues.py``: on corrupted demo masks it ranked level with plain softmin by precision at k
and by AUROC (within noise over three seeds), where the suspected-pixel share ranked worse than both (model errors along boundaries in
clean images weigh as much there as a relabelled region).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

LEVELS = 64  # probability quantisation steps of the per-image summaries
TEMPERATURE = 0.1  # softmin temperature, as cleanlab's get_label_quality_scores


def level(probabilities: np.ndarray | float) -> np.ndarray:
    """Quantised probability: 0..LEVELS-1, ``floor(p * LEVELS)`` (1.0 falls in the top level)."""
    return np.minimum((np.asarray(probabilities, dtype=np.float64) * LEVELS).astype(np.int64), LEVELS - 1)


def softmin_score(
    self_confidence: np.ndarray, temperature: float = TEMPERATURE, counts: np.ndarray | None = None
) -> float:
    """cleanlab's softmin image score: ``softmax((1 - p) / T) . p`` over the image's labelled pixels (each
    value taken ``counts`` times when given)."""
    if self_confidence.size == 0:
        return 1.0
    p = self_confidence.astype(np.float64, copy=False)
    exponent = (1.0 - p) / temperature
    weights = np.exp(exponent - exponent.max())
    if counts is not None:
        weights *= counts
    return float(weights @ p / weights.sum())


def class_levels(thresholds: np.ndarray) -> np.ndarray:
    """Per-class threshold levels; a class nobody labelled gets LEVELS (no pixel reaches it)."""
    levels = np.full(len(thresholds), LEVELS, dtype=np.int64)
    known = ~np.isnan(thresholds)
    levels[known] = level(thresholds[known])
    return levels


def suspected_map(
    labels: np.ndarray, ids: np.ndarray, given: np.ndarray, top: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """(H, W) bool: pixels whose label k the model doubts (predicts j != k, p_j >= t_j, p_k < t_k)."""
    num_labels = len(thresholds)
    labels = np.asarray(labels).astype(np.int64, copy=False)
    ids = np.asarray(ids).astype(np.int64, copy=False)
    candidates = (labels < num_labels) & (labels >= 0) & (ids != labels)
    result = np.zeros(labels.shape, dtype=bool)
    if not candidates.any():
        return result
    levels = class_levels(thresholds)
    k, j = labels[candidates], ids[candidates]
    result[candidates] = (level(given[candidates]) < levels[k]) & (level(top[candidates]) >= levels[j])
    return result


@dataclass
class ImageSummary:
    """One image's share of the split-wide pass: what is needed to count its suspected pixels later."""

    index: int
    labelled: int
    softmin: float  # cleanlab's score from the histogram (not calibrated)
    confidence_codes: np.ndarray  # label * LEVELS + level(p_label), every labelled pixel
    confidence_counts: np.ndarray
    codes: np.ndarray  # mispredicted: (label * K + prediction) * LEVELS**2 + level(p_label) * LEVELS + level(p_pred)
    counts: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.confidence_codes, self.confidence_counts, self.codes, self.counts))


def calibrated_softmin(summary: ImageSummary, thresholds: np.ndarray) -> float:
    """Softmin of ``min(1, p_k / t_k)`` over an image's (label, level) histogram, p_k at its level's centre."""
    label, levels = np.divmod(summary.confidence_codes.astype(np.int64), LEVELS)
    with np.errstate(divide="ignore"):
        calibrated = np.minimum(1.0, (levels + 0.5) / LEVELS / thresholds[label])
    return softmin_score(calibrated, counts=summary.confidence_counts)


@dataclass
class ImageIssues:
    """An image's label quality: score (low = suspicious), suspected pixels and the pairs behind them."""

    index: int
    file_name: str
    score: float
    suspected: int
    labelled: int
    softmin: float
    pairs: list[tuple[int, int, int]] = field(default_factory=list)  # (label, model says, pixels), most first


@dataclass
class LabelIssueReport:
    """Per-class thresholds and every scored image, most suspicious first."""

    thresholds: np.ndarray
    images: list[ImageIssues]

    def to_json_dict(self, label_map) -> dict:
        """Thresholds by class name and the ranked images with their suspected class pairs."""
        name = label_map.name
        return {
            "method": "confident learning per pixel: labelled k, predicted j, p_j >= t_j and p_k < t_k",
            "thresholds": {str(name(k)): (None if np.isnan(t) else round(float(t), 6))
                           for k, t in enumerate(self.thresholds)},
            "images": [
                {"rank": rank, "file_name": image.file_name, "index": image.index, "score": image.score,
                 "suspected_pixels": image.suspected, "labelled_pixels": image.labelled,
                 "softmin": image.softmin,
                 "pairs": [{"labelled": str(name(k)), "model_says": str(name(j)), "pixels": n}
                           for k, j, n in image.pairs]}
                for rank, image in enumerate(self.images, start=1)
            ],
        }


class LabelIssueCollector:
    """Streams images through, keeping per-class confidence sums and each image's small summary."""

    def __init__(self, num_labels: int) -> None:
        self.num_labels = num_labels
        self.confidence_sum = np.zeros(num_labels, dtype=np.float64)
        self.pixel_count = np.zeros(num_labels, dtype=np.int64)
        self.summaries: dict[int, ImageSummary] = {}
        self.code_dtype = np.int32 if num_labels * num_labels * LEVELS * LEVELS < 2**31 else np.int64

    def add(self, index: int, labels: np.ndarray, ids: np.ndarray, given: np.ndarray, top: np.ndarray) -> None:
        """Take one image: labels in model ids (anything outside 0..K-1 is ignored), predicted ids, probabilities."""
        k = self.num_labels
        flat = np.asarray(labels).reshape(-1).astype(np.int64, copy=False)
        valid = (flat >= 0) & (flat < k)
        label = flat[valid]
        confidence = given.reshape(-1)[valid]
        self.confidence_sum += np.bincount(label, weights=confidence, minlength=k)
        self.pixel_count += np.bincount(label, minlength=k)
        predicted = ids.reshape(-1)[valid].astype(np.int64, copy=False)
        wrong = predicted != label
        confidence_level = level(confidence)
        code = (label[wrong] * k + predicted[wrong]) * LEVELS * LEVELS
        code += confidence_level[wrong] * LEVELS + level(top.reshape(-1)[valid][wrong])
        codes, counts = np.unique(code, return_counts=True)
        histogram = np.bincount(label * LEVELS + confidence_level, minlength=k * LEVELS)
        present = np.flatnonzero(histogram)
        centres = (present % LEVELS + 0.5) / LEVELS
        self.summaries[index] = ImageSummary(
            index, int(label.size), softmin_score(centres, counts=histogram[present]), present.astype(np.int32),
            histogram[present].astype(np.int32), codes.astype(self.code_dtype), counts.astype(np.int32))

    def thresholds(self) -> np.ndarray:
        """t_k: mean self-confidence of the pixels labelled k (NaN for a class no pixel has)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.pixel_count > 0, self.confidence_sum / np.maximum(self.pixel_count, 1), np.nan)

    def report(self, file_names: dict[int, str], top_pairs: int = 3) -> LabelIssueReport:
        """Apply the thresholds to every summary and rank the images, most suspicious first."""
        thresholds = self.thresholds()
        images = [self._image(summary, thresholds, file_names.get(summary.index, str(summary.index)), top_pairs)
                  for summary in self.summaries.values()]
        images.sort(key=lambda image: (image.score, image.index))
        return LabelIssueReport(thresholds, images)

    def _image(self, summary: ImageSummary, thresholds: np.ndarray, file_name: str, top_pairs: int) -> ImageIssues:
        levels = class_levels(thresholds)
        pair, rest = np.divmod(summary.codes.astype(np.int64), LEVELS * LEVELS)
        label_level, top_level = np.divmod(rest, LEVELS)
        label, predicted = np.divmod(pair, self.num_labels)
        hit = (label_level < levels[label]) & (top_level >= levels[predicted])
        suspected = int(summary.counts[hit].sum())
        by_pair = np.bincount(pair[hit], weights=summary.counts[hit], minlength=0) if hit.any() else np.zeros(0)
        order = np.argsort(-by_pair, kind="stable")[:top_pairs]
        pairs = [(int(p // self.num_labels), int(p % self.num_labels), int(by_pair[p])) for p in order
                 if by_pair[p] > 0]
        score = calibrated_softmin(summary, thresholds)
        return ImageIssues(summary.index, file_name, score, suspected, summary.labelled, summary.softmin, pairs)

    def scan(
        self, predictor, items: Iterable[tuple[int, object]], labels_of: Callable[[int], np.ndarray | None]
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``predictor.predict_iter`` for ``(index, image)`` that also takes each labelled image in."""
        stream = predictor.predict_confidence_iter((key, image, labels_of(key)) for key, image in items)
        for key, ids, given, top in stream:
            if given is not None:
                self.add(key, labels_of(key), ids, given, top)
            yield key, ids


def scan_split(
    dataset,
    split: str,
    predictor,
    *,
    limit: int | None = None,
    on_image: Callable | None = None,
    cancel: threading.Event | None = None,
    keep_predictions: bool = False,
):
    """Evaluate ``split`` and find its label issues in the same pass: ``(EvaluationResult, LabelIssueReport)``.

    Raises ``EvaluationCancelled`` as ``evaluate_split`` does.
    """
    result, collector = collect_split(dataset, split, predictor, limit=limit, on_image=on_image, cancel=cancel,
                                      keep_predictions=keep_predictions)
    return result, collector.report(file_names(result))


def collect_split(
    dataset,
    split: str,
    predictor,
    *,
    limit: int | None = None,
    on_image: Callable | None = None,
    cancel: threading.Event | None = None,
    keep_predictions: bool = False,
    shard: tuple[int, int] | None = None,
):
    """The evaluation and the filled collector, before thresholds are applied: ``(EvaluationResult,
    LabelIssueCollector)``; ``shard`` as in ``evaluate_split`` (the shards' collectors merge into the split's)."""
    from segstudio.core.evaluation.scoring import evaluate_split

    collector = LabelIssueCollector(dataset.label_map.num_labels)
    result = evaluate_split(dataset, split, predictor, limit=limit, on_image=on_image, cancel=cancel,
                            keep_predictions=keep_predictions, label_issues=collector, shard=shard)
    return result, collector


def file_names(result) -> dict[int, str]:
    """Each evaluated image's file name by index (what ``LabelIssueCollector.report`` names images by)."""
    return {image.index: image.file_name for image in result.images}


def merge_collectors(parts: list[LabelIssueCollector]) -> LabelIssueCollector:
    """One split's collector from its shards' (one per process): per-class sums added, image summaries joined."""
    if len(parts) == 1:
        return parts[0]
    merged = LabelIssueCollector(parts[0].num_labels)
    for part in parts:
        merged.confidence_sum += part.confidence_sum
        merged.pixel_count += part.pixel_count
        merged.summaries.update(part.summaries)
    merged.summaries = dict(sorted(merged.summaries.items()))
    return merged

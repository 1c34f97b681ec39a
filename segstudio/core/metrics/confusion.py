"""Segmentation metrics from a streaming confusion matrix, with the keys and numbers of evaluate's ``mean_iou``.

``ConfusionMatrix`` gives bit-identical numbers to ``metrics_reference.reference_mean_iou`` (evaluate's algorithm
line by line) from per-image sparse confusions (``pixel_counts``), 18-24x faster on 512x512 masks
(``benchmarks/bench_metrics.py``; 17.5-19.5x timed side by side).
Pixels whose prediction or (non-ignored) label lies outside ``0..K-1`` are handled exactly as evaluate's
``np.histogram(..., range=(0, K - 1))`` handles them, and counted in ``out_of_range`` so callers can report them.

One difference, by choice: ``reduce_labels=True`` with an ignore index I other than 255 (see :func:`mean_iou`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import PurePath
from typing import Any, NamedTuple

import numpy as np

from segstudio.core.labels.label_map import IGNORE_INDEX, LabelConvention
from segstudio.core.metrics.pixel_counts import RunCounter

METRIC_KEYS = ("mean_iou", "mean_accuracy", "overall_accuracy", "per_category_iou", "per_category_accuracy")
_EMPTY_I32 = np.zeros(0, np.int32)
_EMPTY_I64 = np.zeros(0, np.int64)
_EMPTY_I32.flags.writeable = False
_EMPTY_I64.flags.writeable = False


# --- metrics from totals -----------------------------------------------------------------------------------------


def quiet_nanmean(values: np.ndarray) -> np.float64:
    """np.nanmean without its all-NaN warning (warnings filters are process-wide, so none are touched)."""
    return np.nanmean(values) if not np.isnan(values).all() else np.float64(np.nan)


def metrics_from_areas(
    intersect: np.ndarray, pred_area: np.ndarray, label_area: np.ndarray, nan_to_num: float | None = None
) -> dict:
    """evaluate's five keys from per-class totals; ``nan_to_num`` replaces NaN everywhere, as evaluate does."""
    intersect, pred_area, label_area = (
        np.asarray(a, dtype=np.int64) for a in (intersect, pred_area, label_area)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        overall = intersect.sum() / label_area.sum()
        iou = intersect / (pred_area + label_area - intersect)
        acc = intersect / label_area
    result = {
        "mean_iou": float(quiet_nanmean(iou)),
        "mean_accuracy": float(quiet_nanmean(acc)),
        "overall_accuracy": float(overall),
        "per_category_iou": iou,
        "per_category_accuracy": acc,
    }
    if nan_to_num is not None:
        result = {key: _replace_nan(value, nan_to_num) for key, value in result.items()}
    return result


def _replace_nan(value: Any, nan: float) -> Any:
    if isinstance(value, np.ndarray):
        return np.nan_to_num(value, nan=nan)
    return float(np.nan_to_num(value, nan=nan))


def metrics_from_matrix(matrix: np.ndarray, nan_to_num: float | None = None) -> dict:
    """evaluate's keys from a (K, K) confusion matrix (rows ground truth, columns prediction)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    return metrics_from_areas(np.diagonal(matrix), matrix.sum(axis=0), matrix.sum(axis=1), nan_to_num)


# --- per-image and streaming confusion ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class ImageConfusion:
    """One image's sparse confusion: ``cells = gt * K + pred`` (sorted, distinct) with pixel ``counts``.

    Pixels whose label or prediction lies outside 0..K-1 (ignored pixels excluded) are kept apart in
    ``stray_cells`` over a (K+1)x(K+1) grid where index K means "outside"; they count toward the areas exactly
    as in evaluate (a valid label with a stray prediction still counts in that class's ground-truth area).
    """

    num_labels: int
    cells: np.ndarray
    counts: np.ndarray
    stray_cells: np.ndarray = field(default_factory=lambda: _EMPTY_I32)
    stray_counts: np.ndarray = field(default_factory=lambda: _EMPTY_I64)

    def _strays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, cols = np.divmod(self.stray_cells, self.num_labels + 1)
        return rows, cols, self.stray_counts

    def _sum_by(self, index: np.ndarray, counts: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=counts, minlength=self.num_labels).astype(np.int64)

    @property
    def intersect(self) -> np.ndarray:
        gt, pred = np.divmod(self.cells, self.num_labels)
        diagonal = gt == pred
        out = np.zeros(self.num_labels, np.int64)
        out[gt[diagonal]] = self.counts[diagonal]
        return out

    @property
    def label_area(self) -> np.ndarray:
        area = self._sum_by(self.cells // self.num_labels, self.counts)
        rows, _cols, counts = self._strays()
        inside = rows < self.num_labels
        return area + self._sum_by(rows[inside], counts[inside])

    @property
    def pred_area(self) -> np.ndarray:
        area = self._sum_by(self.cells % self.num_labels, self.counts)
        _rows, cols, counts = self._strays()
        inside = cols < self.num_labels
        return area + self._sum_by(cols[inside], counts[inside])

    @property
    def out_of_range(self) -> int:
        """Non-ignored pixels whose label or prediction lies outside 0..K-1."""
        return int(self.stray_counts.sum())

    @property
    def pixel_accuracy(self) -> float:
        """Correct / labelled pixels (evaluate's overall accuracy for this image); NaN without a valid pixel."""
        total = int(self.label_area.sum())
        return int(self.intersect.sum()) / total if total else math.nan

    @property
    def mean_iou(self) -> float:
        """Mean IoU over the classes present in this image's ground truth or prediction."""
        return metrics_from_areas(self.intersect, self.pred_area, self.label_area)["mean_iou"]

    def count(self, gt: int, pred: int) -> int:
        """Pixels of ground-truth class ``gt`` predicted as ``pred`` (both in 0..K-1)."""
        if not (0 <= gt < self.num_labels and 0 <= pred < self.num_labels):
            return 0
        cell = gt * self.num_labels + pred
        at = int(np.searchsorted(self.cells, cell))
        return int(self.counts[at]) if at < self.cells.size and self.cells[at] == cell else 0

    def dense(self) -> np.ndarray:
        """The (K, K) int64 matrix of in-range pixels."""
        out = np.zeros(self.num_labels * self.num_labels, np.int64)
        out[self.cells] = self.counts
        return out.reshape(self.num_labels, self.num_labels)


def _image_confusion(index: np.ndarray, counts: np.ndarray, num_labels: int) -> ImageConfusion:
    """ImageConfusion from sorted codes over the (K+1) x (K+1) grid (index K: outside 0..K-1) and their counts."""
    k = num_labels
    cell_dtype = _cell_dtype(k)
    rows, cols = np.divmod(index, k + 1)
    if index.size == 0 or (rows[-1] < k and cols.max() < k):  # no strays (rows are sorted): the usual case
        return ImageConfusion(k, (index - rows).astype(cell_dtype), counts)  # r * (K+1) + c - r = r * K + c
    inside = (rows < k) & (cols < k)
    outside = ~inside
    cells = (rows[inside] * k + cols[inside]).astype(cell_dtype)
    return ImageConfusion(k, cells, counts[inside], index[outside].astype(cell_dtype), counts[outside])


def _as_int_array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == np.bool_:
        return array.view(np.uint8)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    return array


def _cell_dtype(num_labels: int) -> type:
    return np.int32 if (num_labels + 1) ** 2 < 2**31 else np.int64


class ConfusionMatrix:
    """A streaming (K, K) confusion matrix (rows ground truth, columns prediction) with evaluate's numbers.

    ``label_map`` (old id -> new id, every mapping reading the original labels, as in evaluate) is applied to
    each label before scoring. Labels are expected in model ids already (see ``LabelConvention``).
    """

    def __init__(
        self, num_labels: int, ignore_index: int = IGNORE_INDEX, label_map: Mapping[int, int] | None = None
    ) -> None:
        if num_labels < 1:
            raise ValueError(f"num_labels must be at least 1, got {num_labels}")
        self.num_labels = int(num_labels)
        self.ignore_index = int(ignore_index)
        self.label_map = dict(label_map) if label_map else None
        self._ext = np.zeros((self.num_labels + 1, self.num_labels + 1), np.int64)
        self._counter = RunCounter(self.num_labels, self.ignore_index)
        self.images = 0

    def __getstate__(self) -> dict:
        """Pickled (sent to another process) without the counter's scratch buffers."""
        return {**self.__dict__, "_counter": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._counter = RunCounter(self.num_labels, self.ignore_index)

    def update(self, pred: Any, label: Any) -> ImageConfusion:
        """Score one image; returns its sparse confusion (already added here)."""
        pred = _as_int_array(pred, "prediction")
        label = _as_int_array(label, "label")
        if pred.shape != label.shape:
            raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
        if self.label_map:
            label = apply_label_map(label, self.label_map)
        index, counts = self._counter.counts(label.ravel(), pred.ravel())
        self._ext.reshape(-1)[index] += counts  # the grid codes index the (K+1) x (K+1) matrix; all distinct
        self.images += 1
        return _image_confusion(index, counts, self.num_labels)

    def add(self, confusion: ImageConfusion) -> None:
        """Add one image's confusion (e.g. to regroup stored images by scene)."""
        self._shift(confusion, 1)

    def remove(self, confusion: ImageConfusion) -> None:
        """Take out one image's confusion that was added before (an edited mask re-scores its image); exact."""
        self._shift(confusion, -1)

    def _shift(self, confusion: ImageConfusion, sign: int) -> None:
        k = self.num_labels
        if confusion.num_labels != k:
            raise ValueError(
                f"an image scored with {confusion.num_labels} classes cannot join a {k}-class matrix"
            )
        flat = self._ext.reshape(-1)
        cells = confusion.cells + confusion.cells // k  # r * K + c -> r * (K+1) + c
        if sign < 0 and (self.images < 1 or (flat[cells] < confusion.counts).any()
                         or (flat[confusion.stray_cells] < confusion.stray_counts).any()):
            raise ValueError("cannot remove an image's confusion this matrix does not hold")
        flat[cells] += sign * confusion.counts
        flat[confusion.stray_cells] += sign * confusion.stray_counts
        self.images += sign

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's pixels and images into this one; returns self."""
        if (other.num_labels, other.ignore_index) != (self.num_labels, self.ignore_index):
            raise ValueError(
                f"cannot merge a matrix of {other.num_labels} classes (ignore {other.ignore_index}) into one "
                f"of {self.num_labels} classes (ignore {self.ignore_index})"
            )
        self._ext += other._ext
        self.images += other.images
        return self

    @property
    def matrix(self) -> np.ndarray:
        """The (K, K) int64 counts of in-range pixels (a view: copy it to keep it)."""
        return self._ext[: self.num_labels, : self.num_labels]

    @property
    def out_of_range(self) -> int:
        """Non-ignored pixels whose label or prediction lies outside 0..K-1 (evaluate drops them silently)."""
        k = self.num_labels
        return int(self._ext[k, :].sum() + self._ext[:k, k].sum())

    @property
    def intersect(self) -> np.ndarray:
        return np.diagonal(self.matrix).copy()

    @property
    def label_area(self) -> np.ndarray:
        """Pixels per ground-truth class, stray predictions included (evaluate's ``area_label``)."""
        return self._ext[: self.num_labels, :].sum(axis=1)

    @property
    def pred_area(self) -> np.ndarray:
        """Pixels per predicted class, stray labels included (evaluate's ``area_pred_label``)."""
        return self._ext[:, : self.num_labels].sum(axis=0)

    def compute(self, nan_to_num: float | None = None) -> dict:
        """evaluate's ``mean_iou`` result: python floats for the scalars, float64 arrays per category."""
        return metrics_from_areas(self.intersect, self.pred_area, self.label_area, nan_to_num)

    def reset(self) -> None:
        self._ext[:] = 0
        self.images = 0


def apply_label_map(label: np.ndarray, label_map: Mapping[int, int]) -> np.ndarray:
    """evaluate's ``label_map``: every mapping reads the original labels (a lookup table for 8/16-bit masks)."""
    values = [int(v) for v in label_map.values()]
    if label.dtype in (np.uint8, np.uint16):
        fits = all(0 <= v <= np.iinfo(label.dtype).max for v in values)
        lut = np.arange(np.iinfo(label.dtype).max + 1, dtype=label.dtype if fits else np.int64)
        for old, new in label_map.items():
            if 0 <= int(old) < lut.size:
                lut[int(old)] = new
        return lut[label]
    out = (
        label.astype(np.int64)
        if any(not np.can_cast(np.min_scalar_type(v), label.dtype) for v in values)
        else label.copy()
    )
    for old, new in label_map.items():
        out[label == old] = new
    return out


def mean_iou(
    preds: Iterable,
    labels: Iterable,
    num_labels: int,
    ignore_index: int = IGNORE_INDEX,
    nan_to_num: float | None = None,
    label_map: Mapping[int, int] | None = None,
    reduce_labels: bool = False,
) -> dict:
    """``reference_mean_iou``'s signature and numbers, fast; ``reduce_labels`` goes through ``LabelConvention``.

    With ``reduce_labels=True`` and an ignore index I other than 255 the numbers differ from evaluate's, on
    purpose: SegStudio ignores labels 0 and I and makes 255 class 254; evaluate hard-codes 255 for label 0 (so 0
    and 255 both become 255, out of range unless K > 255, their predictions still counted) and makes I class I-1.
    Every other label v is class v-1 in both, and those pixels score identically.
    """
    matrix = ConfusionMatrix(num_labels, ignore_index)
    convention = LabelConvention(reduce_labels=reduce_labels, ignore_index=ignore_index)
    for pred, label in zip(preds, labels, strict=False):
        label = _as_int_array(label, "label")
        if label_map:
            label = apply_label_map(label, label_map)
        matrix.update(pred, convention.to_model_ids(label))
    return matrix.compute(nan_to_num)


# --- tables for people ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassStats:
    """One class's row: IoU and accuracy (NaN when undefined), pixel totals, images whose gt contains it."""

    class_id: int
    iou: float
    accuracy: float
    gt_pixels: int
    pred_pixels: int
    images: int | None


class Confusion(NamedTuple):
    gt: int
    pred: int
    pixels: int
    share_of_gt: float


def _counts_and_areas(matrix: np.ndarray | ConfusionMatrix):
    if isinstance(matrix, ConfusionMatrix):
        return matrix.matrix, matrix.pred_area, matrix.label_area
    dense = np.asarray(matrix, dtype=np.int64)
    if dense.ndim != 2 or dense.shape[0] != dense.shape[1]:
        raise ValueError(f"a square confusion matrix is expected, got shape {dense.shape}")
    return dense, dense.sum(axis=0), dense.sum(axis=1)


def class_table(
    matrix: np.ndarray | ConfusionMatrix, images_per_class: np.ndarray | None = None
) -> list[ClassStats]:
    """A row per class. A ``ConfusionMatrix`` also counts pixels with out-of-range values in the areas."""
    dense, pred_area, label_area = _counts_and_areas(matrix)
    metrics = metrics_from_areas(np.diagonal(dense), pred_area, label_area)
    images = None if images_per_class is None else np.asarray(images_per_class)
    return [
        ClassStats(
            class_id=k,
            iou=float(metrics["per_category_iou"][k]),
            accuracy=float(metrics["per_category_accuracy"][k]),
            gt_pixels=int(label_area[k]),
            pred_pixels=int(pred_area[k]),
            images=None if images is None else int(images[k]),
        )
        for k in range(dense.shape[0])
    ]


def top_confusions(matrix: np.ndarray | ConfusionMatrix, k: int = 20) -> list[Confusion]:
    """The ``k`` largest off-diagonal cells, most pixels first (ties by gt, then pred)."""
    dense, _pred_area, label_area = _counts_and_areas(matrix)
    off = dense.copy()
    np.fill_diagonal(off, 0)
    flat = np.flatnonzero(off)
    order = np.lexsort((flat, -off.reshape(-1)[flat]))[: max(k, 0)]
    out = []
    for cell in flat[order]:
        gt, pred = divmod(int(cell), dense.shape[1])
        pixels = int(off[gt, pred])
        out.append(Confusion(gt, pred, pixels, pixels / int(label_area[gt])))
    return out


def json_safe(obj: Any) -> Any:
    """NumPy arrays/scalars -> lists/numbers, NaN and infinities -> None, dataclasses -> dicts, paths -> str,
    recursively (what metrics JSON needs)."""
    if isinstance(obj, PurePath):
        return str(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return json_safe(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(key): json_safe(value) for key, value in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(value) for value in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj

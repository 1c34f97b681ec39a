"""Segmentation metrics from a streaming confusion matrix, with the keys and numbers of evaluate's ``mean_iou``.

``reference_mean_iou`` re-implements evaluate's algorithm line by line (it is the baseline for tests and the
benchmark); ``ConfusionMatrix`` gives bit-identical numbers from per-image sparse confusions, 15-20x faster on
512x512 masks (``benchmarks/bench_metrics.py``).
Pixels whose prediction or (non-ignored) label lies outside ``0..K-1`` are handled exactly as evaluate's
``np.histogram(..., range=(0, K - 1))`` handles them, and counted in ``out_of_range`` so callers can report them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import PurePath
from typing import Any, NamedTuple

import numpy as np

from segstudio.core.labels import IGNORE_INDEX, LabelConvention

METRIC_KEYS = ("mean_iou", "mean_accuracy", "overall_accuracy", "per_category_iou", "per_category_accuracy")
# Above this share of run starts among pixels, run-length grouping costs more than a plain bincount.
RUNS_MAX_FRACTION = 0.25
# Above this many grid cells ((K+2) x (K+1): past ~510 classes), tables cover only the classes an image holds
# (measured: a dense table was faster at 300 classes, 1.3x slower at 847).
_DENSE_TABLE_MAX = 1 << 18
_EMPTY_I32 = np.zeros(0, np.int32)
_EMPTY_I64 = np.zeros(0, np.int64)
_EMPTY_I32.flags.writeable = False
_EMPTY_I64.flags.writeable = False


# --- the reference: evaluate's metrics/mean_iou/mean_iou.py, step by step ---------------------------------------
# As in current evaluate, every label_map entry reads the original labels (older scripts applied them in turn).


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


def _nanmean(values: np.ndarray) -> np.float64:
    """np.nanmean without its all-NaN warning (warnings filters are process-wide, so none are touched)."""
    return np.nanmean(values) if not np.isnan(values).all() else np.float64(np.nan)


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
        "mean_iou": _nanmean(iou),
        "mean_accuracy": _nanmean(acc),
        "overall_accuracy": all_acc,
        "per_category_iou": iou,
        "per_category_accuracy": acc,
    }
    if nan_to_num is not None:
        metrics = {key: np.nan_to_num(value, nan=nan_to_num) for key, value in metrics.items()}
    return metrics


# --- metrics from totals -----------------------------------------------------------------------------------------


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
        "mean_iou": float(_nanmean(iou)),
        "mean_accuracy": float(_nanmean(acc)),
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


# --- the fast per-image kernel -----------------------------------------------------------------------------------
# Hand-written because the obvious `np.bincount(label * K + pred)` first widens every pixel to int64 and scans the
# result twice for its min and max: measured at 7-10x the reference, and np.unique / torch.bincount were slower
# still. Real masks are blobby: in row-major order a 512x512 (label, prediction) pair changes only every ~13
# pixels. So we compare neighbours (SIMD passes into reusable buffers; masks whose values all fit a byte are
# narrowed to uint8 first), keep one pixel per run and bincount the ~20k run heads weighted by run length.
# Every pixel of a run has its head's values, so only heads are placed on the grid: a label becomes row 0..K-1,
# K (outside 0..K-1) or K+1 (ignored), a prediction column 0..K-1 or K (through lookup tables for 8/16-bit
# values). The first K+1 rows of that (K+2) x (K+1) grid are ImageConfusion's layout, so nothing is masked out
# or folded pixel by pixel: for label sets over 255 classes 1.6x (int64) to 3x (uint16) faster than masking and
# widening every pixel (`bench_metrics.py --classes 300 --dtype uint16`). Noisy masks place every pixel instead.

# Finding the ~20k run ends among 262k change flags is the costliest step. numpy's nonzero() takes ~1 ns per
# flag at this density; viewing the flags as uint64 words, finding the non-zero words (about a third) and
# expanding only those takes half that. Very sparse flags are faster with nonzero() itself (it skips by memchr).
_WORD_SCAN_MIN_DENSITY = 0.01


def _places(values: np.ndarray, num_labels: int, ignore_index: int | None) -> np.ndarray:
    """Grid index of each value, as intp: the value for 0..K-1, K outside that range, K+1 for ``ignore_index``."""
    out = values.astype(np.intp)
    out[(values < 0) | (values >= num_labels)] = num_labels
    if ignore_index is not None:
        out[values == ignore_index] = num_labels + 1
    return out


class _RunCounter:
    """One image's confusion by run-length grouping; owns scratch buffers and lookup tables (one thread)."""

    def __init__(self, num_labels: int, ignore_index: int) -> None:
        self.num_labels = num_labels
        self.ignore_index = ignore_index
        self._change = np.zeros(0, bool)
        self._other = np.zeros(0, bool)
        self._tables: dict[object, np.ndarray] = {}

    def _buffers(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        if self._other.size < m:
            self._change = np.empty(m, bool)
            self._other = np.empty(m, bool)
        return self._change, self._other[:m]

    def _run_ends(self, change: np.ndarray, m: int, k: int) -> np.ndarray:
        """np.flatnonzero(change[:m]), which holds k true values (word by word where that is faster)."""
        whole = m - m % 8
        if m == 0 or k / m < _WORD_SCAN_MIN_DENSITY or whole == 0:
            return np.flatnonzero(change[:m])
        words = change[:whole].view(np.uint64)
        busy = np.flatnonzero(words != 0)
        bits = np.flatnonzero(words[busy].view(np.bool_))
        ends = busy[bits >> 3]
        ends <<= 3
        ends += bits & 7
        if whole < m:
            ends = np.concatenate([ends, np.flatnonzero(change[whole:m]) + whole])
        return ends

    def _runs(self, label: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(first pixel, length as float) of each run of equal (label, pred); None when runs are too short."""
        n = label.size
        change, other = self._buffers(n - 1)
        np.not_equal(label[1:], label[:-1], out=change[: n - 1])
        np.not_equal(pred[1:], pred[:-1], out=other)
        np.logical_or(change[: n - 1], other, out=change[: n - 1])
        k = int(np.count_nonzero(change[: n - 1]))
        if k + 1 > n * RUNS_MAX_FRACTION:
            return None
        heads = np.empty(k + 1, np.intp)
        heads[0] = 0
        np.add(self._run_ends(change, n - 1, k), 1, out=heads[1:])
        lengths = np.empty(k + 1, np.float64)
        np.subtract(heads[1:], heads[:-1], out=lengths[:-1])
        lengths[-1] = n - heads[-1]
        return heads, lengths

    def _place(self, values: np.ndarray, is_label: bool) -> np.ndarray:
        """Rows (0..K+1) of labels or columns (0..K) of predictions; through a table for 8/16-bit values."""
        ignore = self.ignore_index if is_label else None
        if values.dtype.itemsize > 2:
            return _places(values, self.num_labels, ignore)
        bits = np.dtype(f"u{values.dtype.itemsize}")  # signed values index the table by their bit pattern
        key = (is_label, values.dtype)
        if key not in self._tables:
            every = np.arange(np.iinfo(bits).max + 1, dtype=bits).view(values.dtype)
            self._tables[key] = _places(every, self.num_labels, ignore)
        # intp indices: numpy's fancy indexing by uint8 / uint16 arrays runs 2-3x slower (measured)
        return self._tables[key][values.view(bits).astype(np.intp)]

    def _joint_table(self) -> np.ndarray:
        """Grid code ``row * (K + 1) + column`` of every (uint8 label, uint8 prediction), at label * 256 + pred."""
        if "joint" not in self._tables:
            every = np.arange(256, dtype=np.uint8)
            rows, cols = self._place(every, is_label=True), self._place(every, is_label=False)
            self._tables["joint"] = (rows[:, None] * (self.num_labels + 1) + cols[None, :]).reshape(-1)
        return self._tables["joint"]

    def confusion(self, label: np.ndarray, pred: np.ndarray) -> ImageConfusion:
        """The confusion of two flat integer arrays of one size."""
        k = self.num_labels
        if label.size == 0:
            return _image_confusion(np.zeros(0, np.intp), np.zeros(0, np.int64), k)
        dense = (k + 2) * (k + 1) <= _DENSE_TABLE_MAX
        label, pred = _narrowed(label), _narrowed(pred)
        runs = self._runs(label, pred)
        lengths = None
        if runs is not None:
            heads, lengths = runs
            if dense and label.dtype == pred.dtype == np.uint8:  # both bytes looked up at once, as a uint16
                pair = np.empty((heads.size, 2), np.uint8)
                pair[:, 0] = pred[heads]
                pair[:, 1] = label[heads]
                code = self._joint_table()[pair.view("<u2")[:, 0].astype(np.intp)]
                return _image_confusion(*_dense_counts(code, lengths, k), k)
            label, pred = label[heads], pred[heads]
        rows, cols = self._place(label, is_label=True), self._place(pred, is_label=False)
        if dense:
            rows *= k + 1
            rows += cols
            return _image_confusion(*_dense_counts(rows, lengths, k), k)
        return _image_confusion(*_compact_counts(rows, cols, lengths, k), k)


def _narrowed(values: np.ndarray) -> np.ndarray:
    """``values`` as uint8 when all lie in 0..255, so that the neighbour comparisons read 1 byte a pixel instead
    of 2-8 (int64 argmax output, Trainer's label ids)."""
    if values.dtype.itemsize == 1 or int(values.max()) > 255 or int(values.min()) < 0:
        return values
    return values.astype(np.uint8)


def _dense_counts(code: np.ndarray, weights: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted non-zero grid codes below the ignore row, their pixel counts) through a (K+2)(K+1) table."""
    table = np.bincount(code, weights=weights, minlength=(k + 2) * (k + 1))[: (k + 1) * (k + 1)]
    index = np.flatnonzero(table != 0)  # (np.flatnonzero on floats takes ~4 ns a value, on booleans ~0.3)
    return index, table[index].astype(np.int64)


def _compact_counts(
    rows: np.ndarray, cols: np.ndarray, weights: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``_dense_counts`` for large label sets: a table over only the rows and columns that occur (an image holds
    a few dozen classes; a dense table for 847 classes is 720k cells to clear and scan)."""
    used_rows = np.flatnonzero(np.bincount(rows, minlength=k + 2)[: k + 1])  # the ignore row is dropped here
    used_cols = np.flatnonzero(np.bincount(cols, minlength=k + 1))
    row_rank = np.full(k + 2, -1, np.intp)
    row_rank[used_rows] = np.arange(used_rows.size)
    col_rank = np.zeros(k + 1, np.intp)
    col_rank[used_cols] = np.arange(used_cols.size)
    compact = row_rank[rows]
    keep = compact >= 0
    if not keep.all():
        compact, cols = compact[keep], cols[keep]
        weights = None if weights is None else weights[keep]
    compact *= used_cols.size
    compact += col_rank[cols]
    table = np.bincount(compact, weights=weights, minlength=used_rows.size * used_cols.size)
    found = np.flatnonzero(table != 0)
    row, col = np.divmod(found, max(1, used_cols.size))
    return used_rows[row] * (k + 1) + used_cols[col], table[found].astype(np.int64)


def _image_confusion(index: np.ndarray, counts: np.ndarray, num_labels: int) -> ImageConfusion:
    """ImageConfusion from sorted codes over the (K+1) x (K+1) grid (index K: outside 0..K-1) and their counts."""
    k = num_labels
    cell_dtype = _cell_dtype(k)
    rows, cols = np.divmod(index, k + 1)
    inside = (rows < k) & (cols < k)
    cells = (rows[inside] * k + cols[inside]).astype(cell_dtype)
    if inside.all():
        return ImageConfusion(k, cells, counts)
    outside = ~inside
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
        self._counter = _RunCounter(self.num_labels, self.ignore_index)
        self.images = 0

    def update(self, pred: Any, label: Any) -> ImageConfusion:
        """Score one image; returns its sparse confusion (already added here)."""
        pred = _as_int_array(pred, "prediction")
        label = _as_int_array(label, "label")
        if pred.shape != label.shape:
            raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
        if self.label_map:
            label = apply_label_map(label, self.label_map)
        confusion = self._counter.confusion(label.ravel(), pred.ravel())
        self.add(confusion)
        return confusion

    def add(self, confusion: ImageConfusion) -> None:
        """Add one image's confusion (e.g. to regroup stored images by scene)."""
        k = self.num_labels
        if confusion.num_labels != k:
            raise ValueError(
                f"an image scored with {confusion.num_labels} classes cannot join a {k}-class matrix"
            )
        flat = self._ext.reshape(-1)
        flat[confusion.cells + confusion.cells // k] += confusion.counts
        flat[confusion.stray_cells] += confusion.stray_counts
        self.images += 1

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
    """``reference_mean_iou``'s signature and numbers, fast. ``reduce_labels`` goes through ``LabelConvention``,
    which equals evaluate's reduction for ``ignore_index=255`` (evaluate hard-codes 255 there)."""
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

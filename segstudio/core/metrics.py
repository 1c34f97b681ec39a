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
_DENSE_TABLE_MAX = 1 << 24
# A dense table of pixel counts over ``label * width + pred``, or its sorted non-zero codes and their counts.
JointCounts = np.ndarray | tuple[np.ndarray, np.ndarray]
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
# pixels. So we compare neighbours on the raw uint8 arrays (SIMD passes into reusable buffers), keep one code per
# run and bincount the ~20k run heads weighted by run length: ~2.3x faster than the plain bincount. Ignored and
# out-of-range values are never masked out (no boolean compaction): they land in their own rows/columns of the
# 256x256 joint table and are folded afterwards. Noisy masks (many runs) fall back to the plain bincount.

# Finding the ~20k run ends among 262k change flags is the costliest step. numpy's nonzero() takes ~1 ns per
# flag at this density; viewing the flags as uint64 words, finding the non-zero words (about a third) and
# expanding only those takes half that. Very sparse flags are faster with nonzero() itself (it skips by memchr).
_WORD_SCAN_MIN_DENSITY = 0.01


class _RunCounter:
    """Joint histograms of two flat small-int arrays by run-length grouping; owns scratch buffers (one thread)."""

    def __init__(self) -> None:
        self._change = np.zeros(0, bool)
        self._other = np.zeros(0, bool)

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

    def counts(self, label: np.ndarray, pred: np.ndarray, width: int, size: int) -> JointCounts:
        """Pixel counts of the codes ``label * width + pred`` (width 256 for uint8 inputs)."""
        n = label.size
        if n == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.int64)
        change, other = self._buffers(n - 1)
        np.not_equal(label[1:], label[:-1], out=change[: n - 1])
        np.not_equal(pred[1:], pred[:-1], out=other)
        np.logical_or(change[: n - 1], other, out=change[: n - 1])
        k = int(np.count_nonzero(change[: n - 1]))
        if k + 1 > n * RUNS_MAX_FRACTION:
            code = label.astype(np.intp)
            code *= width
            code += pred
            return _histogram(code, None, size)
        heads = np.empty(k + 1, np.intp)
        heads[0] = 0
        np.add(self._run_ends(change, n - 1, k), 1, out=heads[1:])
        weights = np.empty(k + 1, np.float64)
        np.subtract(heads[1:], heads[:-1], out=weights[:-1])
        weights[-1] = n - heads[-1]
        return _histogram(_head_codes(label, pred, heads, width), weights, size)


def _head_codes(label: np.ndarray, pred: np.ndarray, heads: np.ndarray, width: int) -> np.ndarray:
    if width == 256 and label.dtype == np.uint8 and pred.dtype == np.uint8:
        pair = np.empty((heads.size, 2), np.uint8)  # little-endian uint16: label * 256 + pred
        pair[:, 0] = pred[heads]
        pair[:, 1] = label[heads]
        return pair.view("<u2")[:, 0]
    code = label[heads].astype(np.intp)
    code *= width
    code += pred[heads]
    return code


def _histogram(code: np.ndarray, weights: np.ndarray | None, size: int) -> JointCounts:
    if size <= _DENSE_TABLE_MAX:
        return np.bincount(code, weights=weights, minlength=size)
    codes, inverse = np.unique(code, return_inverse=True)
    return codes, np.bincount(inverse, weights=weights, minlength=codes.size).astype(np.int64)


def _fits_uint8(values: np.ndarray) -> bool:
    if values.dtype == np.uint8:
        return True
    return values.size == 0 or (int(values.min()) >= 0 and int(values.max()) <= 255)


def _as_int_array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == np.bool_:
        return array.view(np.uint8)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    return array


def _image_confusion(
    counter: _RunCounter, pred: np.ndarray, label: np.ndarray, num_labels: int, ignore_index: int
) -> ImageConfusion:
    """One image's confusion: its joint counts, without the ignore row, folded into K x K cells and strays."""
    if _fits_uint8(label) and _fits_uint8(pred):
        g, p = label.astype(np.uint8, copy=False).ravel(), pred.astype(np.uint8, copy=False).ravel()
        ignore_row = ignore_index if 0 <= ignore_index <= 255 else None
        return _fold_counts(counter.counts(g, p, 256, 65536), g.size, 256, num_labels, ignore_row)
    # Wide values: labels -> 0..K-1, K (outside) or K+1 (ignored); predictions -> 0..K-1 or K.
    k = num_labels
    dtype = np.uint8 if k + 2 <= 256 else (np.uint16 if k + 2 <= 65536 else np.int64)
    width = 256 if dtype == np.uint8 else k + 1
    g = np.where((label >= 0) & (label < k), label, k).astype(dtype).ravel()
    g[np.asarray(label == ignore_index).ravel()] = k + 1
    p = np.where((pred >= 0) & (pred < k), pred, k).astype(dtype).ravel()
    return _fold_counts(counter.counts(g, p, width, (k + 2) * width), g.size, width, k, k + 1)


def _fold_counts(
    joint: JointCounts, pixels: int, width: int, num_labels: int, ignore_row: int | None
) -> ImageConfusion:
    """Fold a dense table by reading its in-range block (rows and columns 0..K-1) directly, when every pixel
    outside that block is ignored; otherwise, and for sparse counts, cell by cell (``_fold``)."""
    if isinstance(joint, tuple):
        return _fold(*joint, width, num_labels, ignore_row)
    grid = joint.reshape(-1, width)
    rows, cols = min(num_labels, grid.shape[0]), min(num_labels, width)
    block = grid[:rows, :cols].copy()
    ignored = 0.0
    if ignore_row is not None:
        ignored = grid[ignore_row].sum()
        if ignore_row < rows:
            block[ignore_row] = 0
    flat = block.reshape(-1)
    index = np.flatnonzero(flat != 0)  # (np.flatnonzero on floats takes ~4 ns a value, on booleans ~0.3)
    counts = flat[index]
    if counts.sum() + ignored != pixels:  # some pixel has a value outside 0..K-1
        codes = np.flatnonzero(joint != 0)
        return _fold(codes, joint[codes].astype(np.int64), width, num_labels, ignore_row)
    cells = index if cols == num_labels else (index // cols) * num_labels + index % cols
    return ImageConfusion(num_labels, cells.astype(_cell_dtype(num_labels)), counts.astype(np.int64))


def _cell_dtype(num_labels: int) -> type:
    return np.int32 if (num_labels + 1) ** 2 < 2**31 else np.int64


def _fold(codes, counts, width: int, num_labels: int, ignore_row: int | None) -> ImageConfusion:
    """Drop the ignore row; split in-range cells from those with a value outside 0..K-1."""
    k = num_labels
    rows, cols = np.divmod(codes, width)
    if ignore_row is not None:
        keep = rows != ignore_row
        rows, cols, counts = rows[keep], cols[keep], counts[keep]
    inside = (rows < k) & (cols < k)
    cell_dtype = _cell_dtype(k)
    cells = (rows[inside] * k + cols[inside]).astype(cell_dtype)
    if inside.all():
        return ImageConfusion(k, cells, counts)
    outside = ~inside
    ext = np.minimum(rows[outside], k) * (k + 1) + np.minimum(cols[outside], k)
    stray_cells, inverse = np.unique(ext, return_inverse=True)
    stray_counts = np.bincount(inverse, weights=counts[outside]).astype(np.int64)
    return ImageConfusion(k, cells, counts[inside], stray_cells.astype(cell_dtype), stray_counts)


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
        self._counter = _RunCounter()
        self.images = 0

    def update(self, pred: Any, label: Any) -> ImageConfusion:
        """Score one image; returns its sparse confusion (already added here)."""
        pred = _as_int_array(pred, "prediction")
        label = _as_int_array(label, "label")
        if pred.shape != label.shape:
            raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
        if self.label_map:
            label = apply_label_map(label, self.label_map)
        confusion = _image_confusion(self._counter, pred, label, self.num_labels, self.ignore_index)
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

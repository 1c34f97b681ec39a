"""Pixel counts of one image's (label, prediction) pairs on the (K+1) x (K+1) confusion grid, fast.

Rows and columns 0..K-1 are classes, K is "outside 0..K-1"; labels equal to the ignore index are not counted.
"""

from __future__ import annotations

import numpy as np

# Above this share of runs among pixels, run-length grouping costs more than counting every pixel.
RUNS_MAX_FRACTION = 0.25
# Above this many grid cells ((K+2) x (K+1): past ~510 classes), tables cover only the classes an image holds
# (measured: a dense table was faster at 300 classes, 1.3x slower at 847).
DENSE_TABLE_MAX = 1 << 18

# Hand-written because the obvious `np.bincount(label * K + pred)` first widens every pixel to int64 and scans the
# result twice for its min and max: measured at 7-10x the reference, and np.unique / torch.bincount were slower
# still. Real masks are blobby: in row-major order a 512x512 (label, prediction) pair changes only every ~13
# pixels. So we flag where neighbours differ (SIMD passes into reusable buffers; masks whose values all fit a byte
# are narrowed to uint8 and joined into one uint16 per pixel, so one comparison and one gather serve both), keep
# the last pixel of each run and bincount those ~20k pixels weighted by run length.
# Every pixel of a run has its last pixel's values, so only those are placed on the grid: a label becomes row
# 0..K-1, K (outside 0..K-1) or K+1 (ignored), a prediction column 0..K-1 or K (through lookup tables for 8/16-bit
# values). The first K+1 rows of that (K+2) x (K+1) grid are the counts' grid, so nothing is masked out or
# folded pixel by pixel: for label sets over 255 classes 1.6x (int64) to 3x (uint16) faster than masking and
# widening every pixel (`bench_metrics.py --classes 300 --dtype uint16`). Noisy masks (an untrained model's
# predictions) count every pixel instead; for uint8 masks as one bincount of the joined pairs, placing only the
# distinct pairs (0.8-1.2 ms per 512x512 image; placing every pixel through the tables took 4-5 ms).

# Finding the ~20k run ends among 262k flags is the costliest step. numpy's nonzero() takes ~1 ns per flag at this
# density; viewing the flags as uint64 words, finding the non-zero words (about a third) and expanding only those
# takes half that. Ends rather than starts of runs: the last pixel's flag is set by hand, so no run is special.


def _places(values: np.ndarray, num_labels: int, ignore_index: int | None) -> np.ndarray:
    """Grid index of each value, as intp: the value for 0..K-1, K outside that range, K+1 for ``ignore_index``."""
    out = values.astype(np.intp)
    out[(values < 0) | (values >= num_labels)] = num_labels
    if ignore_index is not None:
        out[values == ignore_index] = num_labels + 1
    return out


class RunCounter:
    """Counts one image's (label, prediction) pairs by run-length grouping; owns scratch buffers and lookup
    tables, so one per thread."""

    def __init__(self, num_labels: int, ignore_index: int) -> None:
        self.num_labels = num_labels
        self.ignore_index = ignore_index
        self._change = np.zeros(0, bool)
        self._other = np.zeros(0, bool)
        self._pairs = np.zeros(0, np.uint16)
        self._word_index = np.zeros(0, np.intp)
        self._tables: dict[object, np.ndarray] = {}

    def _run_ends(self, change: np.ndarray) -> np.ndarray | None:
        """Sorted positions of the true flags in ``change`` (whose last flag is true: it ends the last run); None
        when they exceed RUNS_MAX_FRACTION of the pixels."""
        n = change.size
        whole = n - n % 8
        words = change[:whole].view(np.uint64)
        busy = (words != 0).nonzero()[0]
        if busy.size > words.size * (1 - (1 - RUNS_MAX_FRACTION) ** 8):  # as busy as scattered noisy flags
            return None
        bits = words[busy].view(np.bool_).nonzero()[0]  # flag bytes of the busy words, 8 per word
        if bits.size > n * RUNS_MAX_FRACTION:
            return None
        if self._word_index.size < busy.size:
            self._word_index = np.arange(words.size, dtype=np.intp)
        busy -= self._word_index[: busy.size]  # flag at bits[i] lies 8 * (busy word - its rank) further on
        busy <<= 3
        ends = busy[bits >> 3]
        ends += bits
        if whole < n:
            ends = np.concatenate([ends, np.flatnonzero(change[whole:]) + whole])
        return ends

    def _scratch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Change flags for ``n`` pixels and the second buffer (``n - 1`` flags), reused across images."""
        if self._change.size < n:
            self._change = np.empty(n, bool)
            self._other = np.empty(n, bool)
        return self._change[:n], self._other[: n - 1]

    def _pixel_pairs(self, label: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """``label * 256 + pred`` of uint8 masks, as uint16, in a reused buffer."""
        if self._pairs.size < label.size:
            self._pairs = np.empty(label.size, np.uint16)
        pairs = self._pairs[: label.size]
        np.multiply(label, 256, dtype=np.uint16, out=pairs)
        np.add(pairs, pred, dtype=np.uint16, out=pairs)
        return pairs

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

    def counts(self, label: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sorted grid codes ``row * (K + 1) + column`` below the ignore row, their pixel counts) of two flat
        integer arrays of one size."""
        k = self.num_labels
        if label.size == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.int64)
        dense = (k + 2) * (k + 1) <= DENSE_TABLE_MAX
        label, pred = _narrowed(label), _narrowed(pred)
        change, other = self._scratch(label.size)
        if dense and label.dtype == pred.dtype == np.uint8:  # both bytes compared and looked up at once
            pairs = self._pixel_pairs(label, pred)
            np.not_equal(pairs[1:], pairs[:-1], out=change[:-1])
            change[-1] = True
            ends = self._run_ends(change)
            if ends is None:  # count every pair, then place the ~thousand distinct ones
                table = np.bincount(pairs, minlength=1 << 16)
                seen = np.flatnonzero(table != 0)
                return _dense_counts(self._joint_table()[seen], table[seen], k)
            return _dense_counts(self._joint_table()[pairs[ends].astype(np.intp)], _lengths(ends), k)
        np.not_equal(label[1:], label[:-1], out=change[:-1])
        np.not_equal(pred[1:], pred[:-1], out=other)
        np.logical_or(change[:-1], other, out=change[:-1])
        change[-1] = True
        ends = self._run_ends(change)
        lengths = None
        if ends is not None:
            lengths = _lengths(ends)
            label, pred = label[ends], pred[ends]
        rows, cols = self._place(label, is_label=True), self._place(pred, is_label=False)
        if dense:
            rows *= k + 1
            rows += cols
            return _dense_counts(rows, lengths, k)
        return _compact_counts(rows, cols, lengths, k)


def _lengths(ends: np.ndarray) -> np.ndarray:
    """Lengths of the runs that end at ``ends`` (sorted; the first run starts at pixel 0), as float64: the
    bincount weights they become."""
    lengths = np.empty(ends.size, np.float64)
    lengths[0] = ends[0] + 1
    np.subtract(ends[1:], ends[:-1], out=lengths[1:])
    return lengths


def _narrowed(values: np.ndarray) -> np.ndarray:
    """``values`` as uint8 when all lie in 0..255, so that the neighbour comparisons read 1 byte a pixel instead
    of 2-8 (int64 argmax output, Trainer's label ids)."""
    if values.dtype.itemsize == 1 and values.dtype.kind == "u":
        return values
    if int(values.max()) > 255 or int(values.min()) < 0:
        return values
    return values.astype(np.uint8)


def _dense_counts(code: np.ndarray, weights: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted non-zero grid codes below the ignore row, their pixel counts) through a (K+2)(K+1) table."""
    table = np.bincount(code, weights=weights, minlength=(k + 2) * (k + 1))[: (k + 1) * (k + 1)]
    index = (table != 0).nonzero()[0]  # (nonzero() on floats takes ~4 ns a value, on booleans ~0.3)
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

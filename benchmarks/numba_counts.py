"""A compiled counting kernel for byte masks, measured by ``bench_metrics.py --numba`` only (numba is not a
dependency: see README's performance section for why).

It does in one pass over 8-pixel words what the NumPy kernel (``segstudio.core.metrics.pixel_counts``) does in a dozen
passes: word-wise XOR of each mask with itself shifted by one pixel marks where a run ends; busy words are listed,
then their run ends, both without branches (the data decide nothing but a store's offset); last, each run's
length is added on the grid at its last pixel's (label, prediction) code.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from segstudio.core.metrics.pixel_counts import DENSE_TABLE_MAX, RunCounter


@njit(nogil=True, boundscheck=False, cache=False)
def _count_runs(label, pred, label_words, pred_words, joint, table, busy, ends):
    n = label.size
    words = n // 8
    listed = 0
    label_word, pred_word = label_words[0], pred_words[0]
    for j in range(words - 1):
        label_next, pred_next = label_words[j + 1], pred_words[j + 1]
        # byte b of `change` is non-zero where pixel 8j+b differs from pixel 8j+b+1 (little-endian words)
        change = (label_word ^ ((label_word >> np.uint64(8)) | (label_next << np.uint64(56)))) | (
            pred_word ^ ((pred_word >> np.uint64(8)) | (pred_next << np.uint64(56)))
        )
        busy[listed] = change
        busy[listed + 1] = j
        listed += 2 * (change != 0)
        label_word, pred_word = label_next, pred_next
    found = 0
    for at in range(0, listed, 2):
        change, base = busy[at], busy[at + 1] * 8
        for b in range(8):
            ends[found] = base + b
            found += (change >> np.uint64(8 * b)) & np.uint64(0xFF) != 0
    for i in range((words - 1) * 8 if words else 0, n - 1):  # the last word and any tail, pixel by pixel
        ends[found] = i
        found += (label[i] != label[i + 1]) | (pred[i] != pred[i + 1])
    ends[found] = n - 1
    found += 1
    start = 0
    for r in range(found):
        i = ends[r]
        table[joint[(np.int32(label[i]) << 8) | pred[i]]] += i + 1 - start
        start = i + 1


class NumbaRunCounter(RunCounter):
    """``RunCounter`` whose contiguous byte masks go through the compiled kernel (others as before)."""

    def __init__(self, num_labels: int, ignore_index: int) -> None:
        super().__init__(num_labels, ignore_index)
        self._busy = np.zeros(0, np.uint64)
        self._ends = np.zeros(0, np.int64)

    def counts(self, label: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = self.num_labels
        byte_masks = label.dtype == pred.dtype == np.uint8 and label.flags.c_contiguous and pred.flags.c_contiguous
        if not byte_masks or label.size < 16 or label.size % 8 or (k + 2) * (k + 1) > DENSE_TABLE_MAX:
            return super().counts(label, pred)
        if self._ends.size < label.size + 1:
            self._busy = np.empty(label.size // 4 + 2, np.uint64)
            self._ends = np.empty(label.size + 8, np.int64)
        table = np.zeros((k + 2) * (k + 1), np.int64)
        joint = self._joint_table()
        _count_runs(label, pred, label.view(np.uint64), pred.view(np.uint64), joint, table, self._busy, self._ends)
        table = table[: (k + 1) * (k + 1)]
        index = (table != 0).nonzero()[0]
        return index, table[index]

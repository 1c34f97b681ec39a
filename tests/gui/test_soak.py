"""Soak: 200 drag-and-drop predictions in a row through the window's real drop path; memory must stay flat."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.gui.controllers.sources import DROPPED

DROPS = 200
MAX_GROWTH_MB = 150


def resident_mb() -> float:
    """Resident memory of this process in MB (psutil when installed, else /proc/self/statm)."""
    try:
        import psutil
    except ImportError:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return psutil.Process().memory_info().rss / 2**20


def test_200_dropped_predictions_in_a_row_keep_memory_flat(make_window, scratch_bundle, qtbot, tmp_path, drop_files):
    rng = np.random.default_rng(0)
    files = []
    for i in range(8):
        path = tmp_path / f"drop {i}.png"
        Image.fromarray(rng.integers(0, 255, (48 + i, 64, 3), dtype=np.uint8)).save(path)
        files.append(path)
    window = make_window()
    window.review.set_model(scratch_bundle)

    def drop_and_wait(i: int) -> None:
        path = files[i % len(files)]
        previous = window.review.sources.get(DROPPED)
        drop_files(window, [path])
        qtbot.waitUntil(lambda: (s := window.review.sources.get(DROPPED)) is not None and s is not previous,
                        timeout=30_000)
        qtbot.waitUntil(lambda: (r := window.review.results(create=False)) is not None and r.complete
                        and not window.jobs.is_running(), timeout=30_000)
        outcome = window.review.results().get(0)
        assert outcome.error is None and outcome.prediction.unpack().shape == (48 + i % len(files), 64)

    for i in range(10):  # warm up: first imports, the background warm-up job, caches of Qt and torch
        drop_and_wait(i)
    gc.collect()
    before = resident_mb()
    started = time.monotonic()
    for i in range(DROPS):
        drop_and_wait(i)
    elapsed = time.monotonic() - started
    gc.collect()
    qtbot.wait(50)
    growth = resident_mb() - before
    print(f"\n{DROPS} dropped predictions in {elapsed:.1f} s; resident memory {before:.0f} MB -> "
          f"{before + growth:.0f} MB (growth {growth:+.1f} MB)")
    assert window.errors == []
    assert len(window.review.cache) <= window.review.cache.capacity  # old drop groups' results were let go
    assert growth < MAX_GROWTH_MB, f"resident memory grew by {growth:.0f} MB over {DROPS} drops"

"""Process-wide set-up, called only by the entry points (the ``segstudio`` command and the window's ``run_app``).

Each tweak says what it fixes and what it measured. Library code never calls these; it may use the scoped
:func:`collector_skips_loaded_objects` around one long call.

1. ``keep_freed_memory``: glibc's allocator keeps freed tensor memory in the process.
2. ``protect_none_from_pyside``: headroom for the references PySide6 6.12 loses to None/True/False (CPython < 3.12).
3. ``freeze_loaded_objects`` / ``collector_skips_loaded_objects``: the garbage collector skips torch's and
   transformers' objects.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
from collections.abc import Iterator

# --- 1. Allocator -------------------------------------------------------------------------------------------------
# Keep freed tensor memory in the process (glibc), so each batch does not page-fault its buffers in again.
#
# glibc hands allocations above a (dynamic, at most 32 MiB) threshold to mmap and gives them back on free, and
# trims the heap's top once 128 KiB of it are free. PyTorch's CPU tensors are plain malloc'd buffers, so every
# forward pass maps, zero-fills (page faults) and unmaps its activations again: on the 2-core benchmark machine
# that was 1.25 million page faults over six batches of 8 and ~40% of SegFormer-b0's encoder time (105 -> 62 ms per image).
# PyTorch's CPU tuning guide recommends jemalloc or tcmalloc for this; ``mallopt`` gets the same effect from the
# allocator already loaded, without LD_PRELOAD. Cost: the heap keeps up to ``TRIM_THRESHOLD`` of free memory, and threads share one arena.



MMAP_THRESHOLD = 256 << 20  # allocations below this come from the heap and are reused
TRIM_THRESHOLD = 512 << 20  # the heap's free top goes back to the system beyond this
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # from glibc's malloc.h
OPT_OUT = "SEGSTUDIO_SYSTEM_MALLOC"


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds and use one arena in this process; False where that does not apply.

    Set ``SEGSTUDIO_SYSTEM_MALLOC=1`` to leave the allocator as it is.
    """
    if os.environ.get(OPT_OUT) or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # One arena: a worker thread's (the GUI trains and predicts in QThreads) would otherwise get heaps of at
    # most 64 MiB that glibc maps, trims and unmaps on its own, outside these thresholds.
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_ARENA_MAX, 1))
    return all([mallopt(option, value) for option, value in settings])


# --- 2. PySide6 reference leak ------------------------------------------------------------------------------------
# PySide6 6.12.0 returns None (and sometimes True) from many wrappers without taking a reference (measured: 1,000
# calls of QImage.setPixel, QImage.setColorTable or QLabel.setText each drop 1,000 references to None). On CPython
# 3.12 and later None is immortal (PEP 683) and nothing happens; on 3.11 browsing an image drops ~760 references, so
# after a few hundred images CPython frees None and aborts ("Fatal Python error: none_dealloc"). Reproducer:
#   img = QImage(2, 2, QImage.Format.Format_Indexed8); n = sys.getrefcount(None)
#   for _ in range(1000): img.setPixel(0, 0, 1)
#   assert sys.getrefcount(None) == n   # fails on PySide6 6.12.0 + CPython 3.11
# Not found in PySide's tracker (https://bugreports.qt.io/projects/PYSIDE) when this was written; report it there
# with the reproducer above. There is nothing to release (these objects live for the whole process), so the
# work-around adds a large count to their reference counts once, before any window exists, and only where
# :func:`pyside_loses_references` sees the leak happen.
HEADROOM = 1 << 40  # a trillion lost references away from zero
LEAKY_PYSIDE = ((6, 12), (6, 12))  # the PySide6 versions (major, minor) where the leak was measured, inclusive
_PROBE_CALLS = 64
_headroom_added = False


def _immortal_none() -> bool:
    return sys.implementation.name != "cpython" or sys.version_info >= (3, 12)


def _version(text: str) -> tuple[int, int]:
    major, minor = (int(part) for part in text.split(".")[:2])
    return major, minor


def pyside_loses_references() -> bool:
    """True when this PySide6 drops references to None: checked by calling a leaking method and counting."""
    if _immortal_none():
        return False
    import PySide6
    from PySide6.QtGui import QImage

    low, high = LEAKY_PYSIDE
    if not low <= _version(PySide6.__version__) <= high:
        return False
    image = QImage(1, 1, QImage.Format.Format_Indexed8)
    image.setColorTable([0xFF000000])  # index 0 exists, so setPixel(0, 0, 0) is a valid call
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        image.setPixel(0, 0, 0)
    return before - sys.getrefcount(None) >= _PROBE_CALLS


def protect_none_from_pyside() -> bool:
    """Raise the reference counts of None, True and False by HEADROOM (once), where the leak exists."""
    global _headroom_added
    if _headroom_added or not pyside_loses_references():
        return False
    for value in (None, True, False):
        # ob_refcnt is the first field of every CPython object; the GIL is held, so no other thread races us.
        ctypes.c_ssize_t.from_address(id(value)).value += HEADROOM
    _headroom_added = True
    return True


# --- 3. Garbage collector -----------------------------------------------------------------------------------------
def freeze_loaded_objects() -> None:
    """Move every object alive now out of the collector's generations, so later collections skip them.

    Full collections walk every object of torch and transformers with the GIL held (~0.4 s each in the window; the
    interpreter's last collections at exit took ~0.9 s per CLI process). Frozen objects are still freed when
    unreachable; they are only never scanned. Called once the heavy libraries are loaded (window) and at the end
    of a CLI command.
    """
    gc.freeze()


@contextlib.contextmanager
def collector_skips_loaded_objects() -> Iterator[None]:
    """Freeze what is alive for the duration of one long call, then unfreeze so nothing is kept past it.

    ``Trainer.train()`` starts with accelerate's ``free_memory()``, a full ``gc.collect()``: ~190 ms with the GIL
    held, which froze the window when training started. A process that froze objects itself is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def set_up_command_line() -> None:
    """What the ``segstudio`` command does once, before any work."""
    keep_freed_memory()


def set_up_window() -> None:
    """What the window does once, before the QApplication exists (tests that build windows call it too)."""
    keep_freed_memory()
    protect_none_from_pyside()

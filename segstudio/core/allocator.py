"""Keep freed tensor memory in the process (glibc), so each batch does not page-fault its buffers in again.

glibc hands allocations above a (dynamic, at most 32 MiB) threshold to mmap and gives them back on free, and
trims the heap's top once 128 KiB of it are free. PyTorch's CPU tensors are plain malloc'd buffers, so every
forward pass maps, zero-fills (page faults) and unmaps its activations again: on the 2-core benchmark machine
that was 1.25 million page faults over six batches of 8 and ~40% of SegFormer-b0's encoder time (105 -> 62 ms per image).
PyTorch's CPU tuning guide recommends jemalloc or tcmalloc for this; ``mallopt`` gets the same effect from the
allocator already loaded, without LD_PRELOAD. Cost: the heap keeps up to ``TRIM_THRESHOLD`` of free memory, and threads share one arena.
"""

from __future__ import annotations

import ctypes
import os
import sys

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

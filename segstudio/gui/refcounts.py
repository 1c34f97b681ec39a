"""Headroom for the references PySide6 6.12 loses to None and True on CPython before 3.12.

PySide6 6.12 returns None (and sometimes True) from its wrappers without taking a reference; on Python 3.12
and later those objects are immortal and nothing happens, but on 3.11 every call costs one reference. Browsing
an image drops about 760 references to None, so after a few hundred images CPython frees None and aborts
("Fatal Python error: none_dealloc"), at the latest when the window closes. Measured with
``sys.getrefcount(None)`` around QImage.setColorTable, QPixmap.fill and QLabel.setText, among others.

There is nothing to release: these objects live for the whole process. So the fix is to add a large count to
their reference counts once, before any window exists (2**40: a trillion lost references away from zero).
"""

from __future__ import annotations

import ctypes
import sys

HEADROOM = 1 << 40
_PROTECTED = (None, True, False)
_applied = False


def needs_headroom() -> bool:
    """True on CPython before 3.12, where None and the booleans are not immortal."""
    return sys.implementation.name == "cpython" and sys.version_info < (3, 12)


def add_headroom() -> bool:
    """Raise the reference counts of None, True and False by HEADROOM (once per process); False if not needed."""
    global _applied
    if _applied or not needs_headroom():
        return False
    for value in _PROTECTED:
        # ob_refcnt is the first field of every CPython object; the GIL is held, so no other thread races us.
        ctypes.c_ssize_t.from_address(id(value)).value += HEADROOM
    _applied = True
    return True

"""One export at a time into a folder: an OS lock on a hidden lock file, released when its process ends.

The lock is the operating system's (``flock``, or ``msvcrt.locking`` on Windows), so a lock file left behind by
a process that died holds nothing and the next export simply takes it over.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from segstudio.core.export.writers import ExportError, _explain

LOCK_NAME = ".segstudio-export.lock"

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt


def _try_lock(fd: int) -> bool:
    """Take the lock without waiting; False when another holds it (a file system without locks: True)."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        return exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK)
    return True


def _holder(fd: int) -> str:
    """`` (pid N)`` from the lock file, or nothing when it cannot be read."""
    with contextlib.suppress(OSError, ValueError, IndexError, AttributeError):  # no os.pread on Windows
        pid = int(os.pread(fd, 32, 0).decode("ascii").split()[0])
        return f" (pid {pid})"
    return ""


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (its last holder may have removed it meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fd), os.lstat(path))
    except OSError:
        return False


def _busy(folder: Path, holder: str) -> ExportError:
    return ExportError(f"another SegStudio export{holder} is writing to {folder}: "
                       "wait until it has finished, or choose another output folder")


def refuse_if_locked(folder: str | Path) -> None:
    """ExportError when another export holds ``folder``'s lock now (a look before a model loads; takes nothing)."""
    folder = Path(folder)
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return  # no lock file: nobody holds the lock
    try:
        if not _try_lock(fd):
            raise _busy(folder, _holder(fd))
    finally:
        os.close(fd)  # closing releases the lock taken to look


def _acquire(folder: Path) -> int:
    path = folder / LOCK_NAME
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    while True:
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as exc:
            raise _explain(path, exc) from None
        if not _try_lock(fd):
            holder = _holder(fd)
            os.close(fd)
            raise _busy(folder, holder)
        if _same_file(fd, path):
            with contextlib.suppress(OSError, AttributeError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            return fd
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s export lock (ExportError at once when another process holds it); removed on release."""
    folder = Path(folder)
    fd = _acquire(folder)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if _same_file(fd, folder / LOCK_NAME):
                os.unlink(folder / LOCK_NAME)
        os.close(fd)

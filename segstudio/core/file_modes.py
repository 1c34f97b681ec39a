"""File modes as the umask allows them, for files written through ``mkstemp`` or ``mkdtemp`` (which use 0600/0700)."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the process umask (read without changing it on Linux)."""
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    with _UMASK_LOCK:  # elsewhere the only way to read the umask is to set it and put it back
        umask = os.umask(0o077)
        os.umask(umask)
    return 0o666 & ~umask


def share_as_umask_allows(folder: str | Path) -> None:
    """Give a folder written through ``mkdtemp`` or writers that create files 0600 (safetensors) the modes the umask
    allows, as ``mkdir`` and ``open`` would have: teammates on a shared folder can read a checkpoint."""
    files = file_mode()
    folders = files | ((files & 0o444) >> 2)  # search permission wherever read permission is given
    for path in [Path(folder), *Path(folder).rglob("*")]:
        if path.is_symlink():
            continue
        os.chmod(path, folders if path.is_dir() else files)

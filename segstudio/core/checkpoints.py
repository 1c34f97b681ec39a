"""Which checkpoints in a training folder are complete.

Trainer writes ``checkpoint-N`` in place, so a run stopped mid-save can leave a folder that looks whole.
We mark a checkpoint complete only after Trainer's ``on_save`` (everything written), and list only those.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

COMPLETE_MARKER = "segstudio-complete.json"
_STEP = re.compile(r"^checkpoint-(\d+)$")


def mark_complete(folder: Path, **info: object) -> None:
    """Write the completeness marker atomically (the last file written to a checkpoint)."""
    folder = Path(folder)
    payload = json.dumps({"completed_at": time.time(), **info}).encode()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".marker-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, folder / COMPLETE_MARKER)


def is_complete(folder: Path) -> bool:
    return (Path(folder) / COMPLETE_MARKER).is_file()


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete ``checkpoint-N`` folders by step, then ``final`` if present."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    steps = []
    for child in output_dir.iterdir():
        match = _STEP.match(child.name)
        if match and child.is_dir() and is_complete(child):
            steps.append((int(match.group(1)), child))
    found = [path for _, path in sorted(steps)]
    final = output_dir / "final"
    if is_complete(final):
        found.append(final)
    return found


_DISK_REASONS = {
    errno.ENOSPC: "disk full: free some space",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the folder is read-only: choose another --output",
    errno.EACCES: "the folder is not writable: choose another --output",
    errno.EPERM: "the folder is not writable: choose another --output",
}


@contextlib.contextmanager
def save_errors(output_dir: Path, error: type[Exception]) -> Iterator[None]:
    """Turn a full disk or an unwritable folder while saving checkpoints into ``error`` with one clear line."""
    try:
        yield
    except OSError as exc:
        reason = _DISK_REASONS.get(exc.errno)
        if reason is None:
            raise
        raise error(f"cannot save a checkpoint in {output_dir}: {reason} (the complete checkpoints are kept)") from None

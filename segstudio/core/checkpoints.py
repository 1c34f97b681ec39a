"""Which checkpoints in a training folder are complete.

Trainer writes ``checkpoint-N`` in place, so a run stopped mid-save can leave a folder that looks whole.
We mark a checkpoint complete only after Trainer's ``on_save`` (everything written), and list only those.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
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

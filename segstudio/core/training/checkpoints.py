"""Which checkpoints in a training folder are complete.

Trainer writes ``checkpoint-N`` in place, so a run stopped mid-save can leave a folder that looks whole. A
checkpoint is complete only once its marker is written, after Trainer's ``on_save`` (everything written); the marker
records each file's size, and is removed before a folder is written again, so a rewrite cut short is never listed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from segstudio.core.file_modes import share_as_umask_allows

COMPLETE_MARKER = "segstudio-complete.json"
TRAINER_STATE = "trainer_state.json"
_STEP = re.compile(r"^checkpoint-(\d+)$")
_MARKER_TMP = ".marker-"


def mark_complete(folder: Path, **info: object) -> None:
    """Write the completeness marker atomically (the last file written to a checkpoint)."""
    folder = Path(folder)
    files = {p.name: p.stat().st_size for p in folder.iterdir()
             if p.is_file() and p.name != COMPLETE_MARKER and not p.name.startswith(_MARKER_TMP)}
    payload = json.dumps({"completed_at": time.time(), **info, "files": files}).encode()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_MARKER_TMP)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
    share_as_umask_allows(folder)  # safetensors and mkstemp (this marker) write 0600 whatever the umask
    os.replace(tmp, folder / COMPLETE_MARKER)


def unmark(folder: Path) -> None:
    """Withdraw the marker: the folder is about to be written again (or removed)."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        (Path(folder) / COMPLETE_MARKER).unlink()


def is_complete(folder: Path) -> bool:
    """The marker is there and every file it lists still has the size it had when the checkpoint was marked."""
    try:
        record = json.loads((Path(folder) / COMPLETE_MARKER).read_bytes())
        files = record.get("files", {}) if isinstance(record, dict) else None
        return isinstance(files, dict) and all(
            (Path(folder) / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, TypeError):
        return False


def completion_info(folder: Path) -> dict:
    """What the marker of a complete checkpoint records besides its files (``step``; ``cancelled`` for the final
    model of a cancelled run); {} for a folder that is not complete."""
    if not is_complete(folder):
        return {}
    record = json.loads((Path(folder) / COMPLETE_MARKER).read_bytes())
    return {key: value for key, value in record.items() if key != "files"}


def checkpoint_caption(folder: Path) -> str:
    """How a checkpoint is named to a person: ``final — cancelled at step 37``, ``checkpoint-20``."""
    info, name = completion_info(folder), Path(folder).name
    if info.get("cancelled") and isinstance(info.get("step"), int):
        return f"{name} — cancelled at step {info['step']}"
    return name


def checkpoint_step(folder: Path) -> int | None:
    """N for a folder named ``checkpoint-N``."""
    match = _STEP.match(Path(folder).name)
    return int(match.group(1)) if match else None


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete ``checkpoint-N`` folders by step, then ``final`` if present."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    steps = []
    for child in output_dir.iterdir():
        step = checkpoint_step(child)
        if step is not None and child.is_dir() and not child.is_symlink() and is_complete(child):
            steps.append((step, child))
    found = [path for _, path in sorted(steps)]
    final = output_dir / "final"
    if is_complete(final):
        found.append(final)
    return found


def newest_checkpoint(output_dir: Path) -> Path | None:
    """The complete ``checkpoint-N`` with the largest N (what a run resumes from)."""
    steps = [path for path in list_checkpoints(output_dir) if checkpoint_step(path) is not None]
    return steps[-1] if steps else None


def trainer_progress(checkpoint: Path) -> tuple[int, float]:
    """(global step, epoch) that Trainer's ``trainer_state.json`` records in ``checkpoint``."""
    state = json.loads((Path(checkpoint) / TRAINER_STATE).read_text())
    return int(state.get("global_step") or 0), float(state.get("epoch") or 0.0)


def remove_checkpoint(folder: Path) -> None:
    """Delete a checkpoint this run wrote: the marker first, so a removal cut short is never listed."""
    unmark(folder)
    shutil.rmtree(folder, ignore_errors=True)


_DISK_REASONS = {
    errno.ENOSPC: "disk full: free some space",
    errno.EDQUOT: "disk quota exceeded: free some space",
    errno.EROFS: "the folder is read-only: choose another --output",
    errno.EACCES: "the folder is not writable: choose another --output",
    errno.EPERM: "the folder is not writable: choose another --output",
}
# What writers that report no errno say when the disk fills: safetensors (Rust's io::Error) and torch.save.
_DISK_FULL_TEXT = ("No space left on device", "StorageFull", "os error 28", "unexpected pos", "file write failed")
_QUOTA_TEXT = ("Disk quota exceeded", "os error 122")


def disk_reason(exc: BaseException) -> str | None:
    """Why writing failed, if a full disk or an unwritable folder is the cause (else None)."""
    if isinstance(exc, OSError) and exc.errno in _DISK_REASONS:
        return _DISK_REASONS[exc.errno]
    text = str(exc)
    if any(part in text for part in _QUOTA_TEXT):
        return _DISK_REASONS[errno.EDQUOT]
    if any(part in text for part in _DISK_FULL_TEXT):
        return _DISK_REASONS[errno.ENOSPC]
    return None


@contextlib.contextmanager
def save_errors(output_dir: Path, error: type[Exception]) -> Iterator[None]:
    """Turn a full disk or an unwritable folder while saving checkpoints into ``error`` with one clear line."""
    try:
        yield
    except Exception as exc:
        reason = disk_reason(exc)
        if reason is None or isinstance(exc, error):
            raise
        what, fix = reason.split(": ", 1)
        raise error(f"{what} while saving a checkpoint in {output_dir}: {fix} (the complete checkpoints are kept "
                    "and resuming continues from the newest)") from None

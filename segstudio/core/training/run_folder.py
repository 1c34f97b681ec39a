"""The training output folder: where a run may write, and the staging folders a killed run leaves behind.

A run starts only in a new or empty folder; ``resume`` continues one that an earlier SegStudio run made (it holds
``segstudio-run.json`` and complete checkpoints). Staging folders are ``.segstudio-staging-<purpose>-<random>``
with a sibling ``<name>.owner`` file (host, pid, the process's start time); a later run removes those whose process
is gone, and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
from pathlib import Path

from segstudio.core.errors import SegStudioError
from segstudio.core.training.checkpoints import is_complete, list_checkpoints, newest_checkpoint

RUN_MARKER = "segstudio-run.json"
STAGING_PREFIX = ".segstudio-staging-"
OWNER_SUFFIX = ".owner"


class RunFolderError(SegStudioError, RuntimeError):
    """The output folder cannot take this run (one line: what is wrong and the fix)."""


def is_run_folder(path: Path) -> bool:
    """A folder a SegStudio training run made (its marker, or checkpoints SegStudio marked complete)."""
    path = Path(path)
    return (path / RUN_MARKER).is_file() or bool(list_checkpoints(path))


def _left_by_segstudio(entry: Path) -> bool:
    """The run marker and staging leftovers: what a run that saved nothing leaves (a new run may start there)."""
    return entry.name == RUN_MARKER or entry.name.startswith(STAGING_PREFIX)


def check_output(path: Path, resume: bool, owner_check: bool = True) -> Path | None:
    """Refuse an output folder this run may not write into (reads only); returns the checkpoint to resume from.

    ``owner_check``: refuse a folder another live process is training in (off for the other ranks of a
    distributed run, whose first rank owns it)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"the output {path} is a file, not a folder: choose a folder for the checkpoints")
    if owner_check:
        _refuse_a_live_run(path)
    if resume:
        if not is_run_folder(path):
            raise RunFolderError(f"nothing to resume in {path}: it holds no SegStudio training run "
                                 "(start a new run there instead of resuming)")
        final = path / "final"
        if final.exists() and not is_complete(final):
            raise RunFolderError(f"{final} is not a model SegStudio saved: move it out of {path}, then resume")
        newest = newest_checkpoint(path)
        if newest is None:
            raise RunFolderError(f"{path} has no complete checkpoint to resume from: start the run again in a "
                                 "new output folder")
        return newest
    if path.is_dir() and any(not _left_by_segstudio(entry) for entry in path.iterdir()):
        if is_run_folder(path):
            raise RunFolderError(f"{path} already holds a training run: resume it, or choose a new output "
                                 "folder")
        raise RunFolderError(f"{path} is not empty and training never writes over other files: choose a new or "
                             "empty output folder (or resume a SegStudio run)")
    return None


def claim_output(path: Path, settings: dict, data: dict | None = None) -> bool:
    """Create the folder if needed, record the run's settings (and ``data``: what it trains on) and sweep stale
    staging; True if it was created."""
    path = Path(path)
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    _write_json(path / RUN_MARKER, {"created_by": "segstudio train", "owner": _this_process(), "settings": settings,
                                    "data": data})
    remove_stale_staging(path, restore={"previous-final": path / "final"})
    return created


def release_output(path: Path, created: bool) -> None:
    """When a run ends: the folder has no owner any more; if nothing was saved, the marker goes too, and the folder
    if this run created it."""
    path = Path(path)
    if list_checkpoints(path):
        _write_json(path / RUN_MARKER, {"created_by": "segstudio train", "settings": recorded_settings(path),
                                        "data": _recorded(path, "data")})
        return
    (path / RUN_MARKER).unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            path.rmdir()  # only if empty


def _refuse_a_live_run(path: Path) -> None:
    try:
        owner = json.loads((path / RUN_MARKER).read_text()).get("owner")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(owner, dict) and owner.get("pid") != os.getpid() and _owner_alive(owner):
        raise RunFolderError(f"{path} is being trained by process {owner.get('pid')} on {owner.get('host')} right "
                             "now: wait for it to finish or stop it, or choose another output folder")


def recorded_settings(path: Path) -> dict:
    """The settings the run in ``path`` last started with ({} if none are recorded)."""
    return _recorded(path, "settings") or {}


def _recorded(path: Path, key: str) -> dict | None:
    """An object the run marker in ``path`` records under ``key`` (None if there is none)."""
    try:
        value = json.loads((Path(path) / RUN_MARKER).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, dict) else None


def _write_json(target: Path, payload: dict) -> None:
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    os.replace(tmp, target)


# --- staging folders --------------------------------------------------------------------------------------


def make_staging(parent: Path, purpose: str) -> Path:
    """A new empty staging folder in ``parent``; its owner file is written first, so none is ever unowned."""
    folder = Path(parent) / f"{STAGING_PREFIX}{purpose}-{secrets.token_hex(6)}"
    _owner_file(folder).write_text(json.dumps(_this_process()))
    folder.mkdir()
    return folder


def discard_staging(folder: Path) -> None:
    """Remove a staging folder (if still there) and its owner file."""
    folder = Path(folder)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
    _owner_file(folder).unlink(missing_ok=True)


def remove_stale_staging(parent: Path, restore: dict[str, Path] | None = None) -> list[Path]:
    """Remove staging folders in ``parent`` whose owning process has ended; returns them.

    ``restore`` maps a purpose to where such a folder goes back if that place is empty (a folder moved aside
    while its replacement was put in place, the process killed in between).
    """
    removed = []
    for owner in sorted(Path(parent).glob(f"{STAGING_PREFIX}*{OWNER_SUFFIX}")):
        try:
            info = json.loads(owner.read_text())
        except (OSError, ValueError):
            continue  # not a file we wrote, or being written: leave it
        if not isinstance(info, dict) or _owner_alive(info):
            continue
        folder = owner.with_name(owner.name[: -len(OWNER_SUFFIX)])
        purpose = folder.name[len(STAGING_PREFIX):].rsplit("-", 1)[0]
        back = (restore or {}).get(purpose)
        if back is not None and folder.is_dir() and not back.exists():
            os.replace(folder, back)
        discard_staging(folder)
        removed.append(folder)
    return removed


def _owner_file(folder: Path) -> Path:
    return folder.with_name(folder.name + OWNER_SUFFIX)


def _this_process() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_time(os.getpid())}


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid from the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(info: dict) -> bool:
    """Whether the process recorded in an owner file may still be running (another host's: assume so)."""
    if info.get("host") != socket.gethostname():
        return True
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started, now = info.get("started"), _start_time(pid)
    return started is None or now is None or started == now

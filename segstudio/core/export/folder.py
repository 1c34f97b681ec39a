"""Whole exports into a folder: staged, checked, then moved into place at once, never over a person's file.

An export writes into a hidden staging folder inside the output folder, under the folder's lock. Only when it
completes are its files moved into place; a file already there is replaced only if the previous export wrote it
and it is unchanged (its size and sha256 are in ``.segstudio-export.json``), and nothing is written or removed
through a link. Any other file in the way refuses the export before work starts, with one clear line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from segstudio.core.export.folder_lock import LOCK_NAME, folder_lock, refuse_if_locked
from segstudio.core.export.manifest import file_sha256
from segstudio.core.export.writers import ExportError, _explain, atomic_write_text, write_metrics_json

EXPORT_RECORD = ".segstudio-export.json"  # what the last export into a folder wrote, with sizes and sha256 (hidden)
RECORD_FORMAT = "segstudio-export-2"
STAGING_PREFIX = ".segstudio-staging-"
_RESERVED = (EXPORT_RECORD, LOCK_NAME)


@dataclass
class StagedExport:
    """A hidden staging folder inside the export folder; set ``keep = False`` to discard it (cancelled)."""

    folder: Path
    keep: bool = True


Record = dict[str, dict]


def _safe_name(name: object) -> bool:
    """A plain relative POSIX path: no '..', '.', empty or absolute parts, and not one of SegStudio's own files."""
    if not isinstance(name, str) or not name:
        return False
    path = PurePosixPath(name)
    return (not path.is_absolute() and path.as_posix() == name and not {"..", "."} & set(path.parts)
            and path.parts[0] not in _RESERVED and not path.parts[0].startswith(STAGING_PREFIX))


def read_record(root: Path) -> Record:
    """The previous export's files, ``{relative path: {"size", "sha256"}}``; unreadable or forged entries dropped."""
    path = root / EXPORT_RECORD
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("format") == RECORD_FORMAT else None
    if not isinstance(files, dict):
        return {}
    return {name: entry for name, entry in files.items() if _safe_name(name) and isinstance(entry, dict)
            and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)}


def _fingerprint(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def _in_the_way(root: Path, name: str) -> tuple[str, str | None]:
    """("absent" | "file", None) for ``root/name``, or ("blocked", why) when a link or a non-folder is on its path."""
    parts = PurePosixPath(name).parts
    for depth in range(1, len(parts) + 1):
        path = root.joinpath(*parts[:depth])
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return "absent", None
        except OSError as exc:
            raise _explain(path, exc) from None
        last = depth == len(parts)
        if stat.S_ISLNK(mode):
            return "blocked", (f"{path} is a link: an export writes only inside the real output folder; "
                               "remove the link or choose another output folder")
        if last and not stat.S_ISREG(mode) or not last and not stat.S_ISDIR(mode):
            return "blocked", f"{path} is in the way: move it away or choose another output folder"
    return "file", None


def _unchanged(root: Path, name: str, entry: dict) -> bool:
    """Whether ``root/name`` is a regular file (reached through no link) that still holds what was recorded."""
    if _in_the_way(root, name)[0] != "file":
        return False
    path = root / name
    try:
        return path.stat().st_size == entry["size"] and file_sha256(path) == entry["sha256"]
    except OSError:
        return False


def check_targets(root: Path, names: Iterable[str | Path], previous: Record) -> None:
    """ExportError unless every name can be written: absent, or a file the previous export wrote, unchanged."""
    for name in dict.fromkeys(Path(n).as_posix() for n in names):
        if not _safe_name(name):
            raise ExportError(f"{root / name} is not a name an export may write (SegStudio keeps it for itself)")
        kind, why = _in_the_way(root, name)
        if why:
            raise ExportError(why)
        if kind == "file" and not (name in previous and _unchanged(root, name, previous[name])):
            raise ExportError(f"{root / name} already exists and the last export here did not write it (or it was "
                              "changed since): move it away or choose another output folder")


def check_export(output_dir: str | Path, planned: Iterable[str | Path]) -> None:
    """The checks :func:`staged_export` makes before work, made early (before a model loads); changes nothing."""
    if os.path.isdir(output_dir):
        root = Path(os.path.realpath(output_dir))
        refuse_if_locked(root)
        check_targets(root, planned, read_record(root))


@contextlib.contextmanager
def staged_export(output_dir: str | Path, planned: Iterable[str | Path] = (), *,
                  replace: bool = True) -> Iterator[StagedExport]:
    """Write a whole export into ``stage.folder``; on success its files move into ``output_dir`` at once.

    The folder is locked for the whole export, and ``planned`` (relative names) is checked before work starts.
    ``replace`` removes the previous export's files that this one did not write (unchanged ones only); without it
    the new files join them. On an exception (or ``keep = False``) nothing in ``output_dir`` changes.
    """
    output_dir = Path(output_dir)
    created = not os.path.lexists(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        root = Path(os.path.realpath(output_dir))
    except OSError as exc:
        raise _explain(output_dir, exc) from None
    try:
        with folder_lock(root):
            previous = read_record(root)
            check_targets(root, planned, previous)
            try:
                stage = StagedExport(Path(tempfile.mkdtemp(dir=root, prefix=STAGING_PREFIX)))
            except OSError as exc:
                raise _explain(root, exc) from None
            try:
                yield stage
                if stage.keep:
                    _commit(stage.folder, root, previous, replace)
            finally:
                shutil.rmtree(stage.folder, ignore_errors=True)
    finally:
        if created:  # a failed or empty first export leaves no folder behind
            with contextlib.suppress(OSError):
                output_dir.rmdir()


def _commit(staging: Path, root: Path, previous: Record, replace: bool) -> None:
    """Check every staged file's target again, record them, move them in; then remove the replaced export's rest."""
    new = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    check_targets(root, new, previous)
    if _in_the_way(root, EXPORT_RECORD)[1]:
        raise ExportError(_in_the_way(root, EXPORT_RECORD)[1])
    record = {name: _fingerprint(staging / name) for name in new}
    kept = {} if replace else {name: entry for name, entry in previous.items() if name not in record}
    atomic_write_text(staging / EXPORT_RECORD,
                      json.dumps({"format": RECORD_FORMAT, "files": {**kept, **record}}, indent=1) + "\n")
    _move_in(staging, root, [*new, EXPORT_RECORD])
    if replace:
        for name, entry in previous.items():
            if name not in record and _unchanged(root, name, entry):
                with contextlib.suppress(OSError):
                    (root / name).unlink()
                    _remove_empty_parents(root, name)


def _move_in(staging: Path, root: Path, names: list[str]) -> None:
    """Rename each staged file into place, setting aside what it replaces; on any failure (a full disk) every
    step is undone, so the folder is exactly as before."""
    created: list[Path] = []
    aside: list[str] = []
    moved: list[str] = []
    backup = None
    try:
        backup = Path(tempfile.mkdtemp(dir=root, prefix=".segstudio-replaced-"))
        for name in names:
            for parent in list(PurePosixPath(name).parents)[-2::-1]:
                if not os.path.lexists(root / parent):
                    os.mkdir(root / parent)
                    created.append(root / parent)
            if os.path.lexists(root / name):
                (backup / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(root / name, backup / name)
                aside.append(name)
            os.replace(staging / name, root / name)
            moved.append(name)
    except OSError as exc:
        for name in reversed(moved):
            with contextlib.suppress(OSError):
                os.replace(root / name, staging / name)
        for name in reversed(aside):
            with contextlib.suppress(OSError):
                os.replace(backup / name, root / name)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise _explain(root, exc) from None
    finally:
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)


def _remove_empty_parents(root: Path, name: str) -> None:
    for parent in list(PurePosixPath(name).parents)[:-1]:
        with contextlib.suppress(OSError):
            (root / parent).rmdir()


def check_report_path(path: str | Path) -> None:
    """Before work: a report file (``check``, ``compare`` or ``label-issues`` with ``--json`` / ``--csv``) may go
    where no file of the person's is."""
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"{path} is a folder: give a file name for the report")
    check_export(path.parent, [path.name])


@contextlib.contextmanager
def staged_report(path: str | Path) -> Iterator[Path]:
    """Where to write one report file: an export of its own, which joins the folder's other files and replaces only
    a report SegStudio wrote there before and nobody changed since."""
    path = Path(path)
    check_report_path(path)
    with staged_export(path.parent, [path.name], replace=False) as stage:
        yield stage.folder / path.name


def write_report_json(path: str | Path, document: Mapping[str, Any]) -> None:
    """One JSON report, written as :func:`staged_report` says."""
    with staged_report(path) as target:
        write_metrics_json(target, document)

"""The corrections store: edited masks kept beside a dataset, never over it.

A corrections folder holds one index PNG per corrected mask (dataset ids, 8- or 16-bit) at
``<split>/<file_name with .png>``, and ``corrections.json``: the dataset it was made for and, per item, the sha256
of the original and of the corrected mask, the changed pixel count and the time. Every file is written to a
temporary sibling, synced and renamed into place, so a crash or a kill leaves the old file or the new one. Each PNG
also carries its item's record in text chunks, so an index a kill left behind its masks is rebuilt from them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, PngImagePlugin

from segstudio.core.errors import SegStudioError
from segstudio.core.export.writers import ExportError, atomic_write_bytes

INDEX_NAME = "corrections.json"
FORMAT = "segstudio-corrections"
VERSION = 1
_TEXT_PREFIX = "segstudio:"
_SPLIT_NAME_MAX = 64


class CorrectionsError(SegStudioError):
    """A correction cannot be saved or read (wrong size, unsafe name, foreign folder); one clear line."""


@dataclass(frozen=True)
class CorrectionItem:
    """One corrected mask: where it lies (``mask``, relative to the folder) and what it changed."""

    split: str
    file_name: str
    mask: str
    original_sha256: str
    corrected_sha256: str
    changed_pixels: int
    time: str


def mask_sha256(ids: np.ndarray) -> str:
    """sha256 of a mask's ids and shape, whatever integer type holds them (uint8 and uint16 of the same ids agree)."""
    ids = np.asarray(ids)
    small = ids.size == 0 or (int(ids.min()) >= 0 and int(ids.max()) <= 65535)
    data = np.ascontiguousarray(ids, dtype="<u2" if small else "<i8")
    digest = hashlib.sha256(f"{ids.shape[0]}x{ids.shape[1] if ids.ndim > 1 else 0}:".encode())
    digest.update(data.tobytes())
    return digest.hexdigest()


def corrections_digest(masks: Iterable[tuple[str, str, bytes]]) -> str:
    """sha256 over (split, file name, PNG bytes) of each corrected mask, in any order."""
    lines = sorted(f"{split}\0{name}\0{hashlib.sha256(data).hexdigest()}\n" for split, name, data in masks)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _safe_relative(text: str, what: str) -> PurePosixPath:
    """A relative POSIX path that cannot leave its folder (no '..', no root, no drive, no NUL, no hidden part)."""
    if not isinstance(text, str) or not text or "\x00" in text or "\\" in text:
        raise CorrectionsError(f"{what} {text!r} is not a safe relative path")
    path = PurePosixPath(text)
    if path.is_absolute() or any(part in ("..", ".", "") or part.startswith(".") for part in path.parts) \
            or ":" in path.parts[0]:
        raise CorrectionsError(f"{what} {text!r} would leave the corrections folder; it must be a plain relative path")
    return path


def _check_split(split: str) -> str:
    if not isinstance(split, str) or not split.isidentifier() or len(split) > _SPLIT_NAME_MAX:
        raise CorrectionsError(f"split {split!r} is not a split name (train, validation, test ...)")
    return split


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where folders cannot be opened, e.g. Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _durable_write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except ExportError as exc:
        raise CorrectionsError(str(exc)) from None
    _fsync_folder(path.parent)


def _mask_png(mask: np.ndarray, item: CorrectionItem) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in asdict(item).items():
        if key != "mask":
            info.add_itxt(_TEXT_PREFIX + key, str(value))
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return buffer.getvalue()


def _read_png(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    from segstudio.core.data.imageio import ImageReadError, read_mask

    try:
        with Image.open(path) as image:
            text = {k[len(_TEXT_PREFIX):]: str(v) for k, v in getattr(image, "text", {}).items()
                    if k.startswith(_TEXT_PREFIX)}
        return read_mask(path), text
    except (ImageReadError, OSError) as exc:
        raise CorrectionsError(f"corrected mask {path} cannot be read: {exc}") from None


def _stat_key(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


class CorrectionsStore:
    """A corrections folder. ``dataset`` (a dataset's ``source``) is recorded by the first save and names the
    dataset in messages; whether corrections fit a dataset is decided by the original masks' sha256."""

    def __init__(self, path: str | Path, dataset: str | None = None) -> None:
        self.path = Path(path).expanduser()
        if self.path.exists() and not self.path.is_dir():
            raise CorrectionsError(f"{self.path} is a file; a corrections folder is a folder")
        self._dataset = dataset
        self._index: dict | None = None

    # --- reading ---------------------------------------------------------------------------------------

    @property
    def dataset(self) -> str | None:
        """The dataset the corrections were made for (as recorded), else the one given."""
        return self._load_index().get("dataset") or self._dataset

    def items(self, split: str | None = None) -> list[CorrectionItem]:
        """The corrected masks of ``split`` (all splits when None), sorted by split and file name."""
        found = []
        for name, entries in sorted(self._load_index()["items"].items()):
            if split is None or name == split:
                found += [self._item(name, file_name, entry) for file_name, entry in sorted(entries.items())]
        return found

    def load(self, split: str, file_name: str) -> np.ndarray | None:
        """The corrected mask of a row (dataset ids, as saved), or None when it has no correction."""
        entry = self._load_index()["items"].get(split, {}).get(file_name)
        if entry is None:
            return None
        return _read_png(self._target(entry["mask"]))[0]

    def mask_path(self, split: str, file_name: str) -> Path | None:
        """Where a row's corrected mask lies, or None when it has none."""
        entry = self._load_index()["items"].get(split, {}).get(file_name)
        return None if entry is None else self._target(entry["mask"])

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._load_index()["items"].values())

    def digest(self) -> str:
        """sha256 over every corrected mask's split, file name and content (what a manifest records)."""
        return corrections_digest((i.split, i.file_name, self._target(i.mask).read_bytes()) for i in self.items())

    # --- writing ---------------------------------------------------------------------------------------

    def save(self, split: str, file_name: str, mask: np.ndarray, original: np.ndarray,
             dtype: type | None = None) -> CorrectionItem:
        """Save ``mask`` (dataset ids) as the correction of a row whose mask is ``original``.

        ``dtype`` (uint8 or uint16): the PNG depth; by default 8-bit when the original is and every id fits.
        """
        split = _check_split(split)
        mask, original = np.asarray(mask), np.asarray(original)
        if mask.ndim != 2 or mask.shape != original.shape:
            raise CorrectionsError(f"{split}/{file_name}: the corrected mask is {_size(mask)} but the original is "
                                   f"{_size(original)}; a correction keeps the mask's size")
        if mask.dtype.kind not in "ui" or (mask.size and (int(mask.min()) < 0 or int(mask.max()) > 65535)):
            raise CorrectionsError(f"{split}/{file_name}: mask ids must be integers in 0..65535")
        index = self._load_index()
        self._claim(index)
        relative = self._mask_name(index, split, file_name)
        if dtype is None:
            dtype = np.uint8 if original.dtype == np.uint8 and (not mask.size or int(mask.max()) <= 255) else np.uint16
        if mask.size and int(mask.max()) > np.iinfo(dtype).max:
            raise CorrectionsError(f"{split}/{file_name}: id {int(mask.max())} does not fit a "
                                   f"{np.iinfo(dtype).bits}-bit mask")
        stored = np.ascontiguousarray(mask.astype(dtype, copy=False))
        original_sha = mask_sha256(original)
        previous = index["items"].get(split, {}).get(file_name)
        if previous and original_sha == previous["corrected_sha256"]:  # an edit of the correction: same original
            original_sha = previous["original_sha256"]
        item = CorrectionItem(split, file_name, relative.as_posix(), original_sha, mask_sha256(stored),
                              int(np.count_nonzero(stored != original)),
                              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        target = self._target(item.mask)
        _durable_write(target, _mask_png(stored, item))
        index["items"].setdefault(split, {})[file_name] = {**_entry(item), "stat": _stat_key(target)}
        self._write_index(index)
        return item

    def remove(self, split: str, file_name: str) -> bool:
        """Drop a row's correction (its original is used again); False when it had none."""
        index = self._load_index()
        entry = index["items"].get(split, {}).pop(file_name, None)
        if entry is None:
            return False
        with contextlib.suppress(FileNotFoundError):
            self._target(entry["mask"]).unlink()
        if not index["items"][split]:
            del index["items"][split]
        self._write_index(index)
        return True

    # --- internals -------------------------------------------------------------------------------------

    def _claim(self, index: dict) -> None:
        recorded = index.get("dataset")
        if recorded and self._dataset and recorded != self._dataset and len(self):
            raise CorrectionsError(f"{self.path} holds corrections of {recorded}, not of {self._dataset}; "
                                   "choose another corrections folder")
        index["dataset"] = recorded or self._dataset

    def _mask_name(self, index: dict, split: str, file_name: str) -> PurePosixPath:
        """``<split>/<file_name>.png``: the image's suffix replaced, unless another row already has that name."""
        relative = _safe_relative(file_name, "file name")
        existing = index["items"].get(split, {}).get(file_name)
        if existing:
            return PurePosixPath(existing["mask"])
        taken = {entry["mask"] for entries in index["items"].values() for entry in entries.values()}
        for candidate in (relative.with_suffix(".png"), relative.with_name(relative.name + ".png")):
            name = PurePosixPath(split) / candidate
            if name.as_posix() not in taken:
                return name
        raise CorrectionsError(f"{split}/{file_name}: its mask name is taken by another row")

    def _target(self, relative: str) -> Path:
        """The file a relative mask name points to, refused if a link or '..' would take it out of the folder."""
        target = self.path / _safe_relative(relative, "mask path")
        root = self.path.resolve()
        if not target.resolve().is_relative_to(root):
            raise CorrectionsError(f"mask path {relative} leads out of {self.path}")
        return target

    def _item(self, split: str, file_name: str, entry: dict) -> CorrectionItem:
        return CorrectionItem(split, file_name, entry["mask"], entry["original_sha256"], entry["corrected_sha256"],
                              int(entry["changed_pixels"]), entry["time"])

    def _load_index(self) -> dict:
        if self._index is None:
            self._index = self._reconciled(self._read_index())
        return self._index

    def _read_index(self) -> dict:
        empty = {"format": FORMAT, "version": VERSION, "dataset": None, "items": {}}
        path = self.path / INDEX_NAME
        if not path.is_file():
            return empty
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorrectionsError(f"{path} cannot be read ({exc}); it is not a corrections index") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("items"), dict):
            raise CorrectionsError(f"{path} is not a SegStudio corrections index")
        if index.get("version", 0) > VERSION:
            raise CorrectionsError(f"{path} was written by a newer SegStudio (version {index['version']}); update")
        return index

    def _reconciled(self, index: dict) -> dict:
        """The index as the mask files say: a kill between a mask and its index entry is repaired here."""
        on_disk = self._mask_files()
        listed: set[str] = set()
        for split, entries in list(index["items"].items()):
            for file_name, entry in list(entries.items()):
                listed.add(entry.get("mask", ""))
                path = on_disk.get(entry.get("mask", ""))
                if path is None:
                    del entries[file_name]
                elif entry.get("stat") != _stat_key(path):
                    entries[file_name] = self._entry_from_png(path, split, file_name) or entry
            if not entries:
                del index["items"][split]
        for relative, path in on_disk.items():
            if relative not in listed:
                self._adopt(index, relative, path)
        return index

    def _adopt(self, index: dict, relative: str, path: Path) -> None:
        """A mask whose save was killed before its index entry: its own text chunks say what it is."""
        with contextlib.suppress(CorrectionsError):
            _, text = _read_png(path)
            split, file_name = text.get("split", ""), text.get("file_name", "")
            if split and file_name:
                entry = self._entry_from_png(path, split, file_name)
                if entry and entry["mask"] == relative:
                    index["items"].setdefault(split, {})[file_name] = entry

    def _entry_from_png(self, path: Path, split: str, file_name: str) -> dict | None:
        try:
            ids, text = _read_png(path)
        except CorrectionsError:
            return None
        relative = path.relative_to(self.path).as_posix()
        item = CorrectionItem(split, file_name, relative, text.get("original_sha256", ""), mask_sha256(ids),
                              int(text.get("changed_pixels", "0") or 0), text.get("time", ""))
        return {**_entry(item), "stat": _stat_key(path)}

    def _mask_files(self) -> dict[str, Path]:
        """Every mask PNG under the folder (temporary files, hidden folders and links skipped), by relative name."""
        if not self.path.is_dir():
            return {}
        found = {}
        for root, dirs, files in os.walk(self.path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                path = Path(root) / name
                if name.endswith(".png") and not name.startswith(".") and not path.is_symlink():
                    found[path.relative_to(self.path).as_posix()] = path
        return found

    def _write_index(self, index: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _durable_write(self.path / INDEX_NAME, (json.dumps(index, indent=1, sort_keys=True) + "\n").encode())
        self._index = index


def _entry(item: CorrectionItem) -> dict:
    entry = asdict(item)
    del entry["split"], entry["file_name"]
    return entry


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}" if array.ndim == 2 else f"an array of shape {array.shape}"

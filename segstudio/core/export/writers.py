"""Atomic writers for masks (PNG), labels.json, metrics JSON and CSV.

Every file is written to a temporary sibling and renamed into place, so a reader never sees half a file and a
full disk or a read-only folder leaves nothing behind but an :class:`ExportError`.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from segstudio.core.errors import SegStudioError
from segstudio.core.file_modes import file_mode
from segstudio.core.labels.label_map import LabelConvention, LabelMap, labels_json
from segstudio.core.labels.render import colorize, overlay
from segstudio.core.metrics.confusion import json_safe

FORMATS = ("index", "color", "overlay")
CSV_COLUMNS = ("class_id", "class_name", "iou", "accuracy", "gt_pixels", "pred_pixels", "images")
_CHUNK = 1 << 20
NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
_FORMULA_LEADERS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting with one as a formula


class ExportError(SegStudioError):
    """An output cannot be written (disk full, read-only folder, clashing names); one clear line."""


def _explain(path: Path, exc: OSError) -> ExportError:
    if exc.errno == errno.ENOSPC:
        return ExportError(f"disk full while writing {path}: free some space and run again")
    if exc.errno == errno.EDQUOT:
        return ExportError(f"disk quota exceeded while writing {path}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ExportError(f"cannot write {path}: the folder is read-only or not writable")
    return ExportError(f"cannot write {path}: {exc.strerror or exc}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``; the file gets the
    mode the umask allows (``mkstemp`` alone would leave it readable by its owner only)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".segstudio-", suffix=".tmp")  # short: any name fits
        try:
            os.chmod(tmp, file_mode())
            view = memoryview(data)
            while view:
                written = os.write(fd, view[:_CHUNK])
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise _explain(path, exc) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def png_bytes(array: np.ndarray) -> bytes:
    """PNG of a (H, W) id mask (8- or 16-bit grey) or an (H, W, 3) uint8 RGB image."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 3:
        image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    elif array.ndim == 2 and array.dtype == np.uint8:
        image = Image.fromarray(array)
    elif array.ndim == 2 and array.size and (array.min() < 0 or array.max() > 65535):
        raise ExportError(f"mask values {array.min()}..{array.max()} do not fit a 16-bit PNG")
    elif array.ndim == 2:
        image = Image.fromarray(array.astype(np.uint16))
    else:
        raise ExportError(f"cannot save an array of shape {array.shape} as PNG")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def save_png(path: str | Path, array: np.ndarray) -> None:
    atomic_write_bytes(path, png_bytes(array))


def _key(relative: Path) -> str:
    """Collision key: case-insensitive, so outputs stay distinct on Windows and macOS too."""
    return relative.as_posix().casefold()


def plan_outputs(
    inputs: list[tuple[Path, Path]], output_dir: str | Path, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """OUTPUT/<relative path>.png for each input; ExportError before any work if two inputs clash, a
    relative path would leave ``output_dir`` or a name is too long. Colour and overlay copies count too.
    """
    return [Path(output_dir) / target for target in plan_names(inputs, output_dir, formats)[0]]


def plan_names(
    inputs: list[tuple[Path, Path]], output_dir: str | Path, formats: Sequence[str] = FORMATS
) -> tuple[list[Path], list[Path]]:
    """(the index mask's relative path for each input, every relative path the masks take), checked as
    :func:`plan_outputs` says."""
    output_dir = Path(output_dir)
    targets: list[Path] = []
    every: list[Path] = []
    owners: dict[str, Path] = {}
    extra = [name for name in ("color", "overlay") if name in formats]
    for source, relative in inputs:
        relative = Path(relative)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ExportError(f"{source}: output path {relative} would leave {output_dir}")
        target = relative.with_suffix(".png")
        if len(os.fsencode(target.name)) > NAME_MAX:
            raise ExportError(f"{source}: the mask's name {target.name[:40]}... is longer than {NAME_MAX} bytes; "
                              "rename the image")
        names = ([target] if "index" in formats or not extra else []) + [Path(sub) / target for sub in extra]
        for name in names:
            owner = owners.setdefault(_key(name), source)
            if owner != source:
                raise ExportError(
                    f"{owner} and {source} would both be written to {output_dir / name}; rename one"
                )
        targets.append(target)
        every += names
    return targets, every


def write_prediction(
    out_path_index: Path,
    output_dir: Path,
    model_ids: np.ndarray,
    image: Image.Image | np.ndarray | None,
    label_map: LabelMap,
    convention: LabelConvention,
    formats: Sequence[str],
) -> list[Path]:
    """Write the requested formats: the index mask in the dataset's id convention at ``out_path_index``,
    colour and overlay PNGs under ``color/`` and ``overlay/`` with the same relative path. Returns the paths.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ExportError(f"unknown output format(s) {sorted(unknown)}: use {', '.join(FORMATS)}")
    out_path_index, output_dir = Path(out_path_index), Path(output_dir)
    try:
        relative = out_path_index.relative_to(output_dir)
    except ValueError:
        raise ExportError(f"{out_path_index} is not inside the output folder {output_dir}") from None
    convention.require_ignore_outside(label_map.num_labels)
    written = []
    if "index" in formats:  # one PNG depth for every mask of a model: 16-bit when a dataset id can exceed 255
        dataset_ids = convention.to_dataset_ids(model_ids)
        save_png(out_path_index, dataset_ids.astype(convention.dataset_dtype(label_map.num_labels), copy=False))
        written.append(out_path_index)
    if "color" in formats:
        path = output_dir / "color" / relative
        save_png(path, colorize(model_ids, label_map.palette, convention.ignore_index))
        written.append(path)
    if "overlay" in formats:
        if image is None:
            raise ExportError("an overlay needs the image")
        path = output_dir / "overlay" / relative
        rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
        save_png(path, overlay(rgb, model_ids, label_map.palette, ignore_index=convention.ignore_index))
        written.append(path)
    return written


def write_labels_json(output_dir: str | Path, label_map: LabelMap, convention: LabelConvention) -> Path:
    """``labels.json`` (id2label, palette, reduce_labels, ignore_index, mask_bits) beside the exported masks."""
    convention.require_ignore_outside(label_map.num_labels)
    path = Path(output_dir) / "labels.json"
    atomic_write_text(path, json.dumps(labels_json(label_map, convention), indent=2) + "\n")
    return path


def to_jsonable(value: Any) -> Any:
    """NaN/inf -> None, NumPy arrays and scalars -> lists and numbers, Paths -> str, recursively."""
    return json_safe(value)


def write_metrics_json(path: str | Path, metrics: Mapping[str, Any]) -> None:
    """Metrics as strict JSON (NaN written as null)."""
    text = json.dumps(to_jsonable(metrics), indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text)


def _is_signed_number(text: str) -> bool:
    """``-0.5`` or ``+3``: a spreadsheet reads it as a number, not a formula."""
    try:
        float(text)
    except ValueError:
        return False
    return text[0] in "+-" and not text[1:2].isspace()


def _cell(value: Any) -> Any:
    """A CSV cell: NaN empty, and text a spreadsheet would run as a formula behind a quote (OWASP's advice)."""
    value = to_jsonable(value)
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_LEADERS) and not _is_signed_number(value):
        return "'" + value
    return value


def write_metrics_csv(path: str | Path, rows: Iterable[Mapping[str, Any] | Any]) -> None:
    """Per-class rows with columns class_id, class_name, iou, accuracy, gt_pixels, pred_pixels, images
    (dicts or objects with those attributes; NaN written as an empty cell)."""
    buffer = io.StringIO()
    # text is always quoted: a carriage return in a name would otherwise end the row in a spreadsheet
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        get = row.get if isinstance(row, Mapping) else lambda name, r=row: getattr(r, name, None)
        writer.writerow([_cell(get(column)) for column in CSV_COLUMNS])
    atomic_write_text(path, buffer.getvalue())

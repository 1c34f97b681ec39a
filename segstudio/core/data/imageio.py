"""Reading images (upright RGB, fully decoded) and index masks, and finding image files in folders.

The one reader of every image and mask the product uses: files given by path, and dataset cells as stored
(``{"bytes", "path"}``, see :func:`stored_cells`), so a broken item fails the same way, with the same message,
in ``predict``, ``evaluate``, ``compare``, ``train`` and the window.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segstudio.core.errors import SegStudioError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_LOSSY_FORMATS = ("JPEG", "MPO")  # a mask stored so no longer holds the ids it was saved with
# 16-bit grey -> 8-bit: v * 255 / 65535, rounded (0, 1000, 30000, 65535 -> 0, 4, 117, 255).
_SIXTEEN_TO_EIGHT = np.round(np.arange(65536) * (255.0 / 65535.0)).astype(np.uint8)

# What can be read: a file path, a dataset cell as stored ({"bytes": ..., "path": ...}) or a decoded image.
Source = str | Path | Mapping | Image.Image


class ImageReadError(SegStudioError):
    """An image or mask cannot be used; the message says which file (``name``) and why (``reason``)."""

    def __init__(self, message: str, reason: str | None = None, name: str = "") -> None:
        super().__init__(message)
        self.reason, self.name = reason or message, name


def _refuse(name: str, reason: str) -> ImageReadError:
    return ImageReadError(f"{name}: {reason}", reason, name)


def _is_remote(path: str) -> bool:
    return "://" in path or "::" in path


def _name(source: Source) -> str:
    """The file a message names: the path, or the stored name of a dataset cell."""
    if isinstance(source, Mapping):
        return str(source.get("path") or "stored image")
    if isinstance(source, Image.Image):
        return str(getattr(source, "filename", "") or "image")
    return str(source)


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise _refuse(str(path), "is a folder, not an image")
    try:
        if path.stat().st_size == 0:
            raise _refuse(str(path), "empty file")
    except FileNotFoundError:
        raise _refuse(str(path), "file not found") from None


def _remote_cell(cell: Mapping) -> Image.Image:
    """A cell whose image lives on the Hub: fetched by the datasets library (as its own decoding does)."""
    import datasets

    return datasets.Image().decode_example(dict(cell))


def _opened(source: Source) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, Mapping):
        data, path = source.get("bytes"), source.get("path")
        if data is not None:
            if not data:
                raise _refuse(_name(source), "empty file")
            return Image.open(io.BytesIO(data))
        if path is None:
            raise _refuse(_name(source), "neither bytes nor a path stored")
        if _is_remote(str(path)):
            return _remote_cell(source)
        source = path
    path = Path(source)
    _check_file(path)
    return Image.open(path)


def _open(source: Source, draft: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode the first frame, turning Pillow's many failures into one clear message.

    ``draft``: a JPEG may decode at a reduced scale, no smaller than this (for thumbnails).
    """
    name = _name(source)
    image, decoded = None, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _opened(source)
            if draft is not None and image.format == "JPEG":
                image.draft("RGB", draft)
            image.load()
            decoded = True
    except UnidentifiedImageError:
        raise _refuse(name, "not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = (Image.MAX_IMAGE_PIXELS or 0) / 1e6  # the guard is off when it is None: never raised then
        raise _refuse(name, f"more than {limit:.0f} million pixels (Pillow's decompression bomb guard): downscale or tile the "
                            "image first") from None
    except FileNotFoundError:
        raise _refuse(name, "file not found") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = "truncated or corrupt" if "truncat" in str(exc).lower() else f"cannot decode ({exc})"
        raise _refuse(name, reason) from None
    finally:
        if image is not None and not decoded and image is not source:
            image.close()  # opened but not decoded: do not leave the file open
    return image


def _upright(image: Image.Image, name: str) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError):
        warnings.warn(f"{name}: unreadable EXIF orientation ignored", stacklevel=3)
        return image


def sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """The one 16-bit rule: 0..65535 scaled to 0..255 (v * 255 / 65535, rounded; beyond the range clipped)."""
    values = np.asarray(values)
    if values.dtype != np.uint16:
        values = np.clip(np.rint(values) if values.dtype.kind == "f" else values, 0, 65535).astype(np.uint16)
    return _SIXTEEN_TO_EIGHT[values]


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB from L, P, RGBA (alpha dropped), CMYK, YCbCr, 1-bit and 16-bit images (scaled, see ``sixteen_to_eight``)."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT or image.mode in ("I", "F"):
        return Image.fromarray(sixteen_to_eight(np.asarray(image)), "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def read_image(source: Source) -> Image.Image:
    """An upright (EXIF-applied), fully decoded RGB image; ImageReadError with the reason otherwise."""
    name = _name(source)
    image = _open(source)
    try:
        rgb = to_rgb(_upright(image, name))
        return rgb.copy() if rgb is image else rgb
    finally:
        if image is not source:
            image.close()


def read_thumbnail(source: Source, size: int) -> np.ndarray:
    """(h, w, 3) uint8 no larger than size x size, upright; a JPEG decodes at a reduced scale (draft mode)."""
    name = _name(source)
    image = _open(source, (size * 2, size * 2))
    try:
        rgb = to_rgb(_upright(image, name))
        rgb.thumbnail((size, size), Image.Resampling.BILINEAR)
        return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    finally:
        if image is not source:
            image.close()


def mask_ids(image: Image.Image, name: str = "mask") -> np.ndarray:
    """The class ids of a decoded index mask: L and P (palette indices) as uint8, 16-bit as uint16.

    A colour (RGB) mask is refused unless it is grey (R = G = B), which is read as one channel; of a grey mask
    with alpha (LA, PA) the grey channel is taken.
    """
    mode = image.mode
    ids = np.array(image)
    if mode in ("L", "P", "1"):
        return ids.astype(np.uint8, copy=False)
    if mode in _SIXTEEN_BIT:
        return ids.astype(np.uint16, copy=False)
    if mode == "I":
        return ids.astype(np.uint16) if ids.min(initial=0) >= 0 and ids.max(initial=0) < 65536 else ids
    if mode in ("LA", "PA"):
        return ids[..., 0].astype(np.uint8)
    if mode in ("RGB", "RGBA") and ids.ndim == 3:
        if np.array_equal(ids[..., 0], ids[..., 1]) and np.array_equal(ids[..., 0], ids[..., 2]):
            return ids[..., 0].astype(np.uint8)
        raise _refuse(name, "a colour (RGB) mask; index masks are expected (one channel of class ids: "
                            "8-bit grey, palette or 16-bit PNG)")
    raise _refuse(name, f"mask mode {mode} is not an index mask (8-bit grey, palette or 16-bit)")


def read_mask(source: Source, size: tuple[int, int] | None = None) -> np.ndarray:
    """A 2-D array of class ids (see :func:`mask_ids`), upright; with ``size`` (width, height) it must match."""
    name = _name(source)
    image = _open(source)
    try:
        if image.format in _LOSSY_FORMATS:
            raise _refuse(name, "a JPEG mask: lossy compression changes the class ids along every edge; index masks "
                                "are stored losslessly (PNG)")
        ids = mask_ids(_upright(image, name), name)
    finally:
        if image is not source:
            image.close()
    if size is not None and (ids.shape[1], ids.shape[0]) != tuple(size):
        raise _refuse(name, f"{ids.shape[1]}x{ids.shape[0]} pixels but its image is {size[0]}x{size[1]}")
    return ids


def read_pair(image: Source, mask: Source | None) -> tuple[Image.Image, np.ndarray | None]:
    """A dataset row's image and its mask (None without one), checked to be the image's size.

    When the mask is what fails, the error's ``reason`` names it (a row is known by its image's name).
    """
    rgb = read_image(image)
    if mask is None:
        return rgb, None
    try:
        return rgb, read_mask(mask, rgb.size)
    except ImageReadError as exc:
        raise ImageReadError(str(exc), f"mask {Path(exc.name).name}: {exc.reason}", exc.name) from None


def stored_cells(rows: Any) -> Any:
    """A ``datasets`` split whose image and mask columns give cells as stored (``{"bytes", "path"}``), for
    :func:`read_image` / :func:`read_mask` to decode: one broken file then fails one item, not the whole read."""
    import datasets

    for column in ("image", "annotation"):
        feature = rows.features.get(column)
        if isinstance(feature, datasets.Image) and feature.decode:
            rows = rows.cast_column(column, datasets.Image(decode=False))
    return rows


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _folder_images(folder: Path) -> list[tuple[Path, Path]]:
    """Image files under ``folder`` (recursive, hidden files and folders skipped, links not followed)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(root) / name
            if not name.startswith(".") and is_image_file(path):
                found.append((path, path.relative_to(folder)))
    return sorted(found, key=lambda item: item[1].as_posix())


def find_images(inputs: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """``(path, relative)`` for every image: a file given directly -> its name; a folder -> its images
    relative to it. Inputs keep their order, each folder is sorted; the same file is listed once.
    """
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for given in inputs:
        given = Path(given)
        if given.is_dir():
            entries = _folder_images(given)
        elif given.is_file():
            entries = [(given, Path(given.name))]
        else:
            raise ImageReadError(f"{given}: no such file or folder")
        for path, relative in entries:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                found.append((path, relative))
    return found

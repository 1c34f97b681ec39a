"""Reading images (upright RGB, fully decoded) and index masks, and finding image files in folders."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


class ImageReadError(Exception):
    """An image or mask file cannot be used; the message says which file and why."""


def _open(path: Path) -> Image.Image:
    """Open and fully decode the first frame, turning Pillow's many failures into one clear message."""
    path = Path(path)
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file")
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    image, decoded = None, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            image.load()
            decoded = True
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(f"{path}: too many pixels to be a photo (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = "truncated or corrupt" if "truncat" in str(exc).lower() else f"cannot decode ({exc})"
        raise ImageReadError(f"{path}: {reason}") from None
    finally:
        if image is not None and not decoded:
            image.close()  # opened but not decoded: do not leave the file open
    return image


def _upright(image: Image.Image, path: Path) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError):
        warnings.warn(f"{path}: unreadable EXIF orientation ignored", stacklevel=3)
        return image


def _sixteen_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer / float) grey to 8-bit RGB, scaling 0..65535 to 0..255."""
    values = np.asarray(image).astype(np.float64)
    top = 255.0 if values.max(initial=0) <= 255 else 65535.0
    grey = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB from L, P, RGBA (alpha dropped), CMYK, YCbCr, 1-bit and 16-bit images."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT or image.mode in ("I", "F"):
        return _sixteen_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def read_image(path: str | Path) -> Image.Image:
    """An upright (EXIF-applied), fully decoded RGB image; ImageReadError with the reason otherwise."""
    path = Path(path)
    with _open(path) as image:
        upright = _upright(image, path)
        rgb = to_rgb(upright)
        return rgb.copy() if rgb is image else rgb


def read_mask(path: str | Path) -> np.ndarray:
    """A 2-D array of class ids from an index mask: L and P (palette indices) as uint8, I;16 as uint16.

    A colour (RGB) mask is refused unless it is grey (R = G = B), which is read as one channel.
    """
    path = Path(path)
    with _open(path) as image:
        upright = _upright(image, path)
        mode = upright.mode
        ids = np.array(upright)
    if mode in ("L", "P"):
        return ids.astype(np.uint8, copy=False)
    if mode == "1":
        return ids.astype(np.uint8)
    if mode in _SIXTEEN_BIT:
        return ids.astype(np.uint16)
    if mode == "I":
        return ids.astype(np.uint16) if ids.min(initial=0) >= 0 and ids.max(initial=0) < 65536 else ids
    if mode in ("LA", "PA"):
        return ids[..., 0].astype(np.uint8)
    if mode in ("RGB", "RGBA") and ids.ndim == 3:
        if np.array_equal(ids[..., 0], ids[..., 1]) and np.array_equal(ids[..., 0], ids[..., 2]):
            return ids[..., 0].astype(np.uint8)
        raise ImageReadError(
            f"{path}: a colour (RGB) mask; index masks are expected (one channel of class ids: "
            "8-bit grey, palette or 16-bit PNG)"
        )
    raise ImageReadError(f"{path}: mask mode {mode} is not an index mask (8-bit grey, palette or 16-bit)")


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

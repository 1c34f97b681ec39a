"""The built-in demo dataset: synthetic lakeside / park / room / street scenes in the schema of scene_parse_150.

Ten classes named after ADE20K classes (and coloured with their ADE20K palette colours); masks store class k as
k + 1 and 0 as "other" (ignored), exactly like ADE20K, so the demo uses ``reduce_labels=True``. Images are
256x256 RGB PNGs; the test split has no annotations. Generation is deterministic by seed and vectorised over
batches of images; the default demo is cached with ``save_to_disk`` (see :func:`load_demo`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

from segstudio.core.data import demo_render, demo_scenes
from segstudio.core.data.demo_render import render
from segstudio.core.data.demo_scenes import CLASS_NAMES, CODE_TO_CLASS, SCENES, layout
from segstudio.core.data.schema import SPLITS, SegDataset, schema_features
from segstudio.core.labels.label_map import LabelConvention, LabelMap

DEMO_VERSION = "demo-v1"
DEFAULT_COUNTS = {"train": 600, "validation": 48, "test": 20}
DEMO_SIZE = 256
DEMO_SEED = 0
BATCH = 32
MARKER = "segstudio-demo.json"
# Split -> (ADE folder name, file prefix), as ADEChallengeData2016 names them.
ADE_NAMES = {"train": ("training", "train"), "validation": ("validation", "val"), "test": ("testing", "test")}


def demo_label_map() -> LabelMap:
    return LabelMap.from_names(list(CLASS_NAMES))


def demo_file_name(split: str, index: int) -> str:
    """The path a demo image gets in an ADE folder written by ``write_ade_folder`` (a stable stand-in)."""
    folder, prefix = ADE_NAMES[split]
    return f"images/{folder}/demo_{prefix}_{index + 1:08d}.jpg"


def _png(array: np.ndarray, compress_level: int) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return {"bytes": buffer.getvalue(), "path": None}


def generate(count: int, size: int, seed: int, split_id: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Batches of scenes: scene ids (b,), RGB images (b, size, size, 3) and masks (b, size, size), uint8."""
    scenes = np.random.default_rng([seed, split_id]).permutation(np.arange(count) % len(SCENES))
    for batch, start in enumerate(range(0, count, BATCH)):
        rng = np.random.default_rng([seed, split_id, batch + 1])
        codes = layout(rng, scenes[start : start + BATCH], size)
        yield scenes[start : start + BATCH], render(rng, codes), CODE_TO_CLASS[codes]


def _split(name: str, count: int, size: int, seed: int) -> datasets.Dataset:
    data: dict[str, list] = {"image": [], "annotation": [], "scene_category": [], "file_name": []}
    for scenes, images, masks in generate(count, size, seed, SPLITS.index(name)):
        data["image"] += [_png(image, 0) for image in images]  # stored: 2x faster to write and read
        data["annotation"] += [_png(mask, 6) if name != "test" else None for mask in masks]
        data["scene_category"] += scenes.tolist()
    data["file_name"] = [demo_file_name(name, i) for i in range(count)]
    return datasets.Dataset.from_dict(data, features=schema_features(SCENES))


def make_demo(
    train: int = DEFAULT_COUNTS["train"],
    validation: int = DEFAULT_COUNTS["validation"],
    test: int = DEFAULT_COUNTS["test"],
    size: int = DEMO_SIZE,
    seed: int = DEMO_SEED,
) -> SegDataset:
    """Generate the demo in memory (no cache); splits with a count of 0 are left out."""
    counts = {"train": train, "validation": validation, "test": test}
    splits = datasets.DatasetDict(
        {name: _split(name, count, size, seed) for name, count in counts.items() if count > 0}
    )
    return SegDataset(splits, demo_label_map(), LabelConvention(reduce_labels=True), "demo", None)


def cache_root() -> Path:
    """``$SEGSTUDIO_CACHE``, else ``~/.cache/segstudio``."""
    env = os.environ.get("SEGSTUDIO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "segstudio"


def _code_digest() -> str:
    """A hash of the generator's source, so a cache made by other code is rebuilt rather than trusted."""
    digest = hashlib.sha256()
    for module in (demo_scenes, demo_render, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _marker() -> dict:
    return {"version": DEMO_VERSION, "counts": DEFAULT_COUNTS, "size": DEMO_SIZE, "seed": DEMO_SEED,
            "code": _code_digest()}


def _read_cache(folder: Path) -> datasets.DatasetDict | None:
    """The cached splits, or None when the folder is missing, from another version or unreadable."""
    try:
        if json.loads((folder / MARKER).read_text(encoding="utf-8")) != _marker():
            return None
        splits = datasets.load_from_disk(str(folder))
        if not isinstance(splits, datasets.DatasetDict):
            return None
        if {name: len(split) for name, split in splits.items()} != DEFAULT_COUNTS:
            return None
        return splits
    except Exception:  # a missing or half-written cache raises OSError, ValueError, pyarrow errors ...
        return None


def _is_stale_cache(folder: Path) -> bool:
    """A cache this code cannot use that a SegStudio wrote (its marker is in it): a folder without the marker is
    someone else's (``$SEGSTUDIO_CACHE`` may name any folder) and is never deleted."""
    marker = folder / MARKER
    return (folder.is_dir() and not folder.is_symlink() and marker.is_file() and not marker.is_symlink()
            and _read_cache(folder) is None)


def _write_cache(folder: Path) -> None:
    """Generate the default demo and move it into ``folder`` in one rename (a corrupt one is replaced); where
    ``folder`` cannot be written (``$SEGSTUDIO_CACHE`` names a file, a read-only or full disk) nothing is."""
    temp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        quiet = datasets.utils.are_progress_bars_disabled()
        datasets.utils.disable_progress_bars()
        try:
            make_demo(**DEFAULT_COUNTS).splits.save_to_disk(str(temp))
        finally:
            if not quiet:
                datasets.utils.enable_progress_bars()
        (temp / MARKER).write_text(json.dumps(_marker()), encoding="utf-8")
        if _is_stale_cache(folder):
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # another process finished first: keep its copy
            os.replace(temp, folder)
    except OSError:  # load_demo then makes the demo in memory
        pass
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def load_demo(cache_dir: Path | None = None) -> SegDataset:
    """The default demo (600 / 48 / 20 images), generated once and then read from the cache in well under 1 s."""
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / DEMO_VERSION
    splits = _read_cache(folder)
    if splits is None:
        _write_cache(folder)
        splits = _read_cache(folder)
    if splits is None:  # the cache folder is not writable: fall back to memory
        return make_demo(**DEFAULT_COUNTS)
    return SegDataset(splits, demo_label_map(), LabelConvention(reduce_labels=True), "demo", None)

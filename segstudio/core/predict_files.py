"""Predict masks for image files and folders and write them as PNGs (``segstudio predict``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from segstudio.core.export import plan_outputs, staged_export, write_labels_json, write_prediction
from segstudio.core.imageio import ImageReadError, find_images, read_image
from segstudio.core.inference import Predictor


def predict_files(
    predictor: Predictor,
    inputs: Sequence[Path],
    output_dir: Path,
    formats: Sequence[str],
    *,
    on_done: Callable[[Path], None] | None = None,
    on_error: Callable[[Path, str], None] | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Predict every image under ``inputs``; broken files go to ``on_error`` and the rest are written.

    Output names are planned (and collisions refused) before any work. The masks are staged and replace the
    previous export into ``output_dir`` only when the run ends normally (a disk-full or read-only error,
    an exception or Ctrl-C leaves ``output_dir`` as it was). Returns how many were written.
    """
    found = find_images(inputs)
    plan_outputs(found, output_dir, formats)
    with staged_export(output_dir) as stage:
        return _predict_into(predictor, found, stage.folder, formats, on_done, on_error, cancel)


def _predict_into(
    predictor: Predictor,
    found: list[tuple[Path, Path]],
    folder: Path,
    formats: Sequence[str],
    on_done: Callable[[Path], None] | None,
    on_error: Callable[[Path, str], None] | None,
    cancel: threading.Event | None,
) -> int:
    """Predict ``found`` into ``folder`` (the staging folder)."""
    outputs = plan_outputs(found, folder, formats)
    loaded = predictor.loaded
    write_labels_json(folder, loaded.label_map, loaded.convention)
    images: dict[int, object] = {}

    def readable():
        for index, (path, _relative) in enumerate(found):
            if cancel is not None and cancel.is_set():
                return
            try:
                images[index] = read_image(path)
            except ImageReadError as exc:
                if on_error:
                    on_error(path, str(exc))
                continue
            yield index, images[index]

    written = 0
    for index, ids in predictor.predict_iter(readable()):
        image = images.pop(index)
        write_prediction(outputs[index], folder, ids, image, loaded.label_map, loaded.convention, formats)
        written += 1
        if on_done:
            on_done(found[index][0])
    return written

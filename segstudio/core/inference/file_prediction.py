"""Predict masks for image files and folders and write them as PNGs (``segstudio predict``)."""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from segstudio.core.data.imageio import ImageReadError, find_images, read_image
from segstudio.core.export.folder import check_export, staged_export
from segstudio.core.export.manifest import MANIFEST_NAME, write_manifest
from segstudio.core.export.writers import (
    ExportError,
    plan_names,
    plan_outputs,
    write_labels_json,
    write_prediction,
)

if TYPE_CHECKING:  # importing torch is left to the caller that loads the model
    from segstudio.core.evaluation.distributed import ProcessGroup
    from segstudio.core.inference.predictor import Predictor

READ_AHEAD = 16  # decoded images waiting for the model (two batches of 8)
WRITES_BEHIND = 8  # masks waiting to be encoded before the model waits for them


def predict_files(
    predictor: Predictor,
    inputs: Sequence[Path],
    output_dir: Path,
    formats: Sequence[str],
    *,
    on_done: Callable[[Path], None] | None = None,
    on_error: Callable[[Path, str], None] | None = None,
    cancel: threading.Event | None = None,
    manifest: Callable[[int, int], dict] | None = None,
    group: ProcessGroup | None = None,
) -> int:
    """Predict every image under ``inputs``; broken files go to ``on_error`` and the rest are written.

    Output names are planned and checked before any work: collisions, an output folder inside an input folder,
    and files in the way that no earlier export wrote are refused (see ``staged_export``). The masks, labels.json
    and ``manifest(written, failed)`` as manifest.json are staged and replace the previous export into
    ``output_dir`` only when the run ends normally (a disk-full or read-only error, an exception or Ctrl-C leaves
    ``output_dir`` as it was). Returns how many were written.

    With a ``group`` of several processes each predicts its share of the images into the main process's staging
    folder (an output folder every process can reach); the main process holds the lock, reports every failure
    to ``on_error`` in input order, writes labels.json and the manifest and moves the whole export into place.
    """
    found, names = plan_predict(inputs, output_dir, formats)
    if group is not None and group.ranks.several:
        return _predict_on_several(predictor, found, names, output_dir, formats, on_done, on_error, cancel,
                                   manifest, group)
    failed = 0

    def failure(path: Path, reason: str) -> None:
        nonlocal failed
        failed += 1
        if on_error:
            on_error(path, reason)

    with staged_export(output_dir, names) as stage:
        written = _predict_into(predictor, found, stage.folder, formats, on_done, failure, cancel)
        if manifest is not None:
            write_manifest(stage.folder, manifest(written, failed))
    return written


def _predict_on_several(predictor, found, names, output_dir, formats, on_done, on_error, cancel, manifest,
                        group: ProcessGroup) -> int:
    """``predict_files`` as one of several processes: disjoint shares, one staged export owned by rank 0."""
    ranks = group.ranks
    with contextlib.ExitStack() as stack:
        stage = group.from_main(lambda: stack.enter_context(staged_export(output_dir, names)).folder)

        def predict_my_share() -> tuple[int, list[tuple[Path, str]]]:
            if not stage.is_dir():
                raise ExportError(f"process {ranks.rank} of {ranks.world} cannot reach the staging folder {stage}: "
                                  "on several machines the output folder must be one they all share")
            failures: list[tuple[Path, str]] = []
            mine = [found[index] for index in ranks.shard(len(found))]
            written = _predict_into(predictor, mine, stage, formats, on_done,
                                    lambda path, reason: failures.append((path, reason)), cancel,
                                    labels=ranks.is_main)
            return written, failures

        shares = group.each(predict_my_share)
        written = sum(count for count, _failures in shares)
        if ranks.is_main:
            order = {path: index for index, (path, _relative) in enumerate(found)}
            failures = sorted((item for _count, share in shares for item in share), key=lambda item: order[item[0]])
            for path, reason in failures:
                if on_error:
                    on_error(path, reason)
            if manifest is not None:
                write_manifest(stage, manifest(written, len(failures)))
    return written


def plan_predict(
    inputs: Sequence[Path], output_dir: Path, formats: Sequence[str]
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(the images found, every relative name the export writes); ExportError when the output folder is inside
    an input folder or two outputs clash."""
    refuse_output_inside_inputs(inputs, output_dir)
    found = find_images(inputs)
    return found, plan_names(found, output_dir, formats)[1] + [Path("labels.json"), Path(MANIFEST_NAME)]


def check_predict(inputs: Sequence[Path], output_dir: Path, formats: Sequence[str]) -> None:
    """Every refusal ``predict_files`` would make before work, made before a model loads; writes nothing."""
    check_export(output_dir, plan_predict(inputs, output_dir, formats)[1])


def refuse_output_inside_inputs(inputs: Sequence[Path], output_dir: Path) -> None:
    """ExportError when the output folder is an input folder or inside one: the next run would read the masks
    as images (masks of masks) and the masks could replace the images."""
    output = Path(os.path.realpath(output_dir))
    for given in inputs:
        folder = Path(os.path.realpath(given))
        if Path(given).is_dir() and (output == folder or folder in output.parents):
            where = "is" if output == folder else "is inside"
            raise ExportError(f"the output folder {output_dir} {where} the input folder {given}: the masks would "
                              "mix with the images; choose an output folder outside it")


def _predict_into(
    predictor: Predictor,
    found: list[tuple[Path, Path]],
    folder: Path,
    formats: Sequence[str],
    on_done: Callable[[Path], None] | None,
    on_error: Callable[[Path, str], None] | None,
    cancel: threading.Event | None,
    *,
    labels: bool = True,
) -> int:
    """Predict ``found`` into ``folder`` (the staging folder), reading ahead and writing behind the model;
    ``labels``: also write labels.json there.

    Pillow decodes and encodes with the GIL released, so one thread reading the next images and one writing
    the last masks overlap that work with the model instead of adding to it. Callbacks run on this thread,
    in input order; a failed write (disk full) is raised here and stops the run.
    """
    outputs = plan_outputs(found, folder, formats)
    loaded = predictor.loaded
    if labels:
        write_labels_json(folder, loaded.label_map, loaded.convention)
    images: dict[int, Image.Image] = {}
    reader = ThreadPoolExecutor(1, thread_name_prefix="segstudio-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="segstudio-write")
    writes: deque[tuple[int, Future]] = deque()
    write_failed = threading.Event()
    written = 0

    def write(*args) -> None:
        if write_failed.is_set():  # an earlier write failed (disk full): the run is ending, write no more
            return
        try:
            write_prediction(*args)
        except BaseException:
            write_failed.set()
            raise

    def readable() -> Iterator[tuple[int, Image.Image]]:
        queued = (  # lazily submitted, READ_AHEAD at a time
            (index, path, reader.submit(read_image, path)) for index, (path, _relative) in enumerate(found)
        )
        reads = deque(itertools.islice(queued, READ_AHEAD))
        while reads and not (cancel is not None and cancel.is_set()):
            index, path, future = reads.popleft()
            reads.extend(itertools.islice(queued, 1))
            try:
                images[index] = future.result()
            except ImageReadError as exc:
                if on_error:
                    on_error(path, str(exc))
                continue
            yield index, images[index]

    def finish_oldest() -> None:
        nonlocal written
        index, future = writes.popleft()
        future.result()
        written += 1
        if on_done:
            on_done(found[index][0])

    try:
        for index, ids in predictor.predict_iter(readable()):
            image = images.pop(index)
            args = (outputs[index], folder, ids, image, loaded.label_map, loaded.convention, formats)
            writes.append((index, writer.submit(write, *args)))
            while len(writes) > WRITES_BEHIND:
                finish_oldest()
        while writes:
            finish_oldest()
    finally:  # nothing may still write into the staging folder once this returns or raises
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)
    return written

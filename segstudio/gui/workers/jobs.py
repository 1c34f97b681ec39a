"""The functions the GUI's workers run (no Qt): each takes a :class:`JobContext` and calls the core.

torch, transformers and datasets are imported here, inside the functions, so the window opens before them.
Progress payloads are small dataclasses of plain values.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segstudio.gui.controllers.results import ImageOutcome, outcome_from
from segstudio.gui.controllers.sources import FileSource, SplitSource

_IMPORT_LOCK = threading.Lock()
STREAM_INTERVAL_S = 0.1  # batch streamed results so the GUI thread gets a few updates a second, not hundreds
_MODEL_TOKENS = itertools.count(1)


# What each kind of job imports first. Touching a name of a core package's face imports the module behind it.
def _data() -> None:
    from segstudio.core.data import load_source, make_demo  # noqa: F401


def _model() -> None:
    # core.model imports transformers only where it loads (predict skips it), so name what loading will import
    import transformers.models.segformer.image_processing_pil_segformer  # noqa: F401
    import transformers.models.segformer.modeling_segformer  # noqa: F401

    from segstudio.core.inference import Predictor  # noqa: F401
    from segstudio.core.model import load_model  # noqa: F401


def _evaluate() -> None:
    from segstudio.core.evaluation import evaluate_split  # noqa: F401
    from segstudio.core.metrics import ConfusionMatrix  # noqa: F401


def _export() -> None:
    from segstudio.core.export import staged_export, write_prediction  # noqa: F401


def _training() -> None:
    import transformers.trainer  # noqa: F401

    from segstudio.core.training import train  # noqa: F401


_GROUPS = {"data": _data, "model": _model, "evaluate": _evaluate, "export": _export, "training": _training}


def import_core(*groups: str) -> None:
    """Import the core modules a job needs, one worker at a time.

    Two threads importing torch and datasets for the first time at once can trip Python's import-lock
    deadlock detection ("deadlock detected by _ModuleLock"); every job calls this first, so only one does.
    """
    with _IMPORT_LOCK:
        for group in groups:
            _GROUPS[group]()


@dataclass
class ModelBundle:
    """A loaded model with its predictor and a token that keys cached results."""

    loaded: Any
    predictor: Any
    spec: str
    device: str
    token: str
    training_options: dict | None = None  # what the checkpoint was trained with, where it records it


@dataclass
class StreamUpdate:
    """Images predicted since the last update, and where the run stands."""

    outcomes: list[ImageOutcome]
    done: int
    total: int
    eta_seconds: float | None
    tag: Any = None  # which (model, source) the outcomes belong to


@dataclass
class PredictOutcome:
    """What a prediction run ended with."""

    cancelled: bool
    done: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    label_issues: Any = None  # a core LabelIssueReport, when a split with ground truth was evaluated in full


def load_dataset(spec: str, options: Any = None):
    """``load_source`` in a worker (no console progress bars: nor tqdm's monitor thread behind a window)."""
    import_core("data")
    import datasets
    import tqdm

    from segstudio.core.data import load_source

    datasets.disable_progress_bars()
    tqdm.tqdm.monitor_interval = 0  # load_from_disk's thread_map starts tqdm's monitor even with bars disabled

    return load_source(spec, options)


def load_model_bundle(spec: str, dataset: Any = None, device: str = "auto", image_size: int | None = None,
                      batch_size: int | None = None) -> ModelBundle:
    """Load a checkpoint (``scratch`` takes the open dataset's label map) and put it on the device."""
    import_core("model")
    from segstudio.core.model import load_model

    if spec == "scratch" and dataset is not None:
        loaded = load_model(spec, label_map=dataset.label_map, reduce_labels=dataset.convention.reduce_labels,
                            image_size=image_size)
    else:
        loaded = load_model(spec, image_size=image_size)
    bundle = _bundle(loaded, spec, device, batch_size)
    if spec not in ("demo", "scratch") and Path(spec).is_dir():
        from segstudio.core.training import read_training_options

        bundle.training_options = read_training_options(spec)
    return bundle


def _bundle(loaded: Any, spec: str, device: str, batch_size: int | None) -> ModelBundle:
    """Small batches on the CPU, so results stream in every few seconds; 8 on accelerators."""
    from segstudio.core.inference import Predictor

    predictor = Predictor(loaded, device=device, batch_size=batch_size or 8)
    if batch_size is None and predictor.device.type == "cpu":
        predictor.batch_size = 4
    return ModelBundle(loaded, predictor, spec, str(predictor.device), f"model-{next(_MODEL_TOKENS)}")


def load_default_bundle(device: str = "auto") -> ModelBundle:
    """The demo model; until it is installed, a scratch model with the demo's classes (noted in its report)."""
    import_core("model")
    from segstudio.core.model import ModelLoadError

    try:
        return load_model_bundle("demo", None, device)
    except ModelLoadError as exc:
        if "not installed" not in str(exc):
            raise
        import_core("data")
        from segstudio.core.data import demo_label_map
        from segstudio.core.model import load_model

        loaded = load_model("scratch", label_map=demo_label_map(), reduce_labels=True)
        loaded.report.notes.append(f"{exc} — showing a randomly initialised model instead")
        return _bundle(loaded, "scratch", device, None)


class _Streamer:
    """Collects outcomes in the worker thread and sends them in batches with count and ETA."""

    def __init__(self, ctx: Any, total: int, tag: Any = None) -> None:
        self.ctx, self.total, self.done, self.tag = ctx, total, 0, tag
        self.pending: list[ImageOutcome] = []
        self.start = time.monotonic()
        self.first = 0
        self.last_sent = 0.0

    def add(self, outcome: ImageOutcome) -> None:
        self.pending.append(outcome)
        self.done += 1
        now = time.monotonic()
        if now - self.last_sent >= STREAM_INTERVAL_S or self.done == self.total:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        made = self.done - self.first
        eta = (now - self.start) / made * (self.total - self.done) if made else None
        self.ctx.progress(StreamUpdate(self.pending, self.done, self.total, eta, self.tag))
        self.pending = []
        self.last_sent = now


def evaluate_source(ctx: Any, source: SplitSource, bundle: ModelBundle, tag: Any = None) -> PredictOutcome:
    """Predict and score a split through the core's ``evaluate_split``, streaming each image's outcome."""
    import_core("data", "model", "evaluate")
    from segstudio.core.evaluation import EvaluationCancelled, evaluate_split
    from segstudio.core.review import LabelIssueCollector

    num_labels = bundle.loaded.label_map.num_labels
    collector = LabelIssueCollector(num_labels)
    streamer = _Streamer(ctx, len(source), tag)

    def on_image(result: Any) -> None:
        prediction, result.prediction = result.prediction, None  # keep only the compressed copy
        streamer.add(outcome_from(result.index, prediction, result.confusion, result.error, num_labels))

    try:
        result = evaluate_split(source.dataset, source.split, bundle.predictor, on_image=on_image,
                                cancel=ctx.cancel_event, keep_predictions=True, label_issues=collector)
    except EvaluationCancelled as stopped:
        streamer.flush()
        return PredictOutcome(True, streamer.done, list(stopped.partial.skipped))
    streamer.flush()
    report = collector.report({image.index: image.file_name for image in result.images}) \
        if collector.summaries else None
    return PredictOutcome(False, streamer.done, list(result.skipped), report)


def predict_files(ctx: Any, source: FileSource, bundle: ModelBundle, tag: Any = None) -> PredictOutcome:
    """Predict dropped image files (no ground truth) through the core's one inference path."""
    import_core("model")
    from segstudio.core.data import ImageReadError

    num_labels = bundle.loaded.label_map.num_labels
    streamer = _Streamer(ctx, len(source), tag)
    skipped: list[tuple[str, str]] = []

    def readable():
        for entry in source.entries:
            if ctx.cancelled:
                return
            try:
                yield entry.index, source.image(entry.index)
            except ImageReadError as exc:
                skipped.append((entry.file_name, str(exc)))
                streamer.add(outcome_from(entry.index, None, None, str(exc), num_labels))

    for index, ids in bundle.predictor.predict_iter(readable()):
        streamer.add(outcome_from(index, ids, None, None, num_labels))
    streamer.flush()
    return PredictOutcome(ctx.cancelled, streamer.done, skipped)


def warm_up(ctx: Any = None) -> None:
    """Import the fine-tuning stack ahead of need, then freeze the garbage collector's view of it.

    Both keep the GUI thread fluid, because both hold the GIL: initialising extension modules (up to a second
    on a busy machine, when the first training run starts), and full garbage collections that walk every
    object of torch and transformers (~0.4 s each): see ``process_setup.freeze_loaded_objects``.
    """
    from transformers import Trainer  # noqa: F401

    from segstudio.core.training import train  # noqa: F401
    from segstudio.process_setup import freeze_loaded_objects

    freeze_loaded_objects()


def find_dropped_images(paths: list[str]) -> list[tuple[Path, Path]]:
    from segstudio.core.data import find_images

    return find_images([Path(p) for p in paths])


def is_checkpoint_folder(path: str | Path) -> bool:
    """A folder written by save_pretrained (what a dropped model looks like)."""
    path = Path(path)
    return path.is_dir() and (path / "config.json").is_file()

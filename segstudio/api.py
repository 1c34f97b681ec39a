"""SegStudio's Python API for notebooks and scripts: the core that the window and the command line use.

    import segstudio as ss

    data = ss.load_dataset("demo")                       # or a folder, a Parquet folder, a Hub id
    model = ss.load_model("demo")                        # or a checkpoint folder, a Hub id, "scratch"
    masks = ss.predict(model, ["photo.jpg"])             # model class ids, one array per image
    result = ss.evaluate(model, data, split="validation")
    print(result.metrics["mean_iou"])                    # evaluate's mean_iou keys and numbers
    report = ss.check(data, model)                       # the label-convention guard
    written = ss.export_masks(model, ["photos/"], "masks/", formats=("index", "color"))
    comparison = ss.compare(model, ss.load_model("runs/a/final"), data)

Errors a user can cause raise the core's exceptions with a one-line message (``DataSourceError``,
``ModelLoadError``, ``ExportError``, ``LabelConventionError``, ...), the same the command line prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Model", "check", "compare", "evaluate", "export_masks", "label_issues", "load_dataset", "load_model",
           "predict", "train"]


@dataclass
class Model:
    """A loaded checkpoint and the predictor that runs it (``loaded``: the core's LoadedModel)."""

    loaded: Any
    predictor: Any
    spec: str

    @property
    def label_map(self) -> Any:
        """Class names and colours (``name(id)``, ``id2label``, ``palette``)."""
        return self.loaded.label_map

    @property
    def convention(self) -> Any:
        """How the dataset's ids map to the model's (``reduce_labels``, ``ignore_index``, ``to_dataset_ids``)."""
        return self.loaded.convention

    @property
    def device(self) -> str:
        return str(self.predictor.device)


def load_dataset(spec: str = "demo", *, config: str | None = None, revision: str | None = None,
                 image_column: str | None = None, mask_column: str | None = None,
                 reduce_labels: bool | None = None, ignore_index: int = 255,
                 label_map: str | Path | None = None, corrections: str | Path | None = None) -> Any:
    """A dataset as ``segstudio --dataset`` takes it: splits, label map and id convention (a ``SegDataset``);
    with ``corrections`` (a corrections folder) its corrected masks replace the originals they correct."""
    from segstudio.core.data import SourceOptions, load_source

    options = SourceOptions(config=config, revision=revision, image_column=image_column, mask_column=mask_column,
                            reduce_labels=reduce_labels, ignore_index=ignore_index,
                            label_map_path=str(label_map) if label_map is not None else None)
    dataset = load_source(spec, options)
    if corrections is None:
        return dataset
    from segstudio.core.review import apply_corrections

    return apply_corrections(dataset, corrections)


def load_model(spec: str = "demo", *, device: str = "auto", dataset: Any = None, batch_size: int = 8) -> Model:
    """A checkpoint ready to predict: ``demo``, a ``save_pretrained`` folder, a Hub id, or ``scratch`` (random
    weights with ``dataset``'s classes). The load report is ``model.loaded.report``."""
    from segstudio.core.inference import Predictor, load_for_inference
    from segstudio.core.model import load_model as load_checkpoint

    if spec == "scratch":
        if dataset is None:
            raise ValueError("load_model('scratch') needs dataset=: its classes size the new head")
        loaded = load_checkpoint("scratch", label_map=dataset.label_map,
                                 reduce_labels=dataset.convention.reduce_labels)
    else:
        loaded = load_for_inference(spec, device)
    return Model(loaded, Predictor(loaded, device=device, batch_size=batch_size), spec)


def _as_image(item: Any) -> Any:
    from PIL import Image

    from segstudio.core.data import read_image

    if isinstance(item, (str, Path)):
        return read_image(item)
    if isinstance(item, np.ndarray):
        return Image.fromarray(item).convert("RGB")
    return item.convert("RGB")


def predict(model: Model, images: Sequence[Any]) -> list[np.ndarray]:
    """The model's class ids for each image (a path, a PIL image or an RGB array), at the image's own size.
    ``model.convention.to_dataset_ids(ids)`` gives them in the dataset's convention (what masks are written in)."""
    return model.predictor.predict([_as_image(item) for item in images])


def evaluate(model: Model, dataset: Any, split: str = "validation", *, limit: int | None = None,
             cancel: threading.Event | None = None) -> Any:
    """Predict and score a split: ``metrics`` (evaluate's ``mean_iou`` keys), ``class_rows()``, ``images``
    (per-image results), ``skipped`` (unreadable items, named), ``by_scene()``."""
    from segstudio.core.evaluation import evaluate_split

    return evaluate_split(dataset, split, model.predictor, limit=limit, cancel=cancel, keep_predictions=False)


def compare(model_a: Model, model_b: Model, dataset: Any, split: str = "validation", *,
            limit: int | None = None) -> Any:
    """Both models on one split: per-class IoU change and the images B fixed or broke (``Comparison``)."""
    from segstudio.core.evaluation import compare_split

    return compare_split(dataset, split, model_a.predictor, model_b.predictor, limit=limit)


def label_issues(model: Model, dataset: Any, split: str = "validation", *, limit: int | None = None) -> Any:
    """Suspected label errors (``segstudio label-issues``), found in the evaluation pass: ``(EvaluationResult,
    LabelIssueReport)``; the report ranks images by label quality and gives each one's suspected pixels."""
    from segstudio.core.review import scan_split

    return scan_split(dataset, split, model.predictor, limit=limit)


def check(dataset: Any, model: Model, splits: list[str] | None = None) -> Any:
    """The label-convention guard (``segstudio check``): ``report.findings``, each with a severity and a fix."""
    from segstudio.core.data import check_labels

    return check_labels(dataset, model.loaded, splits)


def export_masks(model: Model, inputs: Sequence[str | Path], output_dir: str | Path,
                 formats: Sequence[str] = ("index",),
                 on_error: Callable[[Path, str], None] | None = None) -> int:
    """``segstudio predict``: masks of every image under ``inputs`` into ``output_dir`` (index, color, overlay),
    with ``labels.json`` and ``manifest.json``, never over a file SegStudio did not write. Returns how many."""
    from segstudio.core.export import build_manifest
    from segstudio.core.inference import check_predict, predict_files

    paths, out = [Path(p) for p in inputs], Path(output_dir)
    check_predict(paths, out, list(formats))

    def manifest(written: int, failed: int) -> dict:
        return build_manifest("predict", model.loaded, model.predictor, inputs=[str(p.resolve()) for p in paths],
                              images=written + failed, written=written, skipped=failed,
                              extra={"formats": list(formats)})

    return predict_files(model.predictor, paths, out, list(formats), on_error=on_error, manifest=manifest)


def train(dataset: Any, model: str | Model, output_dir: str | Path, *, config: str | Path | None = None,
          resume: bool = False, **options: Any) -> Any:
    """Fine-tune on ``dataset``'s train split (``segstudio train``); ``options`` are the command's training options
    (``max_steps``, ``epochs``, ``batch_size``, ``learning_rate``, ``gradient_accumulation_steps``,
    ``warmup_steps``, ``lr_scheduler_type``, ``augmentation``, ``seed``...), over those of a ``config`` file (JSON or
    YAML). Returns the ``TrainResult`` (checkpoints, final checkpoint, logs)."""
    from segstudio.core.training import check_options, model_to_train, read_options_file, settings_for
    from segstudio.core.training import train as run_training

    given = check_options(options, "train()")
    settings = settings_for(Path(output_dir), given, resume=resume,
                            config=read_options_file(config) if config is not None else None)
    spec = model.spec if isinstance(model, Model) else model
    if resume:
        from segstudio.core.training import checkpoint_to_resume

        spec = str(checkpoint_to_resume(Path(output_dir)))
    return run_training(dataset, model_to_train(spec, dataset, settings), settings)

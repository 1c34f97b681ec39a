"""Fine-tuning on Hugging Face ``Trainer``: transforms, collate, streaming metrics, progress and cancel.

The same function runs from the CLI, from the GUI's worker thread, and under ``torchrun`` / ``accelerate
launch`` (Trainer handles the distributed part; only rank 0 reports and writes the final checkpoint).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segstudio.core.data.label_guard import IgnoredBatchGuard, LabelConventionError, refuse_double_reduction
from segstudio.core.data.schema import SegDataset
from segstudio.core.errors import SegStudioError
from segstudio.core.metrics.confusion import ConfusionMatrix
from segstudio.core.model.loading import LoadedModel, resolve_device, transformers_bars_off
from segstudio.core.training.checkpoints import (
    completion_info,
    is_complete,
    list_checkpoints,
    mark_complete,
    save_errors,
    trainer_progress,
    unmark,
)
from segstudio.core.training.events import ProgressCallback, TrainingCancelled, TrainingListener
from segstudio.core.training.options import (
    OPTIONS_FILE,
    OptionError,
    check_options,
    require_reporter,
    write_options_file,
)
from segstudio.core.training.run_folder import (
    RunFolderError,
    check_output,
    claim_output,
    discard_staging,
    make_staging,
    recorded_settings,
    release_output,
)
from segstudio.core.training.transforms import (
    SegmentationTransform,
    collate_batch,
    logits_to_labels,
    record_left_out,
)
from segstudio.process_setup import collector_skips_loaded_objects

log = logging.getLogger(__name__)


class TrainingError(SegStudioError, RuntimeError):
    """Training cannot start or had to stop (bad settings, NaN loss, out of memory)."""


@dataclass
class TrainSettings:
    """What a person chooses for a fine-tuning run."""

    output_dir: Path
    max_steps: int | None = None
    epochs: float | None = None
    batch_size: int = 8
    learning_rate: float = 6e-5
    image_size: int | None = None
    device: str = "auto"
    mixed_precision: bool = True
    eval_steps: int | None = None
    save_steps: int | None = None
    eval_limit: int | None = None
    seed: int = 0
    logging_steps: int = 10
    save_total_limit: int | None = 3  # of the checkpoints this run writes; older ones are never deleted
    weight_decay: float = 0.01
    gradient_accumulation_steps: int = 1
    warmup_steps: float = 0  # steps, or a fraction of the run below 1 (as TrainingArguments reads it)
    lr_scheduler_type: str = "linear"
    report_to: str = "none"  # or "tensorboard" (Trainer's own callback; needs the tensorboard extra)
    dataloader_num_workers: int = 0
    augmentation: str = "flip-crop"  # none, flip, flip-crop, flip-crop-color (segstudio.core.training.transforms)
    resume: bool = False  # continue the run in output_dir from its newest complete checkpoint

    def record(self) -> dict:
        """The settings as JSON values (kept in the run folder, so a resumed run can reuse them)."""
        return {key: (str(value) if isinstance(value, Path) else value)
                for key, value in dataclasses.asdict(self).items() if key not in ("output_dir", "resume")}


def settings_for(output_dir: Path, given: dict, resume: bool = False, config: dict | None = None) -> TrainSettings:
    """TrainSettings from the options a person gave (None: not given), over those of a config file, over (when
    resuming) the settings its run was started with. A run's length given at one level replaces the other's."""
    chosen: dict = {}
    names = {item.name for item in dataclasses.fields(TrainSettings)} - {"output_dir", "resume"}
    recorded = recorded_settings(output_dir) if resume else {}
    for layer in (recorded, config or {}, given):
        layer = {key: value for key, value in layer.items() if key in names and value is not None}
        if "max_steps" in layer or "epochs" in layer:
            chosen.pop("max_steps", None)
            chosen.pop("epochs", None)
        chosen.update(layer)
    return TrainSettings(**{**chosen, "output_dir": Path(output_dir), "resume": resume})


def model_to_train(spec: str, dataset: SegDataset, settings: TrainSettings) -> LoadedModel:
    """``spec`` loaded with the dataset's classes and convention; weights it lacks (a new head) are drawn after
    seeding with ``settings.seed``, as run_semantic_segmentation.py seeds before it loads the model."""
    from transformers import set_seed

    from segstudio.core.model import load_model

    set_seed(settings.seed)
    return load_model(spec, label_map=dataset.label_map, reduce_labels=dataset.convention.reduce_labels,
                      image_size=settings.image_size)


def checkpoint_to_resume(output_dir: Path) -> Path:
    """The newest complete checkpoint of the run in ``output_dir``: the model a resumed run goes on with."""
    try:
        return check_output(output_dir, resume=True)
    except RunFolderError as exc:
        raise TrainingError(str(exc)) from None


@dataclass
class TrainResult:
    """Where the run left its checkpoints and what it logged."""

    output_dir: Path
    checkpoints: list[Path] = field(default_factory=list)
    final_checkpoint: Path | None = None
    cancelled: bool = False
    history: list[dict] = field(default_factory=list)
    skipped_batches: int = 0  # batches whose pixels were all ignored (NaN loss), not trained on
    skipped_items: dict[str, str] = field(default_factory=dict)  # unreadable rows left out: file name -> reason


class StreamingSegMetrics:
    """``compute_metrics`` for ``batch_eval_metrics=True``: one confusion matrix, never all logits."""

    def __init__(self, num_labels: int, ignore_index: int) -> None:
        self.matrix = ConfusionMatrix(num_labels, ignore_index)

    def __call__(self, eval_pred: Any, compute_result: bool) -> dict[str, float]:
        preds = _as_numpy(eval_pred.predictions)
        labels = _as_numpy(eval_pred.label_ids)
        for pred, label in zip(preds, labels, strict=True):
            self.matrix.update(pred, label)
        if not compute_result:
            return {}
        result = self.matrix.compute()
        self.matrix.reset()
        names = {"mean_iou": "mean_iou", "mean_accuracy": "mean_accuracy", "overall_accuracy": "overall_accuracy"}
        return {key: float(result[src]) for key, src in names.items()}


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _training_arguments(settings: TrainSettings, device: torch.device, has_eval: bool):
    from transformers import TrainingArguments

    cuda = device.type == "cuda"
    bf16 = cuda and settings.mixed_precision and torch.cuda.is_bf16_supported()
    fp16 = cuda and settings.mixed_precision and not bf16
    steps_mode = settings.max_steps is not None
    eval_strategy = "no"
    if has_eval:
        eval_strategy = "steps" if settings.eval_steps or steps_mode else "epoch"
    save_strategy = "steps" if (settings.save_steps or steps_mode) else "epoch"
    interval = settings.eval_steps or (max(1, (settings.max_steps or 1) // 4) if steps_mode else None)
    return TrainingArguments(
        output_dir=str(settings.output_dir),
        max_steps=settings.max_steps if steps_mode else -1,
        num_train_epochs=settings.epochs if settings.epochs is not None else 3.0,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        warmup_steps=settings.warmup_steps,
        lr_scheduler_type=settings.lr_scheduler_type,
        eval_strategy=eval_strategy,
        eval_steps=interval if eval_strategy == "steps" else None,
        save_strategy=save_strategy,
        save_steps=(settings.save_steps or interval) if save_strategy == "steps" else 500,
        save_total_limit=None,  # the progress callback deletes only checkpoints this run wrote
        logging_steps=settings.logging_steps,
        logging_nan_inf_filter=False,
        batch_eval_metrics=True,
        remove_unused_columns=False,
        use_cpu=device.type == "cpu",
        bf16=bf16,
        fp16=fp16,
        seed=settings.seed,
        report_to=settings.report_to,
        disable_tqdm=True,
        dataloader_num_workers=settings.dataloader_num_workers,
    )


def _eval_split(dataset: SegDataset, limit: int | None):
    split = dataset.splits.get("validation")
    if split is None or "annotation" not in split.column_names:
        return None
    if limit is not None:
        split = split.select(range(min(limit, len(split))))
    return split


def _prepare_model(loaded: LoadedModel, dataset: SegDataset) -> None:
    """Align the model's label bookkeeping with the dataset's convention (the loss ignores the same index)."""
    config = loaded.model.config
    config.semantic_loss_ignore_index = dataset.convention.ignore_index
    if config.num_labels != dataset.label_map.num_labels:
        raise TrainingError(
            f"the model has {config.num_labels} classes but the dataset's label map has "
            f"{dataset.label_map.num_labels}; load the model with the dataset's label map"
        )


def train(
    dataset: SegDataset,
    loaded: LoadedModel,
    settings: TrainSettings,
    listener: TrainingListener | None = None,
    cancel: threading.Event | None = None,
) -> TrainResult:
    """Fine-tune ``loaded.model`` on ``dataset``'s train split; returns where the checkpoints are.

    The output folder must be new or empty; with ``settings.resume`` Trainer continues the run there from its newest
    complete checkpoint (weights, optimizer, scheduler, RNG state and step). Only what this run wrote is deleted.
    """
    if "train" not in dataset.splits:
        raise TrainingError(f"{dataset.source} has no train split")
    try:
        check_options(settings.record(), "training options")
        require_reporter(settings.report_to)
    except OptionError as exc:
        raise TrainingError(str(exc)) from None
    dataset.convention.require_ignore_outside(dataset.label_map.num_labels)  # else the loss drops class 255
    if settings.max_steps is None and settings.epochs is None:
        settings.epochs = 3.0
    first = os.environ.get("RANK", "0") == "0"  # under torchrun / accelerate only rank 0 writes the folder
    resume_from = _checked_output(settings, first)
    corrections = getattr(dataset, "corrections", None)
    data = {"source": dataset.source, "corrections": corrections.to_json_dict() if corrections is not None else None}
    created = claim_output(settings.output_dir, settings.record(), data) if first else False
    try:
        return _train(dataset, loaded, settings, listener, cancel, resume_from)
    finally:
        if first:
            release_output(settings.output_dir, created)


def _train(
    dataset: SegDataset,
    loaded: LoadedModel,
    settings: TrainSettings,
    listener: TrainingListener | None,
    cancel: threading.Event | None,
    resume_from: Path | None,
) -> TrainResult:
    """:func:`train` in a claimed output folder."""
    from transformers import PrinterCallback

    device = resolve_device(settings.device)
    _prepare_model(loaded, dataset)
    try:
        refuse_double_reduction(dataset, "train")
    except LabelConventionError as exc:
        raise TrainingError(str(exc)) from None
    guard = IgnoredBatchGuard(dataset.convention.ignore_index)
    size = settings.image_size or loaded.image_size[0]
    train_transform = SegmentationTransform(loaded.processor, dataset.convention, size, augment=settings.augmentation)
    eval_transform = SegmentationTransform(loaded.processor, dataset.convention, size, augment=False)
    train_split = train_transform.apply_to(dataset.splits["train"])
    eval_split = _eval_split(dataset, settings.eval_limit)
    if eval_split is not None:
        eval_split = eval_transform.apply_to(eval_split)
    cancel = cancel or threading.Event()
    callback = ProgressCallback(listener, cancel, keep=settings.save_total_limit)
    args = _training_arguments(settings, device, eval_split is not None)
    trainer = _guarded_trainer(guard, settings.record())(
        model=loaded.model,
        args=args,
        train_dataset=train_split,
        eval_dataset=eval_split,
        data_collator=collate_batch,
        compute_metrics=StreamingSegMetrics(dataset.label_map.num_labels, dataset.convention.ignore_index),
        preprocess_logits_for_metrics=logits_to_labels,
        processing_class=_processor_to_save(loaded, dataset, size),
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)  # our listener reports; Trainer would print raw dicts too
    cancelled = False
    try:
        with (
            save_errors(settings.output_dir, TrainingError),
            collector_skips_loaded_objects(),
            transformers_bars_off(),  # transformers draws "Writing model shards" on every checkpoint save
        ):
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    except TrainingCancelled:
        cancelled = True
    except torch.OutOfMemoryError as exc:
        raise TrainingError(
            f"out of memory on {device}: lower --batch-size or --image-size ({exc.__class__.__name__})"
        ) from None
    cancelled = cancelled or cancel.is_set()
    if callback.nan_loss:
        raise TrainingError(callback.nan_loss)
    if eval_split is not None and not cancelled and not _evaluated_last_step(trainer.state):
        # A run shorter than its evaluation interval (or one epoch) would end with no validation score at all
        trainer.evaluate()
    with save_errors(settings.output_dir, TrainingError), transformers_bars_off():
        final = _save_final(trainer, settings.output_dir, cancelled)
    loaded.model.eval()
    return TrainResult(
        output_dir=settings.output_dir,
        checkpoints=list_checkpoints(settings.output_dir),
        final_checkpoint=final,
        cancelled=cancelled,
        history=list(trainer.state.log_history),
        skipped_batches=guard.skipped,
        skipped_items={**train_transform.skipped, **eval_transform.skipped, **trainer.left_out},
    )


def _evaluated_last_step(state: Any) -> bool:
    """Whether Trainer's log already holds a validation score for the run's last step."""
    return any("eval_mean_iou" in entry and entry.get("step") == state.global_step for entry in state.log_history)


def _checked_output(settings: TrainSettings, first: bool) -> Path | None:
    """Refuse an output folder the run may not write into; the checkpoint a resumed run continues from."""
    try:
        resume_from = check_output(settings.output_dir, settings.resume, owner_check=first)
    except RunFolderError as exc:
        raise TrainingError(str(exc)) from None
    if resume_from is None:
        return None
    try:
        step, epoch = trainer_progress(resume_from)
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot read the training state in {resume_from} ({exc.__class__.__name__}): "
                            "that run cannot be resumed") from None
    if settings.max_steps is not None and settings.max_steps <= step:
        raise TrainingError(f"the run in {settings.output_dir} already reached step {step}: ask for more steps "
                            "than that (--max-steps) to train further")
    if settings.max_steps is None and settings.epochs is not None and settings.epochs <= epoch:
        raise TrainingError(f"the run in {settings.output_dir} already trained {epoch:g} epochs: ask for more "
                            "than that (--epochs) to train further")
    return resume_from


def _guarded_trainer(guard: IgnoredBatchGuard, options: dict | None = None):
    """A Trainer class that trains on nothing from a batch whose pixels are all ignored (its loss is NaN), notes
    the rows its batches left out (``left_out``), and saves ``options`` as ``training_options.json`` with every
    model it saves.

    The model still runs and the loss is 0 times its logits, so every parameter gets a (zero) gradient and
    distributed ranks stay in step. The optimizer step after it is skipped too (AdamW would still apply weight
    decay and move its moments), on every rank at once: under DDP only when all ranks' batches were ignored,
    else the others' gradients (averaged with the zeros) are applied everywhere. With gradient accumulation
    the step also carries the other micro-batches, so it is not skipped.
    """
    from transformers import Trainer

    class GuardedTrainer(Trainer):
        _skip_optimizer_step = False

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.left_out: dict[str, str] = {}  # rows unreadable in any process, dataloader workers' too

        def _prepare_inputs(self, inputs):
            record_left_out(inputs, self.left_out)
            return super()._prepare_inputs(inputs)

        def save_model(self, output_dir=None, _internal_call=False):
            super().save_model(output_dir, _internal_call)
            if options is not None and self.args.should_save:
                write_options_file(Path(output_dir or self.args.output_dir) / OPTIONS_FILE, options)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            skip = model.training and guard.should_skip(inputs.get("labels"), self.state.global_step + 1)
            if model.training and self.args.gradient_accumulation_steps == 1:
                self._skip_optimizer_step = _on_every_rank(skip, self.args.device)
            if skip:
                outputs = model(pixel_values=inputs["pixel_values"])
                loss = outputs.logits.sum() * 0.0
                return (loss, outputs) if return_outputs else loss
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def _save_checkpoint(self, model, trial):
            # A folder being written again is incomplete until on_save marks it; one this save created and could
            # not finish (a full disk, say) is removed, so the folder is left as it was.
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            fresh, first = not folder.exists(), self.is_world_process_zero()
            if first:
                unmark(folder)
            try:
                super()._save_checkpoint(model, trial)
            except Exception:
                if fresh and first:
                    shutil.rmtree(folder, ignore_errors=True)
                raise

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            # Trainer reads model.safetensors with load_state_dict(strict=False), but transformers saves SegFormer
            # under its original key names, so most weights would silently keep their values: from_pretrained
            # maps the names, and every weight must then fit.
            model = model if model is not None else self.model
            try:
                saved = type(model).from_pretrained(resume_from_checkpoint).state_dict()
                model.load_state_dict(saved, strict=True)
            except (OSError, RuntimeError, ValueError) as exc:
                raise TrainingError(f"{resume_from_checkpoint} does not fit the model being trained, so the run "
                                    f"cannot be resumed from it ({exc.__class__.__name__})") from None

        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            if not getattr(optimizer, "_segstudio_guarded", False):
                # Weak references only: a closure or bound method holding the trainer or the optimizer would
                # make a reference cycle that keeps the optimizer (the model's parameters and AdamW's moments)
                # alive after train() until the next full collection: in the GUI, one set per finished run.
                step_function, trainer_ref = optimizer.step.__func__, weakref.ref(self)

                def guarded_step(optimizer_, *args, **kwargs):
                    trainer = trainer_ref()
                    if trainer is not None and trainer._skip_optimizer_step:
                        trainer._skip_optimizer_step = False
                        return None
                    return step_function(optimizer_, *args, **kwargs)

                optimizer.step = _WeakBoundMethod(guarded_step, optimizer)
                optimizer._segstudio_guarded = True
            return optimizer

    return GuardedTrainer


class _WeakBoundMethod:
    """``function`` bound to ``obj`` through a weak reference, for storing in ``obj.__dict__`` without a cycle.

    It has ``__func__`` like a bound method, as torch's LR schedulers wrap ``optimizer.step.__func__``.
    """

    def __init__(self, function: Any, obj: Any) -> None:
        self.__func__, self._ref = function, weakref.ref(obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        obj = self._ref()
        if obj is None:
            raise ReferenceError("the object this method was bound to no longer exists")
        return self.__func__(obj, *args, **kwargs)


def _on_every_rank(flag: bool, device: torch.device) -> bool:
    """``flag`` and-ed over all distributed ranks (just ``flag`` in one process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return flag
    value = torch.tensor([1 if flag else 0], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
    return bool(value.item())


def _processor_to_save(loaded: LoadedModel, dataset: SegDataset, size: int):
    """The processor saved with every checkpoint: records the dataset's convention and the training size."""
    processor = loaded.processor.__class__.from_dict(loaded.processor.to_dict())
    processor.do_reduce_labels = dataset.convention.reduce_labels
    processor.size = {"height": size, "width": size}
    return processor


def _save_final(trainer, output_dir: Path, cancelled: bool = False) -> Path | None:
    """Write the final model to ``OUTPUT/final`` through a staging folder, so it is whole or absent; a resumed
    run's earlier ``final`` is replaced only by a complete one. Its marker records the step (and a cancel)."""
    final = Path(output_dir) / "final"
    if trainer.is_world_process_zero():
        staging = make_staging(output_dir, "final")
        try:
            trainer.save_model(str(staging))
            mark_complete(staging, step=trainer.state.global_step, cancelled=cancelled)
            _put_in_place(staging, final)
        finally:
            discard_staging(staging)
    if trainer.args.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return final if is_complete(final) else None


def _put_in_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing ``target`` is moved aside first (a staging folder of its own,
    which a later run puts back if this process dies before the new one is in place) and deleted after."""
    if not target.exists():
        os.replace(staging, target)
        return
    previous = make_staging(target.parent, f"previous-{target.name}")
    os.replace(target, previous)
    os.replace(staging, target)
    discard_staging(previous)


@dataclass
class RunScore:
    """A run's final model scored as its own evaluations were: ``metrics`` has Trainer's ``eval_*`` keys."""

    step: int
    metrics: dict[str, float]


def evaluate_final(dataset: SegDataset, output_dir: Path, cancel: threading.Event | None = None) -> RunScore:
    """Score the final model of the run in ``output_dir`` the way the run's evaluations did (Trainer's evaluation
    on the same validation images, size and metric), so a cancelled run's mean-IoU curve gets its last point."""
    from transformers import PrinterCallback

    from segstudio.core.model.loading import load_model

    final = Path(output_dir) / "final"
    info = completion_info(final)
    if not isinstance(info.get("step"), int):
        raise TrainingError(f"{output_dir} has no complete final model to evaluate: train or resume the run first")
    settings = settings_for(Path(output_dir), {}, resume=True)
    rows = _eval_split(dataset, settings.eval_limit)
    if rows is None:
        raise TrainingError(f"{dataset.source} has no annotated validation split to evaluate on")
    loaded = load_model(str(final), label_map=dataset.label_map, reduce_labels=dataset.convention.reduce_labels,
                        image_size=settings.image_size)
    _prepare_model(loaded, dataset)
    size = settings.image_size or loaded.image_size[0]
    transform = SegmentationTransform(loaded.processor, dataset.convention, size, augment=False)
    trainer = _guarded_trainer(IgnoredBatchGuard(dataset.convention.ignore_index))(
        model=loaded.model,
        args=_training_arguments(settings, resolve_device(settings.device), has_eval=True),
        eval_dataset=transform.apply_to(rows),
        data_collator=collate_batch,
        compute_metrics=StreamingSegMetrics(dataset.label_map.num_labels, dataset.convention.ignore_index),
        preprocess_logits_for_metrics=logits_to_labels,
        callbacks=[ProgressCallback(None, cancel or threading.Event())],
    )
    trainer.remove_callback(PrinterCallback)
    with transformers_bars_off():
        metrics = trainer.evaluate()
    return RunScore(step=info["step"], metrics={k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})


def steps_per_epoch(num_images: int, batch_size: int, world_size: int = 1) -> int:
    """How many optimiser steps one epoch takes."""
    return max(1, math.ceil(num_images / (batch_size * world_size)))

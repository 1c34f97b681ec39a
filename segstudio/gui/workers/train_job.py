"""The fine-tuning job (no Qt): load a fresh copy of the model, then the core's ``train`` with a relay listener."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TrainEvent:
    """One thing the Trainer said: ``kind`` is progress, log, evaluate, checkpoint or message."""

    kind: str
    data: dict


@dataclass
class TrainRequest:
    """What the training panel asks for; ``settings`` are TrainSettings' keyword arguments (with ``resume``, only
    those that override the run's own, and ``model_spec`` is unused: the run goes on from its newest checkpoint)."""

    model_spec: str
    settings: dict


class _Relay:
    """The core's training listener, turning each call into a :class:`TrainEvent` on the worker's progress."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def on_progress(self, step: int, max_steps: int, epoch: float, eta_seconds: float | None) -> None:
        self.ctx.progress(TrainEvent("progress", {"step": int(step), "max_steps": int(max_steps),
                                                  "epoch": float(epoch), "eta": eta_seconds}))

    def on_log(self, logs: dict) -> None:
        plain = {k: (float(v) if isinstance(v, (int, float)) else str(v)) for k, v in logs.items()}
        self.ctx.progress(TrainEvent("log", plain))

    def on_evaluate(self, step: int, metrics: dict) -> None:
        plain = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        self.ctx.progress(TrainEvent("evaluate", {"step": int(step), **plain}))

    def on_checkpoint(self, path: Path) -> None:
        self.ctx.progress(TrainEvent("checkpoint", {"path": str(path)}))

    def on_message(self, text: str) -> None:
        self.ctx.progress(TrainEvent("message", {"text": str(text)}))


def run_training(ctx: Any, dataset: Any, request: TrainRequest):
    """Fine-tune a new copy of ``request.model_spec`` on ``dataset``; returns the core's TrainResult."""
    from segstudio.gui.workers.jobs import import_core

    import_core("data", "model", "training")
    from transformers.utils import logging as hf_logging

    from segstudio.core.training import checkpoint_to_resume, model_to_train, settings_for, train

    hf_logging.disable_progress_bar()  # no console bars (nor tqdm's monitor thread) behind a window
    relay = _Relay(ctx)
    output, spec = Path(request.settings["output_dir"]), request.model_spec
    resume = bool(request.settings.get("resume"))
    if resume:  # the run's own settings and its newest checkpoint
        spec = str(checkpoint_to_resume(output))
    given = {key: value for key, value in request.settings.items() if key not in ("output_dir", "resume")}
    settings = settings_for(output, given, resume=resume)
    relay.on_message(f"loading {spec} with the dataset's {dataset.label_map.num_labels} classes")
    loaded = model_to_train(spec, dataset, settings)
    relay.on_message(loaded.report.summary())
    return train(dataset, loaded, settings, listener=relay, cancel=ctx.cancel_event)


def run_final_evaluation(ctx: Any, dataset: Any, output_dir: str):
    """Score the final model of the run in ``output_dir`` as its evaluations did; None if cancelled."""
    from segstudio.gui.workers.jobs import import_core

    import_core("data", "model", "training")
    from segstudio.core.training import TrainingCancelled, evaluate_final

    try:
        return evaluate_final(dataset, Path(output_dir), cancel=ctx.cancel_event)
    except TrainingCancelled:
        return None

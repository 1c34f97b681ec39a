"""Progress, logs and cancellation of a Trainer run, shared by the CLI and the GUI worker."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from transformers import TrainerCallback

from segstudio.core.training.checkpoints import mark_complete, remove_checkpoint


class TrainingCancelled(Exception):
    """Raised inside Trainer to stop an evaluation loop, which never looks at ``should_training_stop``."""


class TrainingListener(Protocol):
    """What the CLI and the GUI hear about a run; every method is optional."""

    def on_progress(self, step: int, max_steps: int, epoch: float, eta_seconds: float | None) -> None: ...
    def on_log(self, logs: dict) -> None: ...
    def on_evaluate(self, step: int, metrics: dict) -> None: ...
    def on_checkpoint(self, path: Path) -> None: ...
    def on_message(self, text: str) -> None: ...


class ProgressCallback(TrainerCallback):
    """Relays Trainer events to a listener (rank 0 only), stops the run when ``cancel`` is set, marks each saved
    checkpoint complete and keeps at most ``keep`` of those this run saved (it never deletes any other)."""

    def __init__(self, listener: Any | None, cancel: threading.Event, keep: int | None = None) -> None:
        self.listener = listener
        self.cancel = cancel
        self.keep = keep
        self.saved: list[Path] = []  # checkpoints this run wrote, oldest first
        self.nan_loss: str | None = None
        self._start = time.monotonic()
        self._first_step = 0

    def _emit(self, state, name: str, *args: Any) -> None:
        method = getattr(self.listener, name, None)
        if method is not None and state.is_world_process_zero:
            method(*args)

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.monotonic()
        self._first_step = state.global_step
        if state.global_step:
            self._emit(state, "on_message", f"resuming at step {state.global_step} of {state.max_steps}")
        else:
            self._emit(state, "on_message", f"training for {state.max_steps} steps")
        if self.cancel.is_set():
            raise TrainingCancelled()

    def on_step_end(self, args, state, control, **kwargs):
        done = state.global_step - self._first_step
        elapsed = time.monotonic() - self._start
        remaining = state.max_steps - state.global_step
        eta = elapsed / done * remaining if done > 0 else None
        self._emit(state, "on_progress", state.global_step, state.max_steps, state.epoch or 0.0, eta)
        if self.cancel.is_set():
            control.should_training_stop = True
            control.should_save = False
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        loss = logs.get("loss")
        if isinstance(loss, float) and not math.isfinite(loss):
            self.nan_loss = (
                f"the training loss became {loss} at step {state.global_step}: lower the learning rate, "
                "or check for batches whose pixels are all ignored"
            )
            control.should_training_stop = True
        self._emit(state, "on_log", {"step": state.global_step, **logs})
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._emit(state, "on_evaluate", state.global_step, dict(metrics or {}))

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            mark_complete(folder, step=state.global_step)
            self._emit(state, "on_checkpoint", folder)
            self._keep_newest(folder)

    def _keep_newest(self, folder: Path) -> None:
        if folder not in self.saved:
            self.saved.append(folder)
        while self.keep and len(self.saved) > self.keep:
            remove_checkpoint(self.saved.pop(0))

    def on_prediction_step(self, args, state, control, **kwargs):
        if self.cancel.is_set():
            raise TrainingCancelled()

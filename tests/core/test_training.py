"""Real (tiny) Trainer runs: progress, checkpoints, cancel during training and during evaluation."""

from __future__ import annotations

import gc
import threading

import pytest
import torch
from transformers import SegformerForSemanticSegmentation, Trainer

from segstudio.core.data.demo_dataset import make_demo
from segstudio.core.data.schema import SegDataset
from segstudio.core.model.loading import load_model
from segstudio.core.training.checkpoints import COMPLETE_MARKER, list_checkpoints
from segstudio.core.training.trainer import TrainingError, TrainSettings, train


@pytest.fixture(scope="module")
def tiny_demo() -> SegDataset:
    return make_demo(train=8, validation=4, test=2)


class Recorder:
    def __init__(self) -> None:
        self.progress: list[int] = []
        self.evaluations: list[dict] = []
        self.checkpoints: list = []
        self.logs: list[dict] = []

    def on_progress(self, step, max_steps, epoch, eta):
        self.progress.append(step)

    def on_evaluate(self, step, metrics):
        self.evaluations.append(metrics)

    def on_checkpoint(self, path):
        self.checkpoints.append(path)

    def on_log(self, logs):
        self.logs.append(logs)


def _scratch(dataset: SegDataset):
    return load_model("scratch", label_map=dataset.label_map, reduce_labels=True, image_size=64)


def test_short_training_run_reports_and_leaves_loadable_checkpoints(tiny_demo, tmp_path):
    recorder = Recorder()
    settings = TrainSettings(output_dir=tmp_path, max_steps=4, batch_size=4, image_size=64, learning_rate=1e-3,
                             eval_steps=2, save_steps=2, logging_steps=1)
    result = train(tiny_demo, _scratch(tiny_demo), settings, listener=recorder)
    assert not result.cancelled
    assert recorder.progress == [1, 2, 3, 4]
    assert len(recorder.evaluations) == 2
    assert 0.0 <= recorder.evaluations[-1]["eval_mean_iou"] <= 1.0
    assert any("loss" in log for log in recorder.logs)
    assert [p.name for p in result.checkpoints] == ["checkpoint-2", "checkpoint-4", "final"]
    reloaded = SegformerForSemanticSegmentation.from_pretrained(result.final_checkpoint)
    assert reloaded.config.id2label == {i: n for i, n in tiny_demo.label_map.id2label.items()}
    assert load_model(str(result.final_checkpoint)).convention.reduce_labels is True


class CancelAfter(Recorder):
    def __init__(self, cancel: threading.Event, step: int) -> None:
        super().__init__()
        self.cancel, self.step = cancel, step

    def on_progress(self, step, max_steps, epoch, eta):
        super().on_progress(step, max_steps, epoch, eta)
        if step >= self.step:
            self.cancel.set()


def test_cancel_stops_at_the_next_step_and_keeps_a_loadable_model(tiny_demo, tmp_path):
    cancel = threading.Event()
    recorder = CancelAfter(cancel, step=2)
    settings = TrainSettings(output_dir=tmp_path, max_steps=50, batch_size=2, image_size=64, eval_steps=100)
    result = train(tiny_demo, _scratch(tiny_demo), settings, listener=recorder, cancel=cancel)
    assert result.cancelled
    assert recorder.progress[-1] == 2
    assert (result.final_checkpoint / COMPLETE_MARKER).exists()
    SegformerForSemanticSegmentation.from_pretrained(result.final_checkpoint)


class CancelDuringEvaluation(Recorder):
    """Sets cancel from inside the evaluation loop (the first prediction step)."""


def test_cancel_interrupts_a_running_evaluation(tiny_demo, tmp_path, monkeypatch):
    from segstudio.core.training import events as training_events

    cancel = threading.Event()
    original = training_events.ProgressCallback.on_prediction_step
    seen: list[int] = []

    def on_prediction_step(self, args, state, control, **kwargs):
        seen.append(state.global_step)
        cancel.set()
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(training_events.ProgressCallback, "on_prediction_step", on_prediction_step)
    settings = TrainSettings(output_dir=tmp_path, max_steps=6, batch_size=2, image_size=64, eval_steps=1)
    recorder = Recorder()
    result = train(tiny_demo, _scratch(tiny_demo), settings, listener=recorder, cancel=cancel)
    assert result.cancelled
    assert seen == [1]  # the first evaluation was interrupted at its first batch
    assert recorder.evaluations == []
    assert recorder.progress == [1]
    assert result.final_checkpoint is not None


def test_incomplete_checkpoints_are_not_listed(tmp_path):
    (tmp_path / "checkpoint-5").mkdir()
    (tmp_path / "checkpoint-5" / "config.json").write_text("{}")
    assert list_checkpoints(tmp_path) == []


def test_label_count_mismatch_is_refused(tiny_demo, tmp_path):
    from segstudio.core.labels.label_map import LabelMap

    loaded = load_model("scratch", label_map=LabelMap.ade20k(), image_size=64)
    with pytest.raises(TrainingError, match="150 classes"):
        train(tiny_demo, loaded, TrainSettings(output_dir=tmp_path, max_steps=1))


def test_a_nan_loss_stops_training_with_a_message(tiny_demo, tmp_path, monkeypatch):
    import torch

    loaded = _scratch(tiny_demo)
    original = loaded.model.forward

    def nan_loss_forward(*args, **kwargs):
        output = original(*args, **kwargs)
        if output.loss is not None:
            output.loss = output.loss * torch.tensor(float("nan"))
        return output

    monkeypatch.setattr(loaded.model, "forward", nan_loss_forward)
    settings = TrainSettings(output_dir=tmp_path, max_steps=20, batch_size=2, image_size=64, eval_steps=100,
                             logging_steps=1)
    recorder = Recorder()
    with pytest.raises(TrainingError, match="loss became nan at step 1"):
        train(tiny_demo, loaded, settings, listener=recorder)
    assert recorder.progress == [1]


def test_collections_during_training_skip_what_was_loaded_before_and_nothing_stays_frozen(tiny_demo, tmp_path,
                                                                                          monkeypatch):
    # Trainer.train() begins with accelerate's free_memory() -> gc.collect(), which held the GIL ~190 ms over the
    # libraries' objects and froze the GUI thread at Start: those objects must be frozen (skipped) by then.
    frozen_at_collect = []
    collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *args: frozen_at_collect.append(gc.get_freeze_count()) or collect(*args))
    gc.unfreeze()  # as in a process that never froze the collector (the GUI's imports may have, in this one)
    train(tiny_demo, _scratch(tiny_demo), TrainSettings(output_dir=tmp_path, max_steps=1, batch_size=4, image_size=64))
    assert frozen_at_collect and min(frozen_at_collect) > 10_000  # torch's and transformers' objects, at least
    assert gc.get_freeze_count() == 0  # unfrozen after: later garbage cycles are collected as usual


def test_a_process_that_froze_the_collector_itself_stays_frozen(tiny_demo, tmp_path):
    gc.freeze()
    try:
        train(tiny_demo, _scratch(tiny_demo), TrainSettings(output_dir=tmp_path, max_steps=1, batch_size=4,
                                                            image_size=64))
        assert gc.get_freeze_count() > 0  # not unfrozen behind the process's back
    finally:
        gc.unfreeze()


def test_a_finished_run_leaves_nothing_for_the_collector_to_free(tiny_demo, tmp_path):
    # The guarded optimizer step once held the trainer and the optimizer in closures: reference cycles that kept the
    # optimizer (the model's parameters and AdamW's moments) and the Trainer alive after train() until a full
    # collection. In the GUI that was one more model's worth of memory per finished run.
    gc.collect()
    gc.disable()
    try:
        train(tiny_demo, _scratch(tiny_demo), TrainSettings(output_dir=tmp_path, max_steps=2, batch_size=4,
                                                            image_size=64))
        kinds = (torch.optim.Optimizer, Trainer)  # by type(): isinstance() trips deprecated torch proxies
        left = [type(o).__name__ for o in gc.get_objects() if issubclass(type(o), kinds)]
    finally:
        gc.enable()
    assert left == []

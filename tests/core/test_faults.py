"""Faults: out of memory, a full or read-only disk, and interruptions at awkward moments lose nothing,
leave nothing half-written that looks complete, and end in one clear line (never a traceback)."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import error_lines, needs_demo_model, scratch_model
from PIL import Image
from transformers import SegformerModel, Trainer

from segstudio.cli.entry import main
from segstudio.core.data.schema import SegDataset
from segstudio.core.export import writers as export
from segstudio.core.inference.fast import fused_encoder
from segstudio.core.model.loading import load_model
from segstudio.core.training.checkpoints import COMPLETE_MARKER, list_checkpoints
from segstudio.core.training.trainer import TrainingError, TrainSettings, train


def _scratch(dataset: SegDataset):
    return scratch_model(dataset, image_size=64)


def _settings(out: Path, **kwargs) -> TrainSettings:
    return TrainSettings(output_dir=out, batch_size=2, image_size=64, eval_steps=100, **kwargs)


def _oom(*args, **kwargs):
    """Stands in for the SegFormer encoder's forward (every inference and training path runs it)."""
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.8 GiB total)")


def _encoders_run_out_of_memory(monkeypatch) -> None:
    """transformers' encoder (training, other devices) and the fused CPU one fail as a full GPU would."""
    monkeypatch.setattr(SegformerModel, "forward", _oom)
    monkeypatch.setattr(fused_encoder, "_block", _oom)


# --- training interrupted ----------------------------------------------------------------------------------


def test_cancel_before_the_first_step_keeps_a_loadable_model(tiny_demo, tmp_path):
    cancel = threading.Event()
    cancel.set()
    result = train(tiny_demo, _scratch(tiny_demo), _settings(tmp_path, max_steps=5), cancel=cancel)
    assert result.cancelled and result.checkpoints == [result.final_checkpoint]
    assert load_model(str(result.final_checkpoint)).label_map == tiny_demo.label_map


def test_cancel_while_a_checkpoint_is_being_saved_finishes_that_save_then_stops(tiny_demo, tmp_path, monkeypatch):
    cancel = threading.Event()
    original = Trainer._save_checkpoint
    saves: list[int] = []

    def save_and_cancel(self, model, trial):
        saves.append(self.state.global_step)
        if self.state.global_step == 2:
            cancel.set()  # the person cancels while the checkpoint is half written
        return original(self, model, trial)

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_and_cancel)
    result = train(tiny_demo, _scratch(tiny_demo), _settings(tmp_path, max_steps=20, save_steps=1), cancel=cancel)
    assert result.cancelled and saves == [1, 2]
    names = [path.name for path in list_checkpoints(tmp_path)]
    assert names == ["checkpoint-1", "checkpoint-2", "final"]
    for path in list_checkpoints(tmp_path):
        assert (path / COMPLETE_MARKER).is_file()
        assert load_model(str(path)).label_map.num_labels == tiny_demo.label_map.num_labels


def test_a_save_killed_midway_is_not_listed_and_the_last_complete_one_loads(tiny_demo, tmp_path, monkeypatch):
    original = Trainer._save_checkpoint

    def die_midway(self, model, trial):
        if self.state.global_step < 3:
            return original(self, model, trial)
        folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        self.save_model(str(folder), _internal_call=True)  # weights and config written ...
        raise KeyboardInterrupt  # ... then the process is stopped before the optimizer and the marker

    monkeypatch.setattr(Trainer, "_save_checkpoint", die_midway)
    loaded = _scratch(tiny_demo)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_demo, loaded, _settings(tmp_path, max_steps=10, save_steps=1))
    half = tmp_path / "checkpoint-3"
    assert (half / "model.safetensors").is_file() and not (half / COMPLETE_MARKER).exists()
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint-1", "checkpoint-2"]
    assert not (tmp_path / "final").exists()
    last = load_model(str(list_checkpoints(tmp_path)[-1]))
    assert last.label_map == tiny_demo.label_map


def test_a_final_save_that_fails_leaves_no_final_folder(tiny_demo, tmp_path, monkeypatch):
    original = Trainer.save_model

    def full_disk(self, output_dir=None, _internal_call=False):
        if output_dir is not None and Path(output_dir).name.startswith(".segstudio-staging-final-"):
            original(self, output_dir, _internal_call)
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, output_dir, _internal_call)

    monkeypatch.setattr(Trainer, "save_model", full_disk)
    with pytest.raises(TrainingError, match="disk full") as info:
        train(tiny_demo, _scratch(tiny_demo), _settings(tmp_path, max_steps=2, save_steps=1))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "final").exists()
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint-1", "checkpoint-2"]


# --- out of memory -----------------------------------------------------------------------------------------


@needs_demo_model
def test_out_of_memory_in_cli_predict_is_one_line_with_a_suggestion(tmp_path, monkeypatch, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(src / "a.png")
    _encoders_run_out_of_memory(monkeypatch)
    out = tmp_path / "out"
    code = main(["predict", "--model", "demo", str(src), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1 and "out of memory" in lines[0] and "--batch-size" in lines[0]
    assert not out.exists()  # nothing half-exported


@needs_demo_model
def test_out_of_memory_in_cli_evaluate_is_one_line_with_a_suggestion(tmp_path, monkeypatch, capsys):
    _encoders_run_out_of_memory(monkeypatch)
    code = main(["evaluate", "--dataset", "demo", "--model", "demo", "--limit", "2", "--json", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1 and "out of memory" in lines[0] and "--batch-size" in lines[0]
    assert not (tmp_path / "m.json").exists()


def test_out_of_memory_in_cli_train_is_one_line_with_a_suggestion(tmp_path, monkeypatch, capsys):
    _encoders_run_out_of_memory(monkeypatch)
    code = main(["train", "--dataset", "demo", "--model", "scratch", "--output", str(tmp_path / "run"),
                 "--max-steps", "2", "--batch-size", "2", "--image-size", "64", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1 and "out of memory" in lines[0]
    assert "--batch-size" in lines[0] and "--image-size" in lines[0]
    assert list_checkpoints(tmp_path / "run") == []


@needs_demo_model
def test_out_of_memory_outside_the_model_forward_is_still_one_line(tmp_path, monkeypatch, capsys):
    """An OOM where no core code expects one (moving the model to the device) gets the same treatment."""
    from segstudio.core.inference import predictor as inference

    def oom_on_move(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")

    monkeypatch.setattr(inference.Predictor, "__init__", oom_on_move)
    (tmp_path / "in").mkdir()
    code = main(["predict", "--model", "demo", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1 and "out of memory" in lines[0]
    assert "--batch-size" in lines[0] and "--device cpu" in lines[0]


# --- export: full disk, read-only folder, exporting twice ----------------------------------------------------


def _images(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((12, 16, 3), 40 * i, np.uint8)).save(folder / name)
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fail_after(monkeypatch, writes: int) -> list[int]:
    """os.write raises ENOSPC after ``writes`` successful calls (the disk fills up partway)."""
    real_write = os.write
    calls: list[int] = []

    def write(fd, data):
        calls.append(len(data))
        if len(calls) > writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    return calls


@needs_demo_model
def test_predict_into_a_disk_that_fills_up_midway_writes_nothing(tmp_path, monkeypatch, capsys):
    src = _images(tmp_path / "in", [f"im{i}.png" for i in range(6)])
    out = tmp_path / "out"
    calls = _fail_after(monkeypatch, 4)
    code = main(["predict", "--model", "demo", str(src), "--output", str(out), "--batch-size", "2"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert len(calls) == 5  # labels.json and three masks were written before the disk filled up
    assert code == 2 and "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1 and "disk full" in lines[0]
    assert not out.exists()


@needs_demo_model
def test_predict_into_a_read_only_folder_is_one_line(tmp_path, monkeypatch, capsys):
    src = _images(tmp_path / "in", ["a.png"])
    out = tmp_path / "out"
    out.mkdir()

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(export.tempfile, "mkdtemp", refuse)
    monkeypatch.setattr(export.tempfile, "mkstemp", refuse)
    code = main(["predict", "--model", "demo", str(src), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1 and "read-only" in lines[0]
    assert list(out.iterdir()) == []


@needs_demo_model
def test_exporting_twice_replaces_the_first_results_and_a_failed_export_keeps_them(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    first = _images(tmp_path / "first", ["a.png", "b.png", "c.png"])
    assert main(["predict", "--model", "demo", str(first), "--output", str(out), "--format", "index",
                 "--format", "color"]) == 0
    assert {"a.png", "b.png", "c.png", "color/a.png"} <= set(_snapshot(out))
    (out / "notes.txt").write_text("mine")  # a file of the person's own is never touched
    second = _images(tmp_path / "second", ["c.png", "d.png"])
    assert main(["predict", "--model", "demo", str(second), "--output", str(out)]) == 0
    after_second = _snapshot(out)
    masks = sorted(name for name in after_second if name.endswith(".png"))
    assert masks == ["c.png", "d.png"]  # nothing of the first export is mixed in
    assert after_second["notes.txt"] == b"mine"
    assert not any(name.startswith(".segstudio-staging") for name in os.listdir(out))
    third = _images(tmp_path / "third", [f"e{i}.png" for i in range(5)])
    _fail_after(monkeypatch, 3)
    assert main(["predict", "--model", "demo", str(third), "--output", str(out)]) == 2
    monkeypatch.undo()
    assert "disk full" in capsys.readouterr().err
    assert _snapshot(out) == after_second


def test_staged_export_commit_never_deletes_outside_the_folder(tmp_path):
    """A tampered record of the previous export cannot make the next one delete files elsewhere."""
    import json

    outside = tmp_path / "keep.txt"
    outside.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    from segstudio.core.export import folder as export_folder

    (out / export_folder.EXPORT_RECORD).write_text(json.dumps(["../keep.txt", str(outside), "old.png"]))
    (out / "old.png").write_bytes(b"old")
    with export_folder.staged_export(out) as stage:
        export.save_png(stage.folder / "new.png", np.zeros((2, 2), np.uint8))
    assert outside.read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == sorted([export_folder.EXPORT_RECORD, "new.png", "old.png"])

"""Training never deletes what it did not write: a folder that is not a new, empty or SegStudio run folder is
refused, Trainer's checkpoint limit removes only this run's checkpoints, markers are withdrawn before a rewrite,
staging folders of ended processes are swept (and only those), a full disk ends in one line with the folder as it
was, and ``--resume`` continues a run as transformers' Trainer does (its own trainer_state.json is the reference)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import error_lines, scratch_model
from safetensors import SafetensorError
from transformers import SegformerForSemanticSegmentation, Trainer, TrainingArguments

from segstudio.cli.entry import main
from segstudio.core.data.label_guard import IgnoredBatchGuard
from segstudio.core.data.schema import SegDataset
from segstudio.core.training import run_folder
from segstudio.core.training.checkpoints import COMPLETE_MARKER, is_complete, list_checkpoints, mark_complete
from segstudio.core.training.events import ProgressCallback
from segstudio.core.training.trainer import (
    TrainingError,
    TrainSettings,
    _guarded_trainer,
    settings_for,
    train,
)

ARGS = ["--dataset", "demo", "--model", "scratch", "--batch-size", "2", "--image-size", "32", "--eval-steps", "100",
        "--device", "cpu"]


def _scratch(dataset: SegDataset):
    return scratch_model(dataset, image_size=32)


def _settings(out: Path, **kwargs) -> TrainSettings:
    values = {"batch_size": 2, "image_size": 32, "eval_steps": 100, "learning_rate": 1e-3, "logging_steps": 1,
              "device": "cpu", **kwargs}
    return TrainSettings(output_dir=out, **values)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``, with a hash of each file's content."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


def _users_folder(path: Path) -> Path:
    """What the tester had in --output: a model of their own, a checkpoint and a staging-like folder."""
    for name in ("final", "checkpoint-1", ".final-staging"):
        (path / name).mkdir(parents=True)
        (path / name / "model.safetensors").write_bytes(b"the user's weights")
    (path / "notes.txt").write_text("mine")
    return path


# --- a folder that is not a SegStudio run is never written into ---------------------------------------------


def test_cli_train_refuses_a_folder_holding_other_files_and_leaves_it_as_it_was(tmp_path, capsys):
    out = _users_folder(tmp_path / "out")
    before = _snapshot(out)
    code = main(["train", *ARGS, "--output", str(out), "--max-steps", "1"])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1, lines
    assert "not empty" in lines[0] and "new or empty output folder" in lines[0] and "or resume a SegStudio run" in lines[0]
    assert _snapshot(out) == before


def test_core_train_refuses_it_too_before_any_work(tiny_demo, tmp_path):
    out = _users_folder(tmp_path / "out")
    before = _snapshot(out)
    with pytest.raises(TrainingError, match="not empty"):
        train(tiny_demo, _scratch(tiny_demo), _settings(out, max_steps=1))
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(tiny_demo, _scratch(tiny_demo), _settings(out, max_steps=1, resume=True))
    assert _snapshot(out) == before


def test_the_checkpoint_limit_deletes_only_checkpoints_this_run_saved(tmp_path):
    theirs = tmp_path / "checkpoint-1"
    theirs.mkdir()
    (theirs / "model.safetensors").write_bytes(b"x")
    mark_complete(theirs)  # even one that looks like SegStudio's
    callback = ProgressCallback(None, threading.Event(), keep=1)
    args = SimpleNamespace(output_dir=str(tmp_path))
    for step in (2, 3, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "model.safetensors").write_bytes(b"y")
        callback.on_save(args, SimpleNamespace(global_step=step, is_world_process_zero=True), None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1", "checkpoint-4"]
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-1", "checkpoint-4"]


# --- honest markers -------------------------------------------------------------------------------------------


def test_a_checkpoint_whose_files_changed_after_marking_is_not_complete(tmp_path):
    folder = tmp_path / "checkpoint-3"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"0" * 100)
    (folder / "optimizer.pt").write_bytes(b"0" * 50)
    mark_complete(folder, step=3)
    assert is_complete(folder)
    (folder / "optimizer.pt").write_bytes(b"0" * 20)  # a rewrite cut short
    assert not is_complete(folder) and list_checkpoints(tmp_path) == []


def test_files_written_0600_get_the_mode_the_umask_gives_when_marked(tmp_path):
    folder = tmp_path / "checkpoint-1"
    folder.mkdir()
    fd, name = tempfile.mkstemp(dir=folder)  # how safetensors writes model.safetensors: 0600
    os.close(fd)
    os.replace(name, folder / "model.safetensors")
    (folder / "config.json").write_text("{}")  # open(): 0666 less the umask
    mark_complete(folder)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"] == modes[COMPLETE_MARKER]


def test_the_marker_is_withdrawn_before_trainer_writes_a_checkpoint_folder_again(tiny_demo, tmp_path, monkeypatch):
    loaded = _scratch(tiny_demo)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", save_total_limit=None)
    trainer = _guarded_trainer(IgnoredBatchGuard(255))(model=loaded.model, args=args)
    folder = tmp_path / "checkpoint-0"  # the step a fresh trainer is at
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"old")
    mark_complete(folder)
    marked_while_writing = []

    def killed_midway(self, model, trial):
        (folder / "model.safetensors").write_bytes(b"new")  # same size: only the marker can tell
        marked_while_writing.append(is_complete(folder))
        raise KeyboardInterrupt  # the process is stopped here

    monkeypatch.setattr(Trainer, "_save_checkpoint", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        trainer._save_checkpoint(loaded.model, None)
    assert marked_while_writing == [False]
    assert list_checkpoints(tmp_path) == []


# --- staging folders ------------------------------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_staging_folders_of_ended_processes_are_swept(tmp_path):
    dead = run_folder.make_staging(tmp_path, "final")
    owner = dead.with_name(dead.name + run_folder.OWNER_SUFFIX)
    owner.write_text(json.dumps({**json.loads(owner.read_text()), "pid": _dead_pid()}))
    (dead / "model.safetensors").write_bytes(b"half")
    alive = run_folder.make_staging(tmp_path, "final")  # this process's own
    unowned = tmp_path / ".segstudio-staging-final-abc"  # no owner file: nothing proves it is ours
    unowned.mkdir()
    users = tmp_path / ".final-staging"
    users.mkdir()
    other_host = run_folder.make_staging(tmp_path, "final")
    other_owner = other_host.with_name(other_host.name + run_folder.OWNER_SUFFIX)
    other_owner.write_text(json.dumps({"host": "another-machine", "pid": _dead_pid(), "started": None}))
    assert run_folder.remove_stale_staging(tmp_path) == [dead]
    assert not dead.exists() and not owner.exists()
    assert alive.is_dir() and unowned.is_dir() and users.is_dir() and other_host.is_dir()


def test_a_staging_folder_left_by_a_killed_process_is_swept_by_the_next_run(tmp_path):
    script = ("import os, sys, pathlib\n"
              "from segstudio.core.training.run_folder import make_staging\n"
              "folder = make_staging(pathlib.Path(sys.argv[1]), 'final')\n"
              "(folder / 'model.safetensors').write_bytes(b'half written')\n"
              "print(folder, flush=True)\n"
              "os.kill(os.getpid(), 9)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(run_folder.__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env)
    assert done.returncode == -9
    left = Path(done.stdout.strip())
    assert left.is_dir()
    run_folder.claim_output(tmp_path, {})
    assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [run_folder.RUN_MARKER]


def test_a_final_moved_aside_by_a_killed_process_is_put_back(tmp_path):
    aside = run_folder.make_staging(tmp_path, "previous-final")
    (aside / "model.safetensors").write_bytes(b"the last complete model")
    mark_complete(aside)
    owner = aside.with_name(aside.name + run_folder.OWNER_SUFFIX)
    owner.write_text(json.dumps({**json.loads(owner.read_text()), "pid": _dead_pid()}))
    run_folder.claim_output(tmp_path, {})
    assert (tmp_path / "final" / "model.safetensors").read_bytes() == b"the last complete model"
    assert is_complete(tmp_path / "final") and not aside.exists()


# --- a full disk ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_full_disk_at_the_first_checkpoint_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    real_save = torch.save

    def short_write(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        if str(f).endswith("optimizer.pt"):  # what torch says when the disk fills mid-file
            Path(f).write_bytes(Path(f).read_bytes()[:100])
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 5758784 vs 5758676")

    monkeypatch.setattr(torch, "save", short_write)
    out = tmp_path / "run"
    code = main(["train", *ARGS, "--output", str(out), "--max-steps", "2", "--save-steps", "1"])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("segstudio: error: disk full") and "Traceback" not in lines[0]
    assert not out.exists()  # as before the command


@pytest.mark.slow
def test_a_full_disk_at_the_final_save_of_a_resumed_run_leaves_the_folder_as_it_was(tiny_demo, tmp_path,
                                                                                   monkeypatch):
    out = tmp_path / "run"
    train(tiny_demo, _scratch(tiny_demo), _settings(out, max_steps=1, save_steps=1))
    before = _snapshot(out)
    import transformers.modeling_utils as modeling_utils

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 64)
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(modeling_utils, "safe_save_file", disk_full)
    with pytest.raises(TrainingError, match="^disk full") as info:
        train(tiny_demo, _scratch(tiny_demo), _settings(out, max_steps=2, save_steps=5, resume=True))
    assert "\n" not in str(info.value) and "resuming continues from the newest" in str(info.value)
    after = _snapshot(out)
    for snapshot in (before, after):
        snapshot.pop(run_folder.RUN_MARKER)  # the settings of the latest start are recorded there
    assert after == before
    assert "owner" not in json.loads((out / run_folder.RUN_MARKER).read_text())


# --- usage errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option, value, says", [
    ("--epochs", "nan", "positive number"),
    ("--epochs", "-1", "positive number"),
    ("--learning-rate", "nan", "positive number"),
    ("--learning-rate", "inf", "positive number"),
    ("--batch-size", "0", "at least 1"),
    ("--image-size", "-64", "at least 1"),
    ("--max-steps", "-5", "at least 1"),
    ("--max-steps", "0", "at least 1"),
    ("--save-steps", "0", "at least 1"),
    ("--seed", "-1", "between 0"),
])
def test_bad_train_values_are_one_line_and_status_2(tmp_path, capsys, option, value, says):
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "demo", "--model", "scratch", "--output", str(tmp_path / "run"), option, value])
    lines = error_lines(capsys.readouterr().err)
    assert info.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"segstudio: error: argument {option}:") and says in lines[0]
    assert not (tmp_path / "run").exists()


def test_an_output_that_is_a_file_is_one_line_and_status_2(tmp_path, capsys):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"precious")
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "demo", "--model", "scratch", "--output", str(target)])
    lines = error_lines(capsys.readouterr().err)
    assert info.value.code == 2 and len(lines) == 1 and "is a file, not a folder" in lines[0], lines
    assert target.read_bytes() == b"precious"


# --- resume ---------------------------------------------------------------------------------------------------


class CancelAfter:
    def __init__(self, cancel: threading.Event, step: int) -> None:
        self.cancel, self.step = cancel, step

    def on_progress(self, step, max_steps, epoch, eta):
        if step >= self.step:
            self.cancel.set()


def _trainer_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "trainer_state.json").read_text())


def _losses(state: dict) -> dict[int, tuple[float, float]]:
    return {entry["step"]: (entry["loss"], entry["learning_rate"]) for entry in state["log_history"] if "loss" in entry}


@pytest.mark.slow
def test_a_resumed_run_continues_as_the_uninterrupted_run_did(tiny_demo, tmp_path):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    torch.manual_seed(0)  # both runs start from the same random weights
    train(tiny_demo, _scratch(tiny_demo), _settings(whole, max_steps=4, save_steps=2))
    cancel = threading.Event()
    torch.manual_seed(0)
    first = train(tiny_demo, _scratch(tiny_demo), _settings(stopped, max_steps=4, save_steps=2),
                  listener=CancelAfter(cancel, 3), cancel=cancel)
    assert first.cancelled and [p.name for p in first.checkpoints] == ["checkpoint-2", "final"]
    stale = run_folder.make_staging(stopped, "final")  # as a killed process leaves it
    owner = stale.with_name(stale.name + run_folder.OWNER_SUFFIX)
    owner.write_text(json.dumps({**json.loads(owner.read_text()), "pid": _dead_pid()}))

    loaded = _scratch(tiny_demo)  # new random weights: Trainer must replace them with checkpoint-2's
    saved = SegformerForSemanticSegmentation.from_pretrained(stopped / "checkpoint-2").state_dict()
    starts = []

    def on_message(text):
        if text.startswith("resuming"):
            weights = loaded.model.state_dict()
            starts.append((text, all(torch.equal(weights[name], value) for name, value in saved.items())))

    settings = settings_for(stopped, {}, resume=True)  # as `train --resume` takes the run's own settings
    resumed = train(tiny_demo, loaded, settings, listener=SimpleNamespace(on_message=on_message))
    assert starts == [("resuming at step 2 of 4", True)]
    assert [p.name for p in resumed.checkpoints] == ["checkpoint-2", "checkpoint-4", "final"]
    assert not stale.exists() and not owner.exists()
    reference, continued = _trainer_state(whole / "checkpoint-4"), _trainer_state(stopped / "checkpoint-4")
    assert continued["global_step"] == reference["global_step"] == 4
    assert continued["max_steps"] == reference["max_steps"]
    ref_log, log = _losses(reference), _losses(continued)
    assert sorted(log) == [1, 2, 3, 4]  # steps 1-2 carried over from the first run, 3-4 from the resumed one
    assert {step: log[step] for step in (1, 2)} == {step: ref_log[step] for step in (1, 2)}
    assert [lr for _, lr in log.values()] == pytest.approx([lr for _, lr in ref_log.values()])  # scheduler goes on
    ref_sched = torch.load(whole / "checkpoint-4" / "scheduler.pt", weights_only=True)
    sched = torch.load(stopped / "checkpoint-4" / "scheduler.pt", weights_only=True)
    assert sched["last_epoch"] == ref_sched["last_epoch"] == 4
    ref_optim = torch.load(whole / "checkpoint-4" / "optimizer.pt", weights_only=True)
    optim = torch.load(stopped / "checkpoint-4" / "optimizer.pt", weights_only=True)
    steps = {int(v["step"]) for v in optim["state"].values()}
    assert steps == {int(v["step"]) for v in ref_optim["state"].values()} == {4}  # AdamW's moments went on too
    assert optim["param_groups"][0]["lr"] == pytest.approx(ref_optim["param_groups"][0]["lr"])


def test_cli_resume_needs_a_run_with_a_complete_checkpoint(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["train", "--dataset", "demo", "--output", str(empty), "--resume"])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and "nothing to resume" in lines[0], lines
    run = tmp_path / "run"
    run.mkdir()
    (run / run_folder.RUN_MARKER).write_text(json.dumps({"created_by": "segstudio train", "settings": {}}))
    (run / "checkpoint-3").mkdir()  # killed before its first save was complete
    code = main(["train", "--dataset", "demo", "--output", str(run), "--resume"])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and "no complete checkpoint" in lines[0], lines
    code = main(["train", *ARGS, "--output", str(run)])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and "already holds a training run" in lines[0], lines

"""Exports never delete or overwrite a person's file: forged records, links, files in the way, a second export
into the same folder, the umask, a full disk while moving files in, long names and CSV formula injection."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import error_lines, needs_demo_model
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.export.folder import EXPORT_RECORD, staged_export
from segstudio.core.export.folder_lock import LOCK_NAME
from segstudio.core.export.writers import (
    ExportError,
    atomic_write_bytes,
    plan_outputs,
    save_png,
    write_metrics_csv,
)


class _Any:
    def __eq__(self, other) -> bool:
        return True


ANY = _Any()  # the record's content, checked on its own


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _export(out: Path, files: dict[str, bytes], **kwargs) -> None:
    with staged_export(out, **kwargs) as stage:
        for name, data in files.items():
            atomic_write_bytes(stage.folder / name, data)


def _photos(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((12, 16, 3), 40 * i + 20, np.uint8)).save(folder / name)
    return folder


def _sha256_entry(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# --- forged or stale records, links --------------------------------------------------------------------------


@pytest.mark.parametrize("forged", ["list", "wrong-hash"])
def test_a_forged_record_deletes_no_file_of_the_person(tmp_path, forged):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    (out / "old.png").write_bytes(b"a mask I edited")
    names = ["precious.txt", "old.png"]
    record = names if forged == "list" else {
        "format": "segstudio-export-2", "files": {n: {"size": 1, "sha256": "0" * 64} for n in names}}
    (out / EXPORT_RECORD).write_text(json.dumps(record))
    _export(out, {"new.png": b"new"})
    assert (out / "precious.txt").read_text() == "mine"
    assert (out / "old.png").read_bytes() == b"a mask I edited"


@pytest.mark.parametrize("forged", ["list", "right-hash"])
def test_a_record_never_deletes_through_a_link(tmp_path, forged):
    """``ln -s /elsewhere O/link`` and ``["link/precious.txt"]``: even with the file's true hash it stays."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(elsewhere, target_is_directory=True)
    (out / "direct.txt").symlink_to(elsewhere / "precious.txt")
    names = ["link/precious.txt", "direct.txt"]
    record = names if forged == "list" else {
        "format": "segstudio-export-2", "files": {n: _sha256_entry(b"precious") for n in names}}
    (out / EXPORT_RECORD).write_text(json.dumps(record))
    _export(out, {"new.png": b"new"})
    assert (elsewhere / "precious.txt").read_bytes() == b"precious"
    assert (out / "direct.txt").is_symlink()


def test_a_linked_sub_folder_never_redirects_writes_outside_the_output(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "color").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ExportError, match="is a link"):
        _export(out, {"a.png": b"index", "color/a.png": b"colour"})
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["color"]  # nothing else written, no staging left
    with pytest.raises(ExportError, match="is a link"):  # and refused before any work when planned
        _export(out, {}, planned=["color/a.png"])


# --- overwrites ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.png", "labels.json", "manifest.json", "sub/x.png"])
def test_a_file_named_like_an_output_is_refused_not_overwritten(tmp_path, name):
    out = tmp_path / "out"
    (out / name).parent.mkdir(parents=True)
    (out / name).write_bytes(b"the person's own file")
    before = _snapshot(out)
    with pytest.raises(ExportError, match="already exists"):
        _export(out, {name: b"output", "other.png": b"output"})
    assert _snapshot(out) == before
    with pytest.raises(ExportError, match="already exists"):
        _export(out, {}, planned=[name])


def test_an_unchanged_export_is_replaced_and_a_hand_edited_mask_is_kept(tmp_path):
    out = tmp_path / "out"
    _export(out, {"a.png": b"first a", "b.png": b"first b", "color/c.png": b"first c"})
    _export(out, {"a.png": b"second a", "b.png": b"second b"})  # unchanged files of ours: replaced, c removed
    assert _snapshot(out) == {"a.png": b"second a", "b.png": b"second b", EXPORT_RECORD: ANY}
    assert not (out / "color").exists()
    record = json.loads((out / EXPORT_RECORD).read_text())["files"]
    assert record == {"a.png": _sha256_entry(b"second a"), "b.png": _sha256_entry(b"second b")}
    (out / "a.png").write_bytes(b"edited by hand")
    _export(out, {"b.png": b"third b"})  # a.png is no longer ours: kept
    assert (out / "a.png").read_bytes() == b"edited by hand"
    with pytest.raises(ExportError, match="already exists"):
        _export(out, {"a.png": b"fourth a"})
    assert (out / "a.png").read_bytes() == b"edited by hand"


def test_an_export_that_joins_keeps_the_previous_files(tmp_path):
    out = tmp_path / "out"
    _export(out, {"a.png": b"mask"})
    _export(out, {"metrics.json": b"{}"}, replace=False)
    _export(out, {"metrics.json": b"{ }"}, replace=False)  # its own earlier file may be replaced
    assert _snapshot(out) == {"a.png": b"mask", "metrics.json": b"{ }", EXPORT_RECORD: ANY}


@needs_demo_model
def test_predict_onto_its_own_photos_is_refused(tmp_path, capsys):
    photos = _photos(tmp_path / "photos", ["a.png", "b.png"])
    before = _snapshot(photos)
    assert main(["predict", "--model", "demo", str(photos), "--output", str(photos)]) == 2
    assert main(["predict", "--model", "demo", str(photos), "--output", str(photos / "masks")]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 2 and "is the input folder" in lines[0] and "is inside the input folder" in lines[1]
    single = [str(photos / "a.png"), str(photos / "b.png")]  # files, not the folder: the masks would replace them
    assert main(["predict", "--model", "demo", *single, "--output", str(photos)]) == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "already exists" in line and "choose another output folder" in line
    assert _snapshot(photos) == before


@needs_demo_model
@pytest.mark.parametrize("argv, problem", [
    (["--json", "{d}/manifest.json"], "manifest"),
    (["--json", "{d}/m.json", "--csv", "{d}/m.json"], "both name"),
    (["--json", "{d}"], "is a folder"),
    (["--json", "{d}/mine.json"], "already exists"),
])
def test_evaluate_outputs_that_would_lose_a_file_are_refused(tmp_path, capsys, argv, problem):
    (tmp_path / "mine.json").write_text("mine")
    before = _snapshot(tmp_path)
    argv = [a.format(d=tmp_path) for a in argv]
    assert main(["evaluate", "--dataset", "demo", "--model", "demo", *argv]) == 2
    [line] = error_lines(capsys.readouterr().err)
    assert problem in line
    assert _snapshot(tmp_path) == before


# --- one export at a time ------------------------------------------------------------------------------------


_HOLD_LOCK = """
import sys
from segstudio.core.export.folder_lock import folder_lock
with folder_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def _hold_lock(out: Path) -> subprocess.Popen:
    """Another process that holds ``out``'s export lock until its stdin closes."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_process_is_refused_while_one_exports_and_a_dead_ones_lock_is_taken_over(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = _hold_lock(out)
    try:
        with pytest.raises(ExportError, match=rf"another SegStudio export \(pid {holder.pid}\) is writing"):
            _export(out, {"a.png": b"mask"})
        assert sorted(os.listdir(out)) == [LOCK_NAME]
        holder.send_signal(signal.SIGKILL)  # dies holding it: the lock file stays, the lock goes
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert (out / LOCK_NAME).exists()
    _export(out, {"a.png": b"mask"})
    assert sorted(os.listdir(out)) == sorted([EXPORT_RECORD, "a.png"])


@needs_demo_model
def test_predict_into_a_folder_another_export_holds_is_one_line(tmp_path, capsys):
    photos = _photos(tmp_path / "photos", ["a.png"])
    out = tmp_path / "out"
    out.mkdir()
    holder = _hold_lock(out)
    try:
        assert main(["predict", "--model", "demo", str(photos), "--output", str(out)]) == 2
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    [line] = error_lines(capsys.readouterr().err)
    assert f"another SegStudio export (pid {holder.pid}) is writing to {out}" in line
    assert main(["predict", "--model", "demo", str(photos), "--output", str(out)]) == 0  # released: it runs
    assert (out / "a.png").exists() and not (out / LOCK_NAME).exists()


# --- umask, full disk, long names ----------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_exported_files_and_folders_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        out = tmp_path / "out"
        with staged_export(out) as stage:
            save_png(stage.folder / "sub" / "a.png", np.zeros((2, 2), np.uint8))
        atomic_write_bytes(tmp_path / "single.json", b"{}")
    finally:
        os.umask(old)
    for path in (out / "sub" / "a.png", out / EXPORT_RECORD, tmp_path / "single.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert stat.S_IMODE((out / "sub").stat().st_mode) == 0o777 & ~umask


def _replace_fails_after(monkeypatch, successes: int) -> list[int]:
    """os.replace fails once, after ``successes`` renames (the disk is full then; moving back frees space)."""
    real_replace = os.replace
    calls: list[int] = []

    def replace(src, dst, *args, **kwargs):
        calls.append(1)
        if len(calls) == successes + 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def _staged(out: Path, files: dict[str, bytes]):
    """A staged export whose files are already written (before the commit's renames are counted)."""
    context = staged_export(out)
    stage = context.__enter__()
    for name, data in files.items():
        atomic_write_bytes(stage.folder / name, data)
    return context


@pytest.mark.parametrize("successes", range(5))  # 5 renames: the record, 3 files, the record
def test_a_disk_full_while_moving_a_first_export_in_leaves_no_folder(tmp_path, monkeypatch, successes):
    out = tmp_path / "out"
    context = _staged(out, {"a.png": b"a", "color/a.png": b"ca", "manifest.json": b"{}"})
    calls = _replace_fails_after(monkeypatch, successes)  # the record is written in the staging folder first
    with pytest.raises(ExportError, match="^disk full"):
        context.__exit__(None, None, None)
    monkeypatch.undo()
    assert len(calls) > successes
    assert not out.exists()


@pytest.mark.parametrize("successes", range(7))  # 7: the record, 3 files and the record, 2 set aside
def test_a_disk_full_while_moving_an_export_in_leaves_the_previous_one(tmp_path, monkeypatch, successes):
    out = tmp_path / "out"
    _export(out, {"a.png": b"first a", "b.png": b"first b", "color/a.png": b"first ca"})
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    context = _staged(out, {"a.png": b"second a", "sub/c.png": b"second c", "manifest.json": b"{}"})
    _replace_fails_after(monkeypatch, successes)
    with pytest.raises(ExportError, match="^disk full"):
        context.__exit__(None, None, None)
    monkeypatch.undo()
    assert _snapshot(out) == before
    assert sorted(os.listdir(out)) == sorted([EXPORT_RECORD, "a.png", "b.png", "color", "notes.txt"])


@needs_demo_model
def test_predict_with_a_disk_full_at_the_commit_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    photos = _photos(tmp_path / "photos", ["a.png", "b.png"])
    out = tmp_path / "out"
    real_replace = os.replace

    def record_fails(src, dst, *args, **kwargs):  # every mask is in place when the record's rename fails
        if Path(dst) == out / EXPORT_RECORD:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", record_fails)
    assert main(["predict", "--model", "demo", str(photos), "--output", str(out)]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    [line] = error_lines(err)
    assert line.startswith("segstudio: error: disk full") and "Traceback" not in err
    assert not out.exists()


def test_a_255_byte_file_name_is_exported(tmp_path):
    """The longest name most file systems allow: the temporary file beside it must not need a longer one."""
    name = "n" * 251 + ".png"
    out = tmp_path / "out"
    [target] = plan_outputs([(Path("in") / name, Path(name))], out)
    with staged_export(out) as stage:
        save_png(stage.folder / target.name, np.ones((2, 2), np.uint8))
    assert (out / name).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ExportError, match="longer than 255 bytes"):
        plan_outputs([(Path("in") / ("n" * 252 + ".x"), Path("n" * 252 + ".x"))], out)


# --- CSV formula injection -----------------------------------------------------------------------------------


def test_csv_cells_that_would_run_as_formulas_are_quoted_and_numbers_stay_numbers(tmp_path):
    """OWASP "CSV Injection": a cell starting with = + - @ tab or carriage return is prefixed with a quote."""
    names = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "wall", "-0.5"]
    rows = [{"class_id": i, "class_name": n, "iou": -0.5, "accuracy": 0.25, "gt_pixels": 1, "pred_pixels": 1,
             "images": 1} for i, n in enumerate(names)]
    write_metrics_csv(tmp_path / "m.csv", rows)
    with open(tmp_path / "m.csv", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert [r["class_name"] for r in read] == ["'" + n for n in names[:6]] + ["wall", "-0.5"]
    assert {r["iou"] for r in read} == {"-0.5"}


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_a_saved_checkpoint_follows_the_umask(tmp_path, umask):
    """safetensors writes its file 0600 and mkdtemp makes 0700: the saved folder must be readable as the umask says."""
    from segstudio.core.labels.label_map import LabelMap
    from segstudio.core.model.loading import load_model, save_checkpoint

    loaded = load_model("scratch", label_map=LabelMap.from_names(["a", "b"]))
    old = os.umask(umask)
    try:
        out = save_checkpoint(loaded.model, loaded.processor, loaded.label_map, loaded.convention, tmp_path / "ck")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "labels.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name


@pytest.mark.slow
@pytest.mark.parametrize("command", ["check", "compare", "label-issues"])
def test_check_and_compare_json_never_overwrite_a_file_of_yours(tmp_path, command):
    """A report is an export of its own: refused over your file before any work, and may replace only its own."""
    mine = tmp_path / "report.json"
    mine.write_text("my notes")
    models = ["--model", "demo"] + {"compare": ["--model", "demo", "--limit", "2"],
                                     "label-issues": ["--limit", "2"]}.get(command, [])
    args = [sys.executable, "-m", "segstudio", command, "--dataset", "demo", *models, "--json", str(mine)]
    if command == "check":
        args += ["--split", "validation", "--sample", "4"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    refused = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 2 and mine.read_text() == "my notes", refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    ours = tmp_path / "ours.json"
    args[args.index(str(mine))] = str(ours)
    for _ in range(2):  # the second run replaces the report the first one wrote
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        assert json.loads(ours.read_text())


@needs_demo_model
def test_sigterm_half_way_through_predict_leaves_neither_folder_nor_staging(tmp_path, monkeypatch, capsys):
    """``kill`` (SIGTERM) while masks are being written: the staged export is removed on the way out, as for Ctrl+C
    (no hidden staging folder, no lock, no output folder the run created), with one line and status 143."""
    from segstudio.core.inference import file_prediction

    photos = _photos(tmp_path / "photos", ["a.png", "b.png", "c.png"])
    out = tmp_path / "out"
    real_write = file_prediction.write_prediction

    def write_then_terminate(*args, **kwargs):
        real_write(*args, **kwargs)
        assert any(p.name.startswith(".segstudio-staging-") for p in out.iterdir())  # half-way, in the staging
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(file_prediction, "write_prediction", write_then_terminate)
    handler = signal.getsignal(signal.SIGTERM)
    assert main(["predict", "--model", "demo", str(photos), "--output", str(out), "--batch-size", "1"]) == 143
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert error_lines(err) == [] and err.strip().splitlines()[-1].startswith("segstudio: stopped (SIGTERM)")
    assert not out.exists()
    assert signal.getsignal(signal.SIGTERM) == handler  # the caller's handler is back

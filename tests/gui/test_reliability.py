"""In the window: closing during every kind of job exits cleanly, exports are all-or-nothing, out of
memory and unreadable dropped files become one clear line, and the window lives on."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtWidgets import QApplication, QMessageBox

from segstudio.gui.controllers.sources import DROPPED
from segstudio.gui.dialogs.export import ExportChoice

CLOSE_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from segstudio.core.data.demo_dataset import make_demo
    from segstudio.gui.app import show_main_window
    from segstudio.gui.dialogs import messages as dialogs
    from segstudio.gui.dialogs.export import ExportChoice
    from segstudio.gui.workers.jobs import load_model_bundle
    from segstudio.gui.workers.worker import live_threads

    job, work = sys.argv[1], Path(sys.argv[2])
    app = QApplication([])
    window = show_main_window(app, QSettings(str(work / "s.ini"), QSettings.Format.IniFormat), autoload=False)
    demo = make_demo(train=8, validation=40, test=0)
    bundle = load_model_bundle("scratch", demo, "cpu", image_size=64, batch_size=1)
    window.review.auto_evaluate = job in ("inference", "evaluation")
    if job != "inference":
        window.set_dataset(demo)
    if job == "inference":
        from PIL import Image
        shots = work / "shots"
        shots.mkdir()
        for i in range(60):
            Image.new("RGB", (96, 64), (i * 4, 50, 90)).save(shots / f"shot {i}.png")
        window.review.set_model(bundle)
        window.handle_paths([str(shots)])
        running = lambda: window.jobs.is_running("predict") or window.jobs.is_running("evaluate")
    elif job == "evaluation":
        window.review.set_model(bundle)
        running = lambda: window.jobs.is_running("evaluate")
    elif job == "training":
        dialogs.ask = lambda *args, **kwargs: True  # "Stop training?" -> yes
        panel = window.training_panel
        panel.model_spec.setText("scratch")
        panel.length_unit.setCurrentText("steps")
        panel.steps.setValue(200)
        panel.batch_size.setValue(2)
        panel.image_size.setValue(64)
        panel.device.setCurrentText("cpu")
        panel.eval_steps.setValue(100)
        panel.output_dir.setText(str(work / "run"))
        window.training.start_from_panel()
        running = lambda: window.training.running() and bool(window.training_panel.progress.value() > 0)
    elif job == "export":
        window.review.set_model(bundle)
        window.exporter.export(ExportChoice(True, ["index", "overlay"], False, work / "export"))
        running = lambda: window.jobs.is_running("export")
    closed = []

    def poll():
        if not closed and running():
            closed.append(True)
            print("closing while running", flush=True)
            window.close()

    timer = QTimer(interval=20, timeout=poll)
    timer.start()
    QTimer.singleShot(120_000, lambda: app.exit(3))
    code = app.exec()
    timer.stop()
    print("live threads after exit:", len(live_threads()), flush=True)
    sys.exit(code if closed and not live_threads() else 4)
""")


@pytest.mark.parametrize("job", ["inference", "evaluation", "training", "export"])
def test_closing_the_window_during_a_job_stops_joins_and_exits_0(tmp_path, job):
    script = tmp_path / "close.py"
    script.write_text(CLOSE_SCRIPT)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1", "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.run([sys.executable, str(script), job, str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=str(Path(__file__).parents[2]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "closing while running" in proc.stdout
    assert "live threads after exit: 0" in proc.stdout
    assert "QThread" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    if job == "export":  # a cancelled export leaves no partial files
        assert not (tmp_path / "export").exists() or not list((tmp_path / "export").rglob("*.png"))
    if job == "training":  # closing keeps what was trained
        from segstudio.core.training.checkpoints import list_checkpoints

        (run,) = (tmp_path / "run").iterdir()  # the panel makes one run-<time> folder
        assert list_checkpoints(run)[-1].name == "final"


# --- export: all or nothing ------------------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _close_boxes() -> list[str]:
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    texts = [box.text() for box in boxes]
    for box in boxes:
        box.close()
    return texts


def test_export_twice_replaces_the_first_and_a_full_disk_keeps_it(review_window, qtbot, tmp_path, monkeypatch):
    window = review_window
    out = tmp_path / "export"
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000):
        assert window.exporter.export(ExportChoice(True, ["index", "color"], True, out))
    first = _snapshot(out)
    qtbot.waitUntil(lambda: not window.jobs.is_running("export"), timeout=10_000)
    assert sum(name.startswith("color/") for name in first) == 6 and "metrics.json" in first
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as blocker:
        assert window.exporter.export(ExportChoice(False, ["index"], False, out))
    second = _snapshot(out)
    masks = [name for name in second if name.endswith(".png")]
    assert len(masks) == 1 and not any(name.startswith("color/") for name in second)
    assert "metrics.json" not in second  # nothing of the first export is left mixed in
    assert blocker.args[0].files and all(path.parent == out or out in path.parents for path in blocker.args[0].files)
    assert all(path.exists() for path in blocker.args[0].files)

    real_write = os.write
    calls: list[int] = []

    def fill_up(fd, data):
        calls.append(len(data))
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    errors = len(window.errors)
    qtbot.waitUntil(lambda: not window.jobs.is_running("export"), timeout=10_000)
    monkeypatch.setattr(os, "write", fill_up)
    assert window.exporter.export(ExportChoice(True, ["index", "overlay"], True, out))
    qtbot.waitUntil(lambda: len(window.errors) > errors, timeout=60_000)
    monkeypatch.undo()
    info = window.errors[-1]
    assert info.title == "Export failed" and "disk full" in info.message and "\n" not in info.message
    assert any("disk full" in text for text in _close_boxes())
    assert _snapshot(out) == second
    assert window.exporter.dialog is None and not window.jobs.is_running("export")


def test_export_into_a_read_only_folder_is_one_line_and_writes_nothing(review_window, qtbot, tmp_path, monkeypatch):
    from segstudio.core.export import writers as export

    window = review_window
    out = tmp_path / "locked"
    out.mkdir()

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(export.tempfile, "mkdtemp", refuse)
    assert window.exporter.export(ExportChoice(True, ["index"], False, out))
    qtbot.waitUntil(lambda: bool(window.errors), timeout=30_000)
    assert "read-only" in window.errors[-1].message
    _close_boxes()
    assert list(out.iterdir()) == []


def test_dataset_file_names_with_dots_never_leave_the_export_folder(tmp_path, scratch_bundle):
    from types import SimpleNamespace

    from segstudio.gui.workers.export_job import ExportRequest, export_predictions

    names = ["../../escape.jpg", "/etc/abs.jpg", "a/../../b c ü.jpg", "..", "ok.jpg"]
    entries = [SimpleNamespace(index=i, file_name=name) for i, name in enumerate(names)]
    source = SimpleNamespace(entries=entries, image=lambda i: None, split="validation")
    mask = SimpleNamespace(unpack=lambda: np.zeros((3, 4), np.uint8))
    results = {e.index: SimpleNamespace(prediction=mask) for e in entries}
    ctx = SimpleNamespace(cancelled=False, progress=lambda payload: None)
    out = tmp_path / "sub" / "out"
    loaded = scratch_bundle.loaded
    summary = export_predictions(ctx, source, SimpleNamespace(get=results.get), scratch_bundle, loaded.label_map,
                                 loaded.convention, ExportRequest(out, [e.index for e in entries], ["index"]))
    written = sorted(tmp_path.rglob("*.png"))
    assert summary.written == 5 and len(written) == 5
    assert all(out in p.parents for p in written)
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted(
        ["escape.png", "abs.png", "a/b c ü.png", "image_000003.png", "ok.png"])


# --- out of memory and unreadable drops --------------------------------------------------------------------


def test_out_of_memory_while_predicting_is_a_message_and_the_window_lives(make_window, tiny_demo, scratch_bundle,
                                                                         qtbot, monkeypatch):
    from transformers import SegformerModel

    from segstudio.core.inference.fast import fused_encoder

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    window = make_window()
    window.set_dataset(tiny_demo)
    monkeypatch.setattr(SegformerModel, "forward", oom)
    monkeypatch.setattr(fused_encoder, "_block", oom)  # the CPU inference path's encoder
    window.review.set_model(scratch_bundle)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=60_000)
    qtbot.waitUntil(lambda: not window.jobs.is_running(), timeout=60_000)
    message = window.errors[-1].message
    assert "out of memory" in message.lower() and "batch" in message and "\n" not in message
    _close_boxes()
    monkeypatch.undo()
    window.review.evaluate(explicit=True)  # the window goes on: the next run works
    qtbot.waitUntil(lambda: (r := window.review.results(create=False)) is not None and r.complete, timeout=60_000)


def test_an_unexpected_out_of_memory_in_any_job_gets_the_suggestion(qtbot, on_gui_thread):
    from PySide6.QtCore import QObject, Slot

    from segstudio.gui.workers.worker import OUT_OF_MEMORY, Worker, start

    class Sink(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.errors: list = []

        @Slot(object)
        def on_error(self, info) -> None:
            self.errors.append(info)

    def job(ctx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")

    worker, sink = Worker("somewhere", job), Sink()
    worker.errored.connect(sink.on_error)
    with qtbot.waitSignals([on_gui_thread(worker.errored), on_gui_thread(worker.finished)], order="strict",
                           timeout=10_000):
        thread = start(worker)
    assert thread.wait(5_000)
    (info,) = sink.errors
    assert info.message == OUT_OF_MEMORY and "batch size" in info.message and info.kind == "OutOfMemoryError"


def test_dropped_odd_and_broken_images_are_predicted_or_named(make_window, scratch_bundle, qtbot, tmp_path,
                                                              wait_results, drop_files):
    folder = tmp_path / "dröpped fïles"
    folder.mkdir()
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    photo.save(folder / "UPPER.JPG", format="JPEG")
    photo.save(folder / "web p.webp", format="WEBP")
    photo.convert("CMYK").save(folder / "cmyk.jpg", format="JPEG")
    photo.convert("P").save(folder / "palette.png")
    Image.new("RGB", (1, 1)).save(folder / "one.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.save(folder / "rotated.jpg", exif=exif.tobytes())
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.PNG").write_text("hello")
    data = (folder / "UPPER.JPG").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    window = make_window()
    window.review.set_model(scratch_bundle)
    drop_files(window, [folder])
    qtbot.waitUntil(lambda: DROPPED in window.review.sources, timeout=10_000)
    wait_results(window)
    source, results = window.review.sources[DROPPED], window.review.results()
    outcomes = {entry.file_name: results.get(entry.index) for entry in source.entries}
    assert len(outcomes) == 9
    for name in ("empty.png", "text.PNG", "cut.jpg"):
        assert outcomes[name].error and name in outcomes[name].error and "\n" not in outcomes[name].error
    expected = {"UPPER.JPG": (30, 40), "web p.webp": (30, 40), "cmyk.jpg": (30, 40), "palette.png": (30, 40),
                "one.png": (1, 1), "rotated.jpg": (40, 30)}
    for name, shape in expected.items():
        assert outcomes[name].error is None and outcomes[name].prediction.unpack().shape == shape, name
    assert "3 skipped" in window.message_label.text() or "skipped" in window.message_label.text()


def test_bad_masks_are_named_per_image_in_the_window(make_window, qtbot, tmp_path, wait_results):
    from segstudio.core.data.sources import load_source
    from segstudio.gui.workers.jobs import load_model_bundle

    root = tmp_path / "pairs ü"
    rng = np.random.default_rng(5)
    masks = {"ok": rng.integers(0, 3, (16, 24)).astype(np.uint8),
             "wrong size": rng.integers(0, 3, (10, 10)).astype(np.uint8),
             "colour": rng.integers(0, 256, (16, 24, 3)).astype(np.uint8)}
    for name, mask in masks.items():
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)).save(root / "images" / f"{name}.png")
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    Image.new("RGB", (24, 16)).save(root / "images" / "no mask.png")
    dataset = load_source(str(root))
    window = make_window()
    window.set_dataset(dataset, "train")
    window.review.set_model(load_model_bundle("scratch", dataset, "cpu", image_size=32))
    wait_results(window)
    results, source = window.review.results(), window.review.source
    errors = {entry.file_name: results.get(entry.index).error for entry in source.entries}
    assert "10x10" in errors["images/wrong size.png"] and "\n" not in errors["images/wrong size.png"]
    assert errors["images/colour.png"] and "\n" not in errors["images/colour.png"]
    assert errors["images/ok.png"] is None and errors["images/no mask.png"] is None
    assert results.scored == 1
    assert "2 skipped" in window.message_label.text()

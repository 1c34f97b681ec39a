"""The training panel's options are `segstudio train`'s: saved to and loaded from a config file through the
buttons, remembered between sessions, and recorded in the checkpoint the Model panel then shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from segstudio.core.training import OPTIONS_FILE, read_options_file
from segstudio.gui.settings import AppSettings
from segstudio.gui.widgets.training_panel import TrainingPanel

TRAIN_TIMEOUT = 240_000


def _panel(qtbot, qsettings) -> TrainingPanel:
    panel = TrainingPanel(settings=AppSettings(qsettings))
    qtbot.addWidget(panel)
    return panel


def _choose(panel: TrainingPanel) -> None:
    """Every advanced option away from its default, through its widget."""
    advanced = panel.advanced
    advanced.gradient_accumulation_steps.setValue(4)
    advanced.warmup_steps.setValue(0.25)
    advanced.lr_scheduler_type.setCurrentText("polynomial")
    advanced.weight_decay.setValue(0.1)
    advanced.augmentation.setCurrentText("flip")
    advanced.seed.setValue(1234)
    advanced.dataloader_num_workers.setValue(2)
    advanced.save_steps.setValue(50)
    panel.length_unit.setCurrentText("epochs")
    panel.epochs.setValue(2.5)
    panel.batch_size.setValue(4)


def test_save_options_then_load_them_into_another_panel(qtbot, qsettings, tmp_path, monkeypatch):
    first = _panel(qtbot, qsettings)
    _choose(first)
    target = tmp_path / "options.yaml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(first.save_options_button, Qt.MouseButton.LeftButton)
    saved = read_options_file(target)
    assert saved == first.options()
    assert (saved["gradient_accumulation_steps"], saved["warmup_steps"], saved["lr_scheduler_type"],
            saved["augmentation"], saved["seed"], saved["epochs"], saved["max_steps"]) == (
        4, 0.25, "polynomial", "flip", 1234, 2.5, None)

    target.write_text(target.read_text() + "save_total_limit: 5\n")  # an option the form has no field for
    second = TrainingPanel()
    qtbot.addWidget(second)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(second.load_options_button, Qt.MouseButton.LeftButton)
    assert second.options() == {**saved, "save_total_limit": 5}
    assert second.advanced.lr_scheduler_type.currentText() == "polynomial"
    assert second.request().settings["save_total_limit"] == 5


def test_the_options_are_remembered_for_the_next_session(qtbot, qsettings, tmp_path):
    first = _panel(qtbot, qsettings)
    _choose(first)
    first.output_dir.setText(str(tmp_path / "runs"))
    request = first.request()  # what Start sends
    assert request.settings["gradient_accumulation_steps"] == 4
    assert Path(request.settings["output_dir"]).parent == tmp_path / "runs"
    later = _panel(qtbot, qsettings)
    assert later.options() == first.options()
    assert later.output_dir.text() == str(tmp_path / "runs")
    later.length_unit.setCurrentText("steps")
    later.steps.setValue(2000)
    assert later.options()["logging_steps"] == 10  # still follows the run's length (about 50 points a run)
    later.steps.setValue(100)
    assert later.options()["logging_steps"] == 2


@pytest.mark.parametrize(("text", "message"), [
    ('{"gradient_accumulation_steps": 0}', "gradient_accumulation_steps must be at least 1"),
    ('{"batch_size": 4, "optimizer": "sgd"}', "unknown option(s) optimizer"),
])
def test_a_bad_options_file_is_one_clear_message_and_changes_nothing(qtbot, qsettings, tmp_path, monkeypatch,
                                                                     text, message):
    panel = _panel(qtbot, qsettings)
    before = panel.options()
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    qtbot.mouseClick(panel.load_options_button, Qt.MouseButton.LeftButton)
    boxes = [box for box in panel.findChildren(QMessageBox) if box.isVisible()]
    assert len(boxes) == 1 and message in boxes[0].text() and "\n" not in boxes[0].text()
    boxes[0].close()
    assert panel.options() == before


@pytest.mark.slow
def test_a_run_from_the_window_records_its_options_and_the_model_panel_shows_them(make_window, tiny_demo, qtbot,
                                                                                  tmp_path):
    window = make_window()
    window.set_dataset(tiny_demo)
    window.docks["training"].show()
    panel = window.training_panel
    panel.model_spec.setText("scratch")
    panel.steps.setValue(2)
    panel.batch_size.setValue(2)
    panel.image_size.setValue(32)
    panel.device.setCurrentText("cpu")
    panel.eval_limit.setValue(1)
    panel.eval_steps.setValue(100)  # one evaluation, at the end
    panel.advanced.save_steps.setValue(100)
    panel.advanced.gradient_accumulation_steps.setValue(2)
    panel.advanced.augmentation.setCurrentText("flip-crop-color")
    panel.advanced.seed.setValue(5)
    panel.output_dir.setText(str(tmp_path))
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    final = blocker.args[0].final_checkpoint
    recorded = json.loads((final / OPTIONS_FILE).read_text())
    assert (recorded["gradient_accumulation_steps"], recorded["augmentation"], recorded["seed"]) == (
        2, "flip-crop-color", 5)
    window.training.review_checkpoint(str(final))
    qtbot.waitUntil(lambda: window.review.bundle is not None and window.review.bundle.spec == str(final),
                    timeout=60_000)
    report = window.model_panel.report.toPlainText()
    assert "trained with" in report and "gradient_accumulation_steps 2" in report
    assert "augmentation flip-crop-color" in report


def test_a_name_saved_without_a_suffix_never_replaces_its_json_file_unasked(qtbot, qsettings, tmp_path, monkeypatch):
    from segstudio.gui.widgets import training_panel

    panel = _panel(qtbot, qsettings)
    _choose(panel)
    existing = tmp_path / "mine.json"
    existing.write_text('{"learning_rate": 0.5}\n')
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "mine"), ""))
    questions = []
    monkeypatch.setattr(training_panel, "ask", lambda parent, title, text: questions.append(text) or False)
    qtbot.mouseClick(panel.save_options_button, Qt.MouseButton.LeftButton)
    assert questions == ["mine.json already exists. Replace it?"]
    assert existing.read_text() == '{"learning_rate": 0.5}\n'  # "No": the person's file is as it was
    monkeypatch.setattr(training_panel, "ask", lambda parent, title, text: True)
    qtbot.mouseClick(panel.save_options_button, Qt.MouseButton.LeftButton)
    assert read_options_file(existing) == panel.options()

"""Fine-tuning from the window: a short real run in the worker, cancel, closing during training, and how long
the GUI thread is ever blocked (largest gap between ticks of a 10 ms QTimer) while training and predicting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QTimer

from segstudio.core.training.checkpoints import COMPLETE_MARKER
from segstudio.gui.dialogs import messages as dialogs

pytestmark = pytest.mark.slow
TRAIN_TIMEOUT = 240_000


class GapMeter(QObject):
    """Ticks every 10 ms on the GUI thread and keeps the largest interval between two ticks."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self, interval=10, timerType=Qt.TimerType.PreciseTimer, timeout=self._tick)
        self.last = 0.0
        self.max_gap = 0.0
        self.ticks = 0

    def start(self) -> None:
        self.last, self.max_gap, self.ticks = time.perf_counter(), 0.0, 0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.max_gap

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now
        self.ticks += 1


def configure(panel, output: Path, steps: int) -> None:
    """A tiny run: scratch model, 64 px, batch 2, evaluation on 2 images every 2 steps."""
    panel.model_spec.setText("scratch")
    panel.length_unit.setCurrentText("steps")
    panel.steps.setValue(steps)
    panel.batch_size.setValue(2)
    panel.image_size.setValue(64)
    panel.device.setCurrentText("cpu")
    panel.learning_rate.setValue(1e-3)
    panel.eval_steps.setValue(2)
    panel.eval_limit.setValue(2)
    panel.output_dir.setText(str(output))


@pytest.fixture
def train_window(make_window, tiny_demo, qtbot):
    window = make_window()
    window.set_dataset(tiny_demo)
    window.docks["training"].show()
    return window


def test_a_short_run_streams_progress_curves_and_checkpoints_then_review_one(train_window, qtbot, tmp_path):
    window = train_window
    panel = window.training_panel
    configure(panel, tmp_path, steps=4)
    steps = []
    panel.progress.valueChanged.connect(steps.append)
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    result = blocker.args[0]
    assert not result.cancelled
    assert [s for s in steps if s > 0][:4] == [1, 2, 3, 4]
    assert len(panel.loss_chart.values()) == 4  # logged every step on a short run
    assert [x for x, _ in panel.iou_chart.values()] == [2, 4]
    assert all(0.0 <= y <= 1.0 for _, y in panel.iou_chart.values())
    names = [Path(p).name for p in panel.checkpoint_paths()]
    assert names == ["checkpoint-2", "checkpoint-4", "final"]
    assert panel.progress.format().startswith("finished")
    assert "validation mean IoU" in panel.log.toPlainText()
    panel.checkpoints.setCurrentRow(2)
    qtbot.mouseClick(panel.review_button, Qt.MouseButton.LeftButton)  # one click to review with it
    qtbot.waitUntil(lambda: window.review.bundle is not None, timeout=60_000)
    assert window.review.bundle.spec == str(result.final_checkpoint)
    qtbot.waitUntil(lambda: (r := window.review.results(create=False)) is not None and r.complete, timeout=60_000)


def test_cancel_stops_at_the_next_step_and_keeps_a_loadable_model(train_window, qtbot, tmp_path):
    window = train_window
    panel = window.training_panel
    configure(panel, tmp_path, steps=400)
    steps = []
    panel.progress.valueChanged.connect(steps.append)
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=TRAIN_TIMEOUT)
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
        assert "stopping" in panel.progress.format()
    result = blocker.args[0]
    assert result.cancelled
    assert result.final_checkpoint is not None and (result.final_checkpoint / COMPLETE_MARKER).is_file()
    assert panel.progress.maximum() == 400 and 1 <= max(steps) < 10  # stopped at the next step, not at 400
    assert panel.progress.value() == max(steps)  # the bar stays where the run stopped
    assert str(result.final_checkpoint) in panel.checkpoint_paths()
    assert panel.progress.format().startswith("cancelled")
    from segstudio.core.model.loading import load_model

    assert load_model(str(result.final_checkpoint)).label_map.num_labels == 10


def test_closing_during_training_asks_then_stops_cleanly(train_window, qtbot, tmp_path, monkeypatch):
    window = train_window
    questions = []
    monkeypatch.setattr(dialogs, "ask", lambda parent, title, text: questions.append(text) or True)
    configure(window.training_panel, tmp_path, steps=400)
    window.training_panel.start_button.click()
    qtbot.waitUntil(lambda: window.training_panel.progress.value() >= 1, timeout=TRAIN_TIMEOUT)
    window.close()
    assert len(questions) == 1 and "keep the model" in questions[0]
    assert not window.isVisible()  # the window goes at once; training stops after its step and saves
    qtbot.waitUntil(lambda: not window.jobs.is_running(), timeout=TRAIN_TIMEOUT)
    finals = list(tmp_path.glob("run-*/final"))
    assert len(finals) == 1 and (finals[0] / COMPLETE_MARKER).is_file()
    assert window.training.result.cancelled


def test_closing_during_training_can_be_refused(train_window, qtbot, tmp_path, monkeypatch):
    window = train_window
    monkeypatch.setattr(dialogs, "ask", lambda parent, title, text: False)
    configure(window.training_panel, tmp_path, steps=400)
    window.training_panel.start_button.click()
    qtbot.waitUntil(lambda: window.training_panel.progress.value() >= 1, timeout=TRAIN_TIMEOUT)
    window.close()
    assert window.isVisible() and window.training.running()
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT):
        window.training.cancel()


def test_training_without_a_dataset_says_so(make_window, tmp_path):
    window = make_window()
    configure(window.training_panel, tmp_path, steps=2)
    assert not window.training.start(window.training_panel.request())
    assert "Open a dataset first" in window.errors[-1].message


def test_gui_thread_stays_responsive_while_training_and_predicting(make_window, tiny_demo, scratch_bundle, qtbot,
                                                                  tmp_path, capsys):
    from segstudio.core.data.demo_dataset import make_demo

    window = make_window()
    window.set_dataset(tiny_demo)
    window.warm_up()  # what the app does once a model is loaded: import the training stack in the background
    qtbot.waitUntil(lambda: not window.jobs.is_running(), timeout=TRAIN_TIMEOUT)
    configure(window.training_panel, tmp_path, steps=4)
    meter = GapMeter()
    meter.start()
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT):
        window.training_panel.start_button.click()
    training_gap, training_ticks = meter.stop(), meter.ticks

    window.set_dataset(make_demo(train=0, validation=24, test=0))
    meter.start()
    window.review.set_model(scratch_bundle)  # predicts the 24-image split in the worker, streaming results in
    qtbot.waitUntil(lambda: (r := window.review.results(create=False)) is not None and r.complete, timeout=120_000)
    predict_gap, predict_ticks = meter.stop(), meter.ticks
    with capsys.disabled():
        print(f"\nlargest GUI-thread gap: training {1000 * training_gap:.0f} ms over {training_ticks} ticks, "
              f"predicting a split {1000 * predict_gap:.0f} ms over {predict_ticks} ticks")
    assert training_gap < 1.0
    assert predict_gap < 1.0


def _stopped_run(dataset, folder: Path) -> Path:
    """A run of 4 steps saved at step 2 and stopped after step 3 (what a cancelled or killed run leaves)."""
    import threading
    from types import SimpleNamespace

    from segstudio.core.model.loading import load_model
    from segstudio.core.training.trainer import TrainSettings, train

    cancel = threading.Event()
    stop = SimpleNamespace(on_progress=lambda step, *rest: step >= 3 and cancel.set())
    loaded = load_model("scratch", label_map=dataset.label_map, reduce_labels=True, image_size=64)
    settings = TrainSettings(output_dir=folder, max_steps=4, save_steps=2, batch_size=2, image_size=64,
                             eval_steps=100, logging_steps=1, device="cpu")
    assert train(dataset, loaded, settings, listener=stop, cancel=cancel).cancelled
    return folder


def test_resume_continues_a_stopped_run_from_its_newest_checkpoint(train_window, tiny_demo, qtbot, tmp_path,
                                                                   monkeypatch):
    import json

    from segstudio.gui.widgets import training_panel

    run = _stopped_run(tiny_demo, tmp_path / "run")
    panel = train_window.training_panel
    monkeypatch.setattr(training_panel.QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(run))
    steps = []
    panel.progress.valueChanged.connect(steps.append)
    with qtbot.waitSignal(train_window.training.finished, timeout=TRAIN_TIMEOUT) as blocker:
        qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
        assert not panel.resume_button.isEnabled() and not panel.start_button.isEnabled()
    result = blocker.args[0]
    assert not result.cancelled and result.output_dir == run
    assert "resuming at step 2 of 4" in panel.log.toPlainText()
    assert 3 in steps and 4 in steps and 2 not in steps  # steps 1-2 are not trained again
    assert {Path(p).name for p in panel.checkpoint_paths()} == {"checkpoint-2", "checkpoint-4", "final"}
    assert json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())["global_step"] == 4
    assert panel.resume_button.isEnabled()


def test_resuming_a_folder_without_a_run_says_so(train_window, qtbot, tmp_path, monkeypatch):
    from segstudio.gui.widgets import training_panel

    empty = tmp_path / "empty"
    empty.mkdir()
    panel = train_window.training_panel
    monkeypatch.setattr(training_panel.QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(empty))
    seen = len(train_window.errors)
    panel.resume_button.click()
    qtbot.waitUntil(lambda: len(train_window.errors) > seen, timeout=TRAIN_TIMEOUT)
    assert "nothing to resume" in train_window.errors[-1].message
    assert "Traceback" not in train_window.errors[-1].message
    assert panel.start_button.isEnabled() and panel.resume_button.isEnabled()
    assert list(empty.iterdir()) == []


def test_ctrl_t_shows_the_settings_and_starts_nothing(make_window, tiny_demo, qtbot):
    window = make_window()
    window.set_dataset(tiny_demo)
    assert not window.docks["training"].isVisible()
    window.actions.train.trigger()
    assert window.docks["training"].isVisible() and not window.training.running()
    assert "settings" in window.message_label.text()


def test_curves_span_the_run_keep_earlier_runs_and_a_short_run_gets_its_score(train_window, qtbot, tmp_path):
    window = train_window
    panel = window.training_panel
    configure(panel, tmp_path / "a", steps=3)
    panel.eval_steps.setValue(100)  # longer than the run: only the final evaluation can score it
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT):
        panel.start_button.click()
    assert [x for x, _ in panel.iou_chart.values()] == [3.0]
    axis = panel.loss_chart.x_axis
    assert axis.max() == 3 and axis.tickCount() == 4  # 0 1 2 3, not "0 0 0 1"
    first_run = panel.loss_chart.values()
    configure(panel, tmp_path / "b", steps=2)
    panel.eval_steps.setValue(100)
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT):
        panel.start_button.click()
    (previous,) = panel.loss_chart.previous
    assert [(p.x(), p.y()) for p in previous.points()] == first_run
    assert panel.loss_chart.x_axis.max() == 3  # wide enough for the earlier run too


def test_a_cancelled_run_leaves_the_bar_where_it_stopped(train_window, qtbot, tmp_path):
    window = train_window
    panel = window.training_panel
    configure(panel, tmp_path, steps=400)
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=TRAIN_TIMEOUT)
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT):
        window.training.cancel()
    assert panel.progress.maximum() == 400 and 1 <= panel.progress.value() < 400
    assert panel.progress.format().startswith("cancelled at step")


def test_a_run_cancelled_before_its_first_step_leaves_no_busy_bar(train_window, qtbot, tmp_path):
    window = train_window
    panel = window.training_panel
    configure(panel, tmp_path, steps=400)
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT):
        panel.start_button.click()
        window.training.cancel()  # while the model is still loading
    assert panel.progress.maximum() > 0  # a range of 0..0 is Qt's busy bar: it would keep moving, with no text
    assert panel.progress.text().startswith("cancelled before the first step") and "%" not in panel.progress.text()
    assert panel.start_button.isEnabled() and not window.errors


def _mean_iou_by_transformers(checkpoint: Path, dataset, images: int, size: int) -> float:
    """The saved model scored without SegStudio's transform, collate or metric: transformers' own processor and
    model on the first validation images at the run's size, and evaluate's mean_iou algorithm."""
    import numpy as np
    import torch
    from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

    from segstudio.core.metrics.reference import reference_mean_iou

    model = SegformerForSemanticSegmentation.from_pretrained(checkpoint).eval()
    processor = SegformerImageProcessor.from_pretrained(checkpoint)
    rows = dataset.splits["validation"].select(range(images))
    encoded = processor([row["image"].convert("RGB") for row in rows],
                        segmentation_maps=[np.array(row["annotation"]) for row in rows],
                        size={"height": size, "width": size}, return_tensors="pt")
    with torch.no_grad():
        logits = model(pixel_values=encoded["pixel_values"]).logits
    labels = encoded["labels"].numpy()
    preds = torch.nn.functional.interpolate(logits, size=labels.shape[-2:], mode="bilinear",
                                            align_corners=False).argmax(dim=1).numpy()
    return float(reference_mean_iou(list(preds), list(labels), model.config.num_labels, ignore_index=255)["mean_iou"])


def test_a_cancelled_run_offers_to_score_the_weights_it_reached(train_window, tiny_demo, qtbot, tmp_path, qsettings):
    window = train_window
    panel = window.training_panel
    configure(panel, tmp_path / "a", steps=400)
    panel.eval_steps.setValue(100)  # no evaluation before the cancel: only the final one can score the run
    assert not panel.evaluate_on_cancel.isChecked()
    with qtbot.waitSignal(window.training.finished, timeout=TRAIN_TIMEOUT) as finished:
        panel.start_button.click()
        qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=TRAIN_TIMEOUT)
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    result, step = finished.args[0], panel.progress.value()
    assert result.cancelled and panel.iou_chart.values() == []
    assert panel.final_eval_button.isVisible() and f"step {step}" in panel.final_eval_button.text()
    final_row = panel.checkpoint_paths().index(str(result.final_checkpoint))
    assert panel.checkpoints.item(final_row).text().startswith(f"final — cancelled at step {step}")
    with qtbot.waitSignal(window.training.final_scored, timeout=TRAIN_TIMEOUT) as scored:
        qtbot.mouseClick(panel.final_eval_button, Qt.MouseButton.LeftButton)
        assert not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    score = scored.args[0]
    expected = _mean_iou_by_transformers(result.final_checkpoint, tiny_demo, images=2, size=64)
    assert score.step == step and score.metrics["eval_mean_iou"] == pytest.approx(expected, abs=1e-6)
    assert panel.iou_chart.values() == [(step, pytest.approx(expected, abs=1e-6))]
    assert not panel.final_eval_button.isVisible() and panel.start_button.isEnabled()
    assert f"step {step} (cancelled): validation mean IoU" in panel.log.toPlainText()

    panel.evaluate_on_cancel.setChecked(True)  # remembered: the next cancel scores by itself, in a new window too
    configure(panel, tmp_path / "b", steps=400)
    panel.eval_steps.setValue(100)
    with qtbot.waitSignal(window.training.final_scored, timeout=TRAIN_TIMEOUT) as scored:
        panel.start_button.click()
        qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=TRAIN_TIMEOUT)
        window.training.cancel()
    assert [x for x, _ in panel.iou_chart.values()] == [scored.args[0].step]
    window.shutdown()
    from segstudio.gui.main_window import MainWindow

    again = MainWindow(settings=qsettings, autoload=False)
    qtbot.addWidget(again)
    assert again.training_panel.evaluate_on_cancel.isChecked()
    assert again.shutdown(10_000)

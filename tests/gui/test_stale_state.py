"""A failed action leaves the window describing what is shown; restored settings are ones that can be used."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QMessageBox


def _close_boxes() -> None:
    for box in [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]:
        box.close()


def test_a_dataset_that_fails_to_open_leaves_the_box_naming_the_shown_one(make_window, tiny_demo, qtbot, tmp_path):
    window = make_window()
    window.set_dataset(tiny_demo)
    shown = window.dataset_panel.spec.currentText()
    window.open_dataset(str(tmp_path / "no-such-folder"))
    qtbot.waitUntil(lambda: bool(window.errors), timeout=30_000)
    _close_boxes()
    assert window.dataset_panel.spec.currentText() == shown == str(tiny_demo.source)
    assert window.review.dataset is tiny_demo


def test_a_model_that_fails_to_load_says_which_model_is_still_in_use(make_window, tiny_demo, scratch_bundle,
                                                                     qtbot, tmp_path):
    window = make_window()
    window.set_dataset(tiny_demo)
    window.review.set_model(scratch_bundle)
    report = window.model_panel.report.toPlainText()
    window.open_model(str(tmp_path / "no-such-checkpoint"))
    qtbot.waitUntil(lambda: bool(window.errors), timeout=30_000)
    _close_boxes()
    status = window.model_panel.status.text()
    assert "Could not load" in status and "no-such-checkpoint" in status
    assert f"Still using <b>{scratch_bundle.spec}</b>" in status
    assert window.model_panel.spec.currentText() == scratch_bundle.spec
    assert window.model_panel.report.toPlainText() == report  # the report below is the model in use


def test_flips_are_not_restored_without_a_comparison(make_window, qsettings):
    window = make_window()
    window.viewer.set_analysis("flips")
    window.close()
    again = make_window()
    assert again.viewer.analysis == "errors"


def test_a_finished_training_run_is_offered_again(make_window, qsettings, tmp_path):
    from types import SimpleNamespace

    window = make_window()
    final = tmp_path / "run" / "final"
    window.training.finished.emit(SimpleNamespace(final_checkpoint=final))
    assert str(final) in window.settings.recent("models")
    assert window.model_panel.spec.findText(str(final)) >= 0


def test_a_broken_dropped_file_is_explained_in_the_viewer(make_window, scratch_bundle, qtbot, tmp_path, drop_files):
    from PIL import Image

    from segstudio.gui.controllers.sources import DROPPED

    folder = tmp_path / "drops"
    folder.mkdir()
    Image.new("RGB", (20, 10), (200, 30, 30)).save(folder / "good.png")
    (folder / "broken.png").write_text("not an image")
    window = make_window()
    window.review.set_model(scratch_bundle)
    drop_files(window, [folder])
    qtbot.waitUntil(lambda: DROPPED in window.review.sources, timeout=10_000)
    assert window.dataset_panel.split.currentText() == "dropped (2)"
    source = window.review.sources[DROPPED]
    broken = next(e.index for e in source.entries if e.file_name.endswith("broken.png"))
    good = next(e.index for e in source.entries if e.file_name.endswith("good.png"))
    window.dataset_panel.select_entry(broken)
    qtbot.waitUntil(lambda: window.viewer.notice.isVisible(), timeout=20_000)
    assert "broken.png" in window.viewer.notice.text()
    window.dataset_panel.select_entry(good)
    qtbot.waitUntil(lambda: not window.viewer.notice.isVisible(), timeout=20_000)
    _close_boxes()


def test_ctrl_o_asks_for_a_dataset_in_a_dialog_of_its_own(make_window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QInputDialog

    window = make_window()
    window.settings.add_recent("datasets", str(tmp_path / "ade"))
    opened = []
    monkeypatch.setattr(window.review, "open_dataset", lambda spec, options=None: opened.append(spec))
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QInputDialog) and w.isVisible())
    assert dialog.comboBoxItems()[:2] == ["demo", str(tmp_path / "ade")]
    # the typing goes to the dialog: no text box of the window is left to swallow the next shortcuts
    qtbot.waitUntil(lambda: dialog.isAncestorOf(QApplication.focusWidget()))
    dialog.setTextValue("demo")
    dialog.accept()
    assert opened == ["demo"]


def test_ctrl_shift_o_offers_demo_scratch_and_recent_models(make_window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    window = make_window()
    window.settings.add_recent("models", "/runs/a/final")
    loaded = []
    monkeypatch.setattr(window.review, "open_model", lambda spec, device="auto", size=None: loaded.append(spec))
    dialog = window.ask_model()
    assert isinstance(dialog, QInputDialog)
    assert dialog.comboBoxItems() == ["demo", "scratch", "/runs/a/final"]
    dialog.setTextValue("/runs/a/final")
    dialog.accept()
    assert loaded == ["/runs/a/final"]


def test_blank_panes_say_the_dataset_is_opening_and_why_it_failed(make_window, qtbot, tmp_path):
    window = make_window()
    window.open_dataset(str(tmp_path / "nowhere"))
    assert window.viewer.notice.isVisible() and "Opening dataset" in window.viewer.notice.text()
    qtbot.waitUntil(lambda: bool(window.errors), timeout=30_000)
    _close_boxes()
    assert "Could not open the dataset" in window.viewer.notice.text()


def test_checkpoint_b_can_be_demo_a_recent_checkpoint_or_a_hub_id(make_window, monkeypatch):
    window = make_window()
    window.settings.add_recent("models", "/runs/a/final")
    chosen = []
    monkeypatch.setattr(window.compare, "compare_with", lambda spec, device="auto": chosen.append(spec))
    dialog = window.compare.choose_checkpoint()
    assert dialog.comboBoxItems() == ["/runs/a/final", "demo", "Folder…"]
    dialog.setTextValue("nvidia/segformer-b0-finetuned-ade-512-512")
    dialog.accept()
    assert chosen == ["nvidia/segformer-b0-finetuned-ade-512-512"]


def test_sparse_layers_sit_on_a_dimmed_image(make_window):
    viewer = make_window().viewer
    viewer.set_analysis("flips")
    assert viewer.panes["error"].base.opacity() < 0.5 and viewer.panes["gt"].base.opacity() == 1.0
    viewer.set_analysis("errors")
    assert viewer.panes["error"].base.opacity() == 1.0


def test_an_offline_hub_dataset_suggests_what_the_window_can_open():
    from segstudio.core.data.hub import _unreachable

    message = str(_unreachable("someone/data"))
    assert "--dataset" not in message and "'demo'" in message

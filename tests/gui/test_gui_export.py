"""Export from the window: a whole split (masks in three formats, metrics) and a clear error for bad targets."""

from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressBar

from segstudio.gui.dialogs.export import ExportChoice, ExportDialog
from segstudio.gui.workers.export_job import relative_output


def test_export_a_split_writes_index_colour_overlay_and_metrics(review_window, qtbot, tmp_path):
    window = review_window
    out = tmp_path / "export"
    results = window.review.results()
    source = window.review.source
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as blocker:
        assert window.exporter.export(ExportChoice(True, ["index", "color", "overlay"], True, out))
        dialog = window.exporter.dialog
        assert dialog is not None and dialog.maximum() == 6  # a progress bar for the split
        values = []
        dialog.findChild(QProgressBar).valueChanged.connect(values.append)
    summary = blocker.args[0]
    assert summary.written == 6 and not summary.cancelled
    assert 6 in values and window.exporter.dialog is None
    labels = json.loads((out / "labels.json").read_text())
    assert labels["reduce_labels"] is True and len(labels["id2label"]) == 10
    for entry in source.entries:
        relative = relative_output(entry.file_name, entry.index).with_suffix(".png")
        index_png = np.asarray(Image.open(out / relative))
        expected = window.review.convention().to_dataset_ids(results.get(entry.index).prediction.unpack())
        assert np.array_equal(index_png, expected)  # dataset ids: class k saved as k + 1
        assert Image.open(out / "color" / relative).mode == "RGB"
        assert Image.open(out / "overlay" / relative).size == (256, 256)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "validation" and metrics["images_scored"] == 6
    assert metrics["mean_iou"] == results.metrics()["mean_iou"]
    assert len(metrics["per_image"]) == 6 and len(metrics["per_class"]) == 10
    with open(out / "per_class.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and rows[0]["class_name"] == window.review.label_map().name(0)
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_export_the_current_image_only(review_window, qtbot, tmp_path):
    window = review_window
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as blocker:
        window.exporter.export(ExportChoice(False, ["color"], False, tmp_path))
    assert blocker.args[0].written == 1
    assert len(list((tmp_path / "color").rglob("*.png"))) == 1
    assert not (tmp_path / "metrics.json").exists()


def test_an_unwritable_target_is_a_clear_error_dialog(review_window, qtbot, tmp_path):
    window = review_window
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    window.exporter.export(ExportChoice(True, ["index"], True, blocker / "export"))
    qtbot.waitUntil(lambda: bool(window.errors), timeout=30_000)
    info = window.errors[-1]
    assert info.title == "Export failed" and info.kind == "ExportError"
    assert "cannot write" in info.message
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    assert boxes and "cannot write" in boxes[-1].text()
    for box in boxes:
        box.close()
    assert window.exporter.dialog is None


def test_nothing_to_export_says_why(make_window, tmp_path):
    window = make_window()
    assert not window.exporter.export(ExportChoice(True, ["index"], False, tmp_path))
    assert window.errors[-1].message.startswith("Nothing to export")
    for box in [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]:
        box.close()


def test_dialog_collects_the_choice(qtbot, tmp_path):
    dialog = ExportDialog(None, str(tmp_path), can_split=True, has_metrics=False)
    qtbot.addWidget(dialog)
    dialog.overlay.setChecked(True)
    choice = dialog.choice()
    assert choice.whole_split and choice.formats == ["index", "overlay"] and not choice.metrics
    assert choice.output_dir == tmp_path


def test_relative_output_keeps_folders_and_never_leaves_the_target():
    assert relative_output("images/validation/a.jpg", 0).as_posix() == "validation/a.jpg"  # ADE layout
    assert relative_output("photos/a.jpg", 0).as_posix() == "photos/a.jpg"
    assert relative_output("images", 0).as_posix() == "images"
    assert relative_output("/abs/path/b.png", 1).as_posix() == "b.png"
    assert relative_output("../../etc/c.png", 2).as_posix() == "etc/c.png"
    assert relative_output("", 3).as_posix() == "image_000003"


def test_a_file_of_the_persons_own_in_the_way_is_a_clear_error_and_stays(review_window, qtbot, tmp_path):
    window = review_window
    (tmp_path / "labels.json").write_text("my own labels")
    window.exporter.export(ExportChoice(True, ["index"], False, tmp_path))
    qtbot.waitUntil(lambda: bool(window.errors), timeout=30_000)
    info = window.errors[-1]
    assert info.title == "Export failed" and info.kind == "ExportError" and "\n" not in info.message
    assert "labels.json already exists" in info.message and "choose another output folder" in info.message
    for box in [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]:
        box.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json"]
    assert (tmp_path / "labels.json").read_text() == "my own labels"


def test_export_dialog_offers_the_filtered_list_and_remembers_formats(review_window, qtbot, tmp_path, monkeypatch):
    from segstudio.gui.controllers import export as exporting

    window = review_window
    scene = window.review.source.entries[0].scene
    window.dataset_panel.set_scene(scene)
    listed = window.dataset_panel.proxy.rowCount()
    assert 0 < listed < 6
    chosen = {}

    def fake_exec(dialog):
        assert dialog.listed.isEnabled() and dialog.listed.isChecked() and str(listed) in dialog.listed.text()
        assert "6" in dialog.split.text()
        chosen.setdefault("first", [b.isChecked() for b in (dialog.index, dialog.color, dialog.overlay)])
        dialog.color.setChecked(True)
        dialog.folder.setText(str(tmp_path / "out"))
        return exporting.QDialog.DialogCode.Accepted

    monkeypatch.setattr(exporting.ExportDialog, "exec", fake_exec)
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as blocker:
        window.exporter.ask_and_export()
    summary = blocker.args[0]
    assert summary.written == listed  # what the list shows, not the whole split
    box = window.exporter.done_box
    assert box is not None and box.isVisible() and "Open Folder" in [b.text() for b in box.buttons()]
    assert box.text().startswith(f"Exported {listed} image(s)")
    box.close()
    assert not list((tmp_path / "out").rglob("images"))  # the ADE layout's images/ does not reach the masks
    monkeypatch.setattr(exporting.ExportDialog, "exec", lambda dialog: (
        chosen.__setitem__("second", [b.isChecked() for b in (dialog.index, dialog.color, dialog.overlay)]),
        exporting.QDialog.DialogCode.Rejected)[1])
    window.exporter.ask_and_export()
    assert chosen["first"] == [True, False, False] and chosen["second"] == [True, True, False]

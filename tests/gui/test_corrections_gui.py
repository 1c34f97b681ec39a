"""Corrections in the window: the folder beside the dataset is read, another one can be chosen (and is
remembered), a folder of another dataset is refused with the originals still shown, and the loop from corrected
data to a fine-tuned checkpoint compared with the model it started from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from segstudio.core.review import CorrectionsStore, apply_corrections

TRAIN_TIMEOUT = 240_000


def _ade_folder(root: Path, count: int = 3) -> Path:
    """An ADEChallengeData2016 folder as the release lays it out (JPEG images, 8-bit PNG masks, 0 = other)."""
    rng = np.random.default_rng(3)
    for folder in ("images/validation", "annotations/validation"):
        (root / folder).mkdir(parents=True)
    for i in range(1, count + 1):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(
            root / "images" / "validation" / f"ADE_val_{i:08d}.jpg")
        mask = np.full((40, 56), 3, np.uint8)
        mask[20:] = 7
        Image.fromarray(mask, "L").save(root / "annotations" / "validation" / f"ADE_val_{i:08d}.png")
    return root


def _fix(store_folder: Path, dataset_root: Path, stem: str = "ADE_val_00000002") -> np.ndarray:
    original = np.asarray(Image.open(dataset_root / "annotations" / "validation" / f"{stem}.png"))
    fixed = original.copy()
    fixed[5:15, 5:30] = 9
    CorrectionsStore(store_folder).save("validation", f"images/validation/{stem}.jpg", fixed, original)
    return fixed


def _open(window, qtbot, spec: str) -> None:
    with qtbot.waitSignal(window.review.dataset_opened, timeout=60_000):
        window.open_dataset(spec)


def _ground_truth(window, file_name: str) -> np.ndarray:
    """The mask the window shows for a row, back in the dataset's ids."""
    source = window.review.source
    row = [entry.file_name for entry in source.entries].index(file_name)
    return source.convention.to_dataset_ids(source.ground_truth(row))


def test_the_folder_beside_the_dataset_is_read_and_another_one_is_remembered(make_window, qtbot, tmp_path,
                                                                              qsettings, monkeypatch) -> None:
    root = _ade_folder(tmp_path / "ADEChallengeData2016")
    fixed = _fix(tmp_path / "ADEChallengeData2016-corrections", root)  # the default place: beside the dataset
    window = make_window()
    _open(window, qtbot, str(root))
    dataset = window.review.dataset
    assert dataset.corrections is not None and dataset.corrections.items == 1
    assert np.array_equal(_ground_truth(window, "images/validation/ADE_val_00000002.jpg"), fixed)
    original = np.asarray(Image.open(root / "annotations" / "validation" / "ADE_val_00000001.png"))
    assert np.array_equal(_ground_truth(window, "images/validation/ADE_val_00000001.jpg"), original)

    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(empty))  # File > Corrections Folder…
    with qtbot.waitSignal(window.corrections.applied, timeout=60_000):
        window.actions.corrections_folder.trigger()
    assert window.review.dataset.corrections is None  # nothing corrected there: the originals are shown
    untouched = np.asarray(Image.open(root / "annotations" / "validation" / "ADE_val_00000002.png"))
    assert np.array_equal(_ground_truth(window, "images/validation/ADE_val_00000002.jpg"), untouched)
    assert window.corrections.folder_for(window.review.dataset) == empty

    again = make_window(settings=qsettings)  # remembered for this dataset
    _open(again, qtbot, str(root))
    assert again.corrections.folder_for(again.review.dataset) == empty and again.review.dataset.corrections is None


def test_a_folder_of_another_dataset_is_refused_and_the_originals_shown(make_window, qtbot, tmp_path) -> None:
    root = _ade_folder(tmp_path / "ADEChallengeData2016")
    other = _ade_folder(tmp_path / "other" / "ADEChallengeData2016", count=5)
    (other / "annotations" / "validation" / "ADE_val_00000002.png").unlink()
    Image.fromarray(np.full((40, 56), 1, np.uint8), "L").save(other / "annotations" / "validation" /
                                                              "ADE_val_00000002.png")
    _fix(tmp_path / "foreign", other)
    window = make_window()
    _open(window, qtbot, str(root))
    with qtbot.waitSignal(window.corrections.applied, timeout=60_000):
        window.corrections.use_folder(tmp_path / "foreign")
    assert window.review.dataset.corrections is None
    assert window.errors and window.errors[-1].title == "Corrections not read"
    assert "does not fit" in window.errors[-1].message and "\n" not in window.errors[-1].message


def test_fine_tuning_on_corrected_data_needs_corrections(make_window, tiny_demo, scratch_bundle, qtbot) -> None:
    window = make_window()
    window.set_dataset(tiny_demo)
    window.review.set_model(scratch_bundle)
    messages = []
    window.review.status.connect(messages.append)
    window.actions.fine_tune_corrected.trigger()
    assert not window.training.running()
    assert "without corrections" in messages[-1]


@pytest.mark.slow
def test_fine_tuning_on_corrected_data_then_compares_the_new_checkpoint(make_window, tiny_demo, scratch_bundle,
                                                                        qtbot, tmp_path, wait_results) -> None:
    from segstudio.core.data.imageio import read_mask, stored_cells

    rows = stored_cells(tiny_demo.splits["train"])
    store = CorrectionsStore(tmp_path / "fixes")
    original = read_mask(rows[0]["annotation"])
    store.save("train", rows[0]["file_name"], np.where(original == 0, 3, original).astype(np.uint8), original)
    corrected = apply_corrections(tiny_demo, tmp_path / "fixes")
    window = make_window()
    window.set_dataset(corrected)
    window.review.set_model(scratch_bundle)
    wait_results(window)
    panel = window.training_panel
    panel.length_unit.setCurrentText("steps")
    panel.steps.setValue(2)
    panel.batch_size.setValue(2)
    panel.image_size.setValue(64)
    panel.device.setCurrentText("cpu")
    panel.eval_steps.setValue(2)
    panel.eval_limit.setValue(2)
    panel.output_dir.setText(str(tmp_path / "runs"))
    trained = []
    window.training.finished.connect(trained.append)
    with qtbot.waitSignal(window.retrain.compared, timeout=TRAIN_TIMEOUT) as blocker:
        window.actions.fine_tune_corrected.trigger()
        assert window.training.running()
    checkpoint = blocker.args[0]
    assert trained and checkpoint == str(trained[0].final_checkpoint)
    assert window.training.result.final_checkpoint is not None
    qtbot.waitUntil(lambda: window.compare.complete, timeout=60_000)
    qtbot.waitUntil(lambda: not window.jobs.is_running("compare"), timeout=60_000)
    assert window.compare.spec == checkpoint and window.compare.active()  # B: the new checkpoint; A: still open
    assert window.review.bundle is scratch_bundle
    run = json.loads((Path(trained[0].output_dir) / "segstudio-run.json").read_text())
    assert run["data"]["corrections"]["sha256"] == corrected.corrections.sha256  # what the run was trained on

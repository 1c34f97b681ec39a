"""The window's export writes manifest.json beside the masks and metrics: model, labels, split, counts, versions."""

from __future__ import annotations

import json

import torch
import transformers

from segstudio import __version__
from segstudio.core.export.manifest import id2label_sha256
from segstudio.gui.dialogs.export import ExportChoice


def test_a_split_export_writes_a_manifest(review_window, qtbot, tmp_path):
    window = review_window
    out = tmp_path / "export"
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as blocker:
        assert window.exporter.export(ExportChoice(True, ["index", "color"], True, out))
    summary = blocker.args[0]
    assert out / "manifest.json" in summary.files
    manifest = json.loads((out / "manifest.json").read_text())
    label_map = window.review.label_map()
    assert manifest["kind"] == "export"
    assert manifest["model"] == {"name": "scratch", "revision": "scratch", "revision_kind": "scratch",
                                 "num_labels": 10, "id2label_sha256": id2label_sha256(label_map)}
    assert manifest["labels"]["id2label_sha256"] == id2label_sha256(label_map)
    assert manifest["labels"]["digest"] == label_map.digest()
    assert manifest["labels"]["reduce_labels"] is True and manifest["labels"]["ignore_index"] == 255
    assert manifest["dataset"] == {"source": "demo", "split": "validation", "corrections": None} and manifest["inputs"] is None
    assert manifest["counts"] == {"images": 6, "written": 6, "skipped": 0}
    assert manifest["formats"] == ["index", "color"] and manifest["metrics"] is True
    assert manifest["cancelled"] is False
    assert manifest["versions"] == {"segstudio": __version__, "torch": torch.__version__,
                                    "transformers": transformers.__version__}
    assert manifest["device"] == "cpu" and manifest["precision"] == "float32"
    assert manifest["created_utc"].endswith("Z")
    assert not list(out.rglob("*.tmp"))


def test_a_single_image_export_counts_one(review_window, qtbot, tmp_path):
    window = review_window
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000):
        window.exporter.export(ExportChoice(False, ["index"], False, tmp_path))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"] == {"images": 1, "written": 1, "skipped": 0} and manifest["metrics"] is False


def test_an_export_of_dropped_images_names_the_input_files(review_window, wait_results, qtbot, tmp_path):
    import numpy as np
    from PIL import Image

    from segstudio.gui.workers.jobs import find_dropped_images

    window = review_window
    folder = tmp_path / "dropped"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(folder / f"photo_{i}.png")
    window.review.add_dropped(find_dropped_images([str(folder)]))
    wait_results(window)
    out = tmp_path / "out"
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000):
        window.exporter.export(ExportChoice(True, ["index"], False, out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"] is None
    assert manifest["inputs"] == [str(folder / "photo_0.png"), str(folder / "photo_1.png")]
    assert manifest["counts"] == {"images": 2, "written": 2, "skipped": 0}

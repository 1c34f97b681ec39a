"""Export: output planning, the id convention round trip, atomic writes, metrics files, rendering."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.data.imageio import read_mask
from segstudio.core.export import writers as export
from segstudio.core.export.writers import (
    ExportError,
    atomic_write_bytes,
    plan_outputs,
    save_png,
    write_labels_json,
    write_metrics_csv,
    write_metrics_json,
    write_prediction,
)
from segstudio.core.labels.label_map import LabelConvention, LabelMap
from segstudio.core.labels.render import colorize, error_map, overlay


@pytest.fixture
def label_map() -> LabelMap:
    return LabelMap.from_names(["wall", "floor", "tree"])


def prediction() -> np.ndarray:
    ids = np.array([[0, 1, 2, 255], [2, 1, 0, 0]], dtype=np.uint8)
    return np.kron(ids, np.ones((3, 3), dtype=np.uint8))


@pytest.mark.parametrize("reduce_labels", [True, False])
def test_index_png_round_trips_through_the_convention(tmp_path: Path, label_map, reduce_labels: bool) -> None:
    convention = LabelConvention(reduce_labels)
    ids = prediction()
    image = Image.new("RGB", (ids.shape[1], ids.shape[0]), (90, 90, 90))
    [out] = plan_outputs([(Path("in/x.jpg"), Path("sub/x.jpg"))], tmp_path)
    written = write_prediction(
        out, tmp_path, ids, image, label_map, convention, ["index", "color", "overlay"]
    )
    assert written == [tmp_path / "sub/x.png", tmp_path / "color/sub/x.png", tmp_path / "overlay/sub/x.png"]
    stored = read_mask(out)
    assert np.array_equal(convention.to_model_ids(stored), ids)
    if reduce_labels:
        assert stored[0, 0] == 1 and stored[0, 9] == 0  # model 0 -> dataset 1, ignored -> 0 "other"
    colour = np.asarray(Image.open(tmp_path / "color/sub/x.png"))
    assert colour[0, 0].tolist() == label_map.palette[0].tolist() and colour[0, 9].tolist() == [0, 0, 0]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.png"]  # no temp files left


def test_labels_json(tmp_path: Path, label_map) -> None:
    write_labels_json(tmp_path, label_map, LabelConvention(True))
    data = json.loads((tmp_path / "labels.json").read_text())
    assert data["id2label"] == {"0": "wall", "1": "floor", "2": "tree"}
    assert data["reduce_labels"] is True and data["ignore_index"] == 255 and len(data["palette"]) == 3


def test_plan_outputs_refuses_collisions_and_escapes_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert plan_outputs([(Path("a/b.jpg"), Path("b.jpg")), (Path("c.tif"), Path("d/c.tif"))], out) == [
        out / "b.png",
        out / "d/c.png",
    ]
    with pytest.raises(ExportError, match="both be written"):
        plan_outputs([(Path("f/a.jpg"), Path("a.jpg")), (Path("f/a.png"), Path("a.png"))], out)
    with pytest.raises(ExportError, match="both be written"):
        plan_outputs([(Path("x/color/a.jpg"), Path("color/a.jpg")), (Path("x/a.jpg"), Path("a.jpg"))], out)
    assert (
        len(
            plan_outputs(
                [(Path("x/color/a.jpg"), Path("color/a.jpg")), (Path("x/a.jpg"), Path("a.jpg"))],
                out,
                formats=["index"],
            )
        )
        == 2
    )
    with pytest.raises(ExportError, match="would leave"):
        plan_outputs([(Path("a.jpg"), Path("../a.jpg"))], out)
    assert not out.exists()


def test_enospc_midway_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("previous")
    real_write = os.write
    calls = []

    def failing_write(fd, data):
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(export, "_CHUNK", 1024)
    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(ExportError, match="disk full"):
        atomic_write_bytes(target, b"x" * 5000)
    monkeypatch.undo()
    assert len(calls) == 2
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder_gives_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="read-only or not writable"):
            save_png(folder / "a.png", np.zeros((2, 2), np.uint8))
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []


def test_read_only_file_system_is_explained(tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(export.tempfile, "mkstemp", refuse)
    with pytest.raises(ExportError, match="read-only or not writable"):
        write_metrics_json(tmp_path / "m.json", {})
    assert list(tmp_path.iterdir()) == []


def test_metrics_json_and_csv(tmp_path: Path) -> None:
    metrics = {
        "mean_iou": np.float64("nan"),
        "per_category_iou": np.array([0.5, np.nan]),
        "n": np.int64(3),
        "path": Path("x"),
        "nested": {1: [float("inf")]},
    }
    write_metrics_json(tmp_path / "m.json", metrics)
    data = json.loads((tmp_path / "m.json").read_text())
    assert data == {
        "mean_iou": None,
        "per_category_iou": [0.5, None],
        "n": 3,
        "path": "x",
        "nested": {"1": [None]},
    }
    rows = [
        {
            "class_id": 0,
            "class_name": "wall",
            "iou": 0.25,
            "accuracy": math.nan,
            "gt_pixels": np.int64(10),
            "pred_pixels": 4,
            "images": 2,
        }
    ]
    write_metrics_csv(tmp_path / "m.csv", rows)
    with open(tmp_path / "m.csv", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == [
        "class_id",
        "class_name",
        "iou",
        "accuracy",
        "gt_pixels",
        "pred_pixels",
        "images",
    ]
    assert read[0]["accuracy"] == "" and read[0]["gt_pixels"] == "10" and read[0]["iou"] == "0.25"


def test_sixteen_bit_masks_are_saved_as_16_bit_png(tmp_path: Path) -> None:
    ids = np.array([[0, 300], [65535, 7]], dtype=np.uint16)
    save_png(tmp_path / "w.png", ids)
    assert np.array_equal(read_mask(tmp_path / "w.png"), ids)


def test_render_colours(label_map) -> None:
    ids = np.array([[0, 1, 2, 255, 7]], dtype=np.uint8)
    colours = colorize(ids, label_map.palette)
    assert (
        colours[0, :3].tolist() == label_map.palette.tolist() and colours[0, 3:].tolist() == [[0, 0, 0]] * 2
    )
    assert np.array_equal(colorize(ids.astype(np.int32), label_map.palette), colours)
    image = np.full((1, 5, 3), 100, np.uint8)
    mixed = overlay(image, ids, label_map.palette, alpha=0.5)
    assert mixed[0, 3].tolist() == [100, 100, 100]
    assert (
        mixed[0, 0].tolist() == np.rint((100 + label_map.palette[0].astype(float)) / 2).astype(int).tolist()
    )
    errors = error_map(np.array([[0, 1, 2]]), np.array([[0, 2, 255]]))
    assert errors[0, 1].tolist() == [230, 30, 30] and errors[0, 2].tolist() == [128, 128, 128]
    assert errors[0, 0].sum() < 100

"""``segstudio check``: exit 0 when clean, 1 with errors (each with its fix), 2 for usage errors; optional JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.labels.label_map import LabelConvention, LabelMap
from segstudio.core.model.loading import load_model, save_checkpoint

NAMES = ["wall", "building", "sky"]


def write_pairs(root: Path, masks: dict[str, list[list[int]]], size: int = 24) -> Path:
    for split, value_lists in masks.items():
        for i, values in enumerate(value_lists):
            for kind in ("images", "masks"):
                (root / kind / split).mkdir(parents=True, exist_ok=True)
            rgb = np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(root / "images" / split / f"img_{i}.png")
            mask = np.asarray(values, np.uint8)[np.arange(size * size).reshape(size, size) % len(values)]
            Image.fromarray(mask).save(root / "masks" / split / f"img_{i}.png")
    (root / "labels.json").write_text(json.dumps({"id2label": dict(enumerate(NAMES))}), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def four_class_model(tmp_path_factory) -> Path:
    """A saved checkpoint whose head has 4 classes (the datasets here have 3)."""
    label_map = LabelMap.from_names(NAMES + ["floor"])
    loaded = load_model("scratch", label_map=label_map, reduce_labels=False, image_size=32)
    out = tmp_path_factory.mktemp("models") / "four"
    return save_checkpoint(loaded.model, loaded.processor, label_map, LabelConvention(False), out)


def test_a_clean_dataset_exits_0_and_writes_json(tmp_path, capsys):
    data = write_pairs(tmp_path / "data", {"train": [[0, 1, 2, 255]], "validation": [[0, 2]]})
    report = tmp_path / "out" / "check.json"
    assert main(["check", "--dataset", str(data), "--model", "scratch", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out and "train: scanned 1 of 1 images" in out
    written = json.loads(report.read_text())
    assert written["ok"] is True and written["errors"] == 0
    assert [s["split"] for s in written["scanned"]] == ["train", "validation"]


def test_double_reduction_exits_1_with_the_fix(tmp_path, capsys):
    data = write_pairs(tmp_path / "data", {"train": [[0, 1, 2, 255], [1, 255]]})
    report = tmp_path / "check.json"
    code = main(["check", "--dataset", str(data), "--reduce-labels", "--model", "scratch", "--split", "train",
                 "--json", str(report)])
    assert code == 1
    captured = capsys.readouterr()
    assert "error: the masks look already reduced" in captured.out
    assert "fix: read the dataset with --no-reduce-labels" in captured.out
    assert "1 label-convention error(s) found" in captured.err
    findings = json.loads(report.read_text())["findings"]
    assert findings[0]["code"] == "double_reduction" and findings[0]["severity"] == "error"
    code = main(["train", "--dataset", str(data), "--reduce-labels", "--model", "scratch", "--output",
                 str(tmp_path / "run"), "--max-steps", "1", "--image-size", "32", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "double reduction" in err[-1] and err[-1].startswith("segstudio: error:")
    assert not (tmp_path / "run").exists()


def test_ids_0_to_k_and_a_mismatched_head_exit_1(tmp_path, capsys, four_class_model):
    data = write_pairs(tmp_path / "data", {"train": [[0, 1, 2, 3]]})
    assert main(["check", "--dataset", str(data), "--model", str(four_class_model)]) == 1
    out = capsys.readouterr().out
    assert "the model's head has 4 classes but the dataset's label map has 3" in out
    assert "fix: pass --reduce-labels" in out
    assert main(["check", "--dataset", str(data), "--reduce-labels", "--model", "scratch"]) == 0


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    data = write_pairs(tmp_path / "data", {"train": [[0, 1]]})
    for argv in (["check", "--dataset", str(tmp_path / "missing"), "--model", "scratch"],
                 ["check", "--dataset", str(data), "--model", "scratch", "--split", "test"],
                 ["check", "--dataset", str(data), "--model", str(tmp_path / "no-model")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("segstudio: error:"), err

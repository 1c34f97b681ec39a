"""evaluate, train and compare refuse (exit 2, one line with the fix) what the label guard knows is wrong, unless --force.

The dataset is scene_parse_150 as users save it: ``load_dataset("parquet")`` over Parquet files with its features
and the devkit's real samples, then ``save_to_disk``. One more row marks a few pixels with id 150 ('flag', the last
ADE20K class), as many real annotations do: with it the sample shows ids 0..150, which read without reduce_labels
is the ADE20K shift the guard reports.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.data.label_guard import blocking_errors, refusal_message
from segstudio.core.data.sources import SourceOptions, load_source

DEVKIT = Path(__file__).resolve().parents[1] / "fixtures" / "ade20k-devkit"


def png_bytes(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """scene_parse_150's features and the devkit rows (+ one with a flag), through Parquet and save_to_disk."""
    root = tmp_path_factory.mktemp("scene_parse")
    names = (DEVKIT / "scene_names.txt").read_text(encoding="utf-8").split()
    features = datasets.Features({"image": datasets.Image(), "annotation": datasets.Image(),
                                  "scene_category": datasets.ClassLabel(names=names)})
    cells: dict[str, list] = {"image": [], "annotation": [], "scene_category": []}
    sources = ["ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003", "ADE_val_00000003"]
    for i, source in enumerate(sources):
        stem, mask = f"ADE_val_{i + 1:08d}", (DEVKIT / f"{source}.png").read_bytes()
        if i == 3:
            flagged = np.array(Image.open(DEVKIT / f"{source}.png"))
            flagged[:8, :8] = 150
            mask = png_bytes(flagged)
        cells["image"].append({"bytes": (DEVKIT / f"{source}.jpg").read_bytes(), "path": f"{stem}.jpg"})
        cells["annotation"].append({"bytes": mask, "path": f"{stem}.png"})
        cells["scene_category"].append(i)
    rows = datasets.Dataset.from_dict(cells, features=features)
    (root / "parquet" / "data").mkdir(parents=True)
    rows.select([0, 1]).to_parquet(str(root / "parquet" / "data" / "train-00000-of-00001.parquet"))
    rows.to_parquet(str(root / "parquet" / "data" / "validation-00000-of-00001.parquet"))
    loaded = datasets.load_dataset("parquet", data_dir=str(root / "parquet"), cache_dir=str(root / "cache"))
    loaded.save_to_disk(str(root / "saved"))
    return root / "saved"


def test_the_guard_finds_the_shift_only_when_reduce_labels_is_turned_off(saved):
    assert blocking_errors(load_source(str(saved)), [], ["validation"]) == []
    errors = blocking_errors(load_source(str(saved), SourceOptions(reduce_labels=False)), [], ["validation"])
    assert [f.code for f in errors] == ["needs_reduce_labels"]
    message = refusal_message(errors, "evaluate")
    assert "\n" not in message and "--reduce-labels" in message and "--force" in message


def test_a_double_reduction_is_not_offered_force(tmp_path):
    """Training and evaluation refuse a double reduction whatever is asked, so --force is not suggested."""
    for kind in ("images", "masks"):
        (tmp_path / kind / "validation").mkdir(parents=True)
    stem = "ADE_val_00000001"
    (tmp_path / "images" / "validation" / f"{stem}.jpg").write_bytes((DEVKIT / f"{stem}.jpg").read_bytes())
    stored = np.asarray(Image.open(DEVKIT / f"{stem}.png"))
    reduced = np.where(stored == 0, 255, stored - 1).astype(np.uint8)  # the ADE20K reduction, done once already
    Image.fromarray(reduced).save(tmp_path / "masks" / "validation" / f"{stem}.png")
    errors = blocking_errors(load_source(str(tmp_path), SourceOptions(reduce_labels=True)), [], ["validation"])
    assert [f.code for f in errors] == ["double_reduction"]
    message = refusal_message(errors, "evaluate")
    assert "--no-reduce-labels" in message and "--force" not in message


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("segstudio: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr
    return errors[0]


@pytest.mark.slow  # loads a model
def test_evaluate_refuses_with_exit_2_and_the_fix(saved, tmp_path, capsys):
    report = tmp_path / "out" / "metrics.json"
    code = main(["evaluate", "--dataset", str(saved), "--no-reduce-labels", "--model", "scratch",
                 "--json", str(report)])
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "refuses to evaluate" in line and "pass --reduce-labels" in line and "--force" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # loads a model and evaluates four images
def test_evaluate_runs_with_force_and_by_default(saved, tmp_path, capsys):
    forced = tmp_path / "forced.json"
    code = main(["evaluate", "--dataset", str(saved), "--no-reduce-labels", "--model", "scratch", "--force",
                 "--json", str(forced)])
    err = capsys.readouterr().err
    assert code == 0 and "label check (ignored, --force)" in err
    assert json.loads(forced.read_text())["reduce_labels"] is False
    default = tmp_path / "default.json"
    assert main(["evaluate", "--dataset", str(saved), "--model", "scratch", "--json", str(default)]) == 0
    err = capsys.readouterr().err
    assert "label convention: ADE20K" in err and "label check" not in err
    assert json.loads(default.read_text())["reduce_labels"] is True


@pytest.mark.slow  # loads a model
def test_train_refuses_before_writing_anything(saved, tmp_path, capsys):
    output = tmp_path / "run"
    code = main(["train", "--dataset", str(saved), "--no-reduce-labels", "--model", "scratch", "--output",
                 str(output), "--max-steps", "1", "--batch-size", "1", "--image-size", "32"])
    assert code == 2
    assert "refuses to train" in one_error_line(capsys.readouterr().err)
    assert not output.exists()


@pytest.mark.slow  # loads two models
def test_compare_refuses(saved, capsys):
    code = main(["compare", "--dataset", str(saved), "--no-reduce-labels", "--model", "scratch", "--model",
                 "scratch"])
    assert code == 2
    assert "refuses to compare" in one_error_line(capsys.readouterr().err)

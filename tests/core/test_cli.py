"""The command line as a script would use it: exit codes, messages, files written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import needs_demo_model
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.labels.label_map import LabelConvention
from segstudio.core.metrics.confusion import ConfusionMatrix


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "ADEChallengeData2016"
    assert main(["demo-data", str(out)]) == 0
    return out


def test_demo_data_writes_an_ade_folder(demo_folder):
    assert (demo_folder / "objectInfo150.txt").is_file()
    assert (demo_folder / "sceneCategories.txt").is_file()
    assert len(list((demo_folder / "images" / "validation").glob("*.jpg"))) == 48
    assert len(list((demo_folder / "annotations" / "validation").glob("*.png"))) == 48


def test_demo_data_refuses_a_non_empty_target(demo_folder, capsys):
    assert main(["demo-data", str(demo_folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segstudio: error:") and "is not empty" in err[0]


def test_demo_data_onto_a_file_says_it_is_a_file(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["demo-data", str(target)]) == 2
    assert capsys.readouterr().err.strip() == f"segstudio: error: {target} is a file, not a folder; choose a new folder"
    assert target.read_text() == "mine"


@needs_demo_model
def test_evaluate_matches_the_masks_that_predict_writes(demo_folder, tmp_path):
    metrics_path = tmp_path / "m.json"
    code = main(["evaluate", "--dataset", str(demo_folder), "--split", "validation", "--model", "demo",
                 "--json", str(metrics_path), "--csv", str(tmp_path / "m.csv")])
    assert code == 0
    metrics = json.loads(metrics_path.read_text())
    assert metrics["mean_iou"] >= 0.85
    assert len(metrics["per_class"]) == 10
    out = tmp_path / "pred"
    assert main(["predict", "--model", "demo", str(demo_folder / "images" / "validation"),
                 "--output", str(out)]) == 0
    convention = LabelConvention(reduce_labels=True)
    matrix = ConfusionMatrix(10)
    for gt_path in sorted((demo_folder / "annotations" / "validation").glob("*.png")):
        pred = np.asarray(Image.open(out / gt_path.name))
        gt = np.asarray(Image.open(gt_path))
        matrix.update(convention.to_model_ids(pred), convention.to_model_ids(gt))
    assert matrix.compute()["mean_iou"] == pytest.approx(metrics["mean_iou"], abs=1e-12)
    labels = json.loads((out / "labels.json").read_text())
    assert labels["reduce_labels"] is True and len(labels["id2label"]) == 10


@needs_demo_model
def test_predict_names_broken_files_and_writes_the_good_ones(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(src / "good.jpg")
    (src / "empty.png").write_bytes(b"")
    (src / "text.jpg").write_text("not an image")
    out = tmp_path / "out"
    code = main(["predict", "--model", "demo", str(src), "--output", str(out), "--format", "index",
                 "--format", "color"])
    err = capsys.readouterr().err
    assert code == 1
    assert "empty.png" in err and "text.jpg" in err
    assert Image.open(out / "good.png").size == (60, 40)
    assert (out / "color" / "good.png").is_file()
    assert not (out / "empty.png").exists() and not (out / "text.png").exists()


def test_usage_errors_are_one_line_with_status_2(tmp_path, capsys):
    code = main(["evaluate", "--dataset", str(tmp_path / "missing"), "--model", "scratch"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "Traceback" not in err[0]


def test_offline_hub_dataset_gives_one_line_and_status_2(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1",
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "segstudio", "evaluate", "--dataset", "scene_parse_150", "--model", "scratch"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("segstudio: error:")
    assert "Traceback" not in proc.stderr
    assert "demo" in lines[-1]


@needs_demo_model
def test_cross_check_says_clearly_when_evaluate_cannot_load(demo_folder, capsys):
    code = main(["evaluate", "--dataset", str(demo_folder), "--model", "demo", "--limit", "2", "--cross-check"])
    err = capsys.readouterr().err
    assert code == 0
    assert "cross-check:" in err
    assert "could not be loaded" in err or "agree" in err


def test_only_the_command_entry_point_freezes_the_gc_on_its_way_out() -> None:
    script = (
        "import gc, sys\n"
        "from segstudio.cli import entry_point, main\n"
        "sys.argv = ['segstudio', '--version']\n"
        "for run in (main, entry_point):\n"
        "    try:\n"
        "        run()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    print(run.__name__, gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = [line for line in done.stdout.splitlines() if line.endswith(("True", "False"))]
    assert lines == ["main False", "entry_point True"]


def test_cli_train_prints_only_its_own_progress_and_leaves_checkpoints_predict_loads_lightly(tmp_path, capsys):
    from segstudio.core.inference.fast.segformer_light import LightSegformer
    from segstudio.core.inference.loading import load_for_inference

    code = main(["train", "--dataset", "demo", "--model", "scratch", "--output", str(tmp_path / "run"), "--max-steps",
                 "2", "--batch-size", "2", "--image-size", "64", "--save-steps", "1", "--eval-limit", "2",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0
    assert "shards" not in err  # transformers' own bar, drawn on every checkpoint save, broke into ours
    folders = sorted((tmp_path / "run").glob("checkpoint-*")) + [tmp_path / "run" / "final"]
    assert len(folders) == 3
    for folder in folders:  # what Trainer saves is what predict loads without transformers
        assert isinstance(load_for_inference(str(folder), "cpu").model, LightSegformer)


def test_every_error_class_of_the_core_is_one_the_cli_reports_in_one_line() -> None:
    import importlib
    import inspect
    import pkgutil

    import segstudio.core
    from segstudio.cli.commands import UsageError, user_errors

    control_flow = {"EvaluationCancelled", "TrainingCancelled"}  # cancellation, not an error of the person's
    found = []
    for info in pkgutil.walk_packages(segstudio.core.__path__, "segstudio.core."):
        module = importlib.import_module(info.name)
        for name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Exception) and value.__module__ == info.name and name not in control_flow:
                found.append(value)
    assert len(found) >= 10
    caught = user_errors()
    assert [error for error in found if not issubclass(error, caught)] == []
    assert issubclass(UsageError, caught)



def _run_cli_in_fresh_process(argv: list[str]) -> tuple[str, str]:
    """('status [heavy libraries imported]', stderr) of ``segstudio <argv>`` in a new interpreter."""
    code = (
        f"import sys; from segstudio.cli import main; status = main({argv!r}); "
        "print(status, sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return result.stdout.split("\n")[-2], result.stderr


@pytest.mark.parametrize("command", ["predict", "evaluate", "train"])
def test_a_mistyped_model_folder_is_reported_before_torch_loads(tmp_path, command) -> None:
    nope, out = str(tmp_path / "nope"), str(tmp_path / "out")
    argv = {
        "predict": ["predict", "--model", nope, str(tmp_path), "--output", out],
        "evaluate": ["evaluate", "--dataset", "demo", "--model", nope],
        "train": ["train", "--dataset", "demo", "--model", nope, "--output", out],
    }[command]
    status, stderr = _run_cli_in_fresh_process(argv)
    assert status == "2 []", status + stderr
    assert "model folder not found" in stderr and "Traceback" not in stderr


def test_a_missing_input_is_reported_before_the_model_loads(tmp_path) -> None:
    status, stderr = _run_cli_in_fresh_process(
        ["predict", "--model", "demo", str(tmp_path / "missing.png"), "--output", str(tmp_path / "out")]
    )
    assert status == "2 []", status + stderr
    assert "no such file or folder" in stderr and "missing.png" in stderr and "Traceback" not in stderr

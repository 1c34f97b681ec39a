"""Model folders built to exhaust memory, recurse, hang or predict with a random head are refused by the CLI: one
line, exit status 2, in bounded time and memory."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SegformerConfig, SegformerForSemanticSegmentation

from segstudio.core.model.checkpoint_files import MAX_IMAGE_SIZE, MAX_NUM_LABELS

MEMORY_LIMIT = 6 * 2**30  # address space; the runner maps ~1.9 GB after importing torch, transformers, datasets
CASE_TIMEOUT = 60


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def drop_labels(folder: Path, num_labels) -> None:
    raw = json.loads((folder / "config.json").read_text())
    raw.pop("id2label")
    raw.pop("label2id")
    (folder / "config.json").write_text(json.dumps(raw)[:-1] + f', "num_labels": {num_labels}}}')


def nested_config(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "segformer", "x": ' + "[" * 200_000 + "]" * 200_000 + "}")


def fifo(folder: Path, name: str) -> None:
    (folder / name).unlink()
    os.mkfifo(folder / name)


def five_names(folder: Path) -> None:
    edit_json(folder / "config.json", id2label={str(i): f"class {i}" for i in range(5)},
              label2id={f"class {i}": i for i in range(5)})


SPOILS = {
    "num-labels-1e9": (lambda f: drop_labels(f, "1e9"), f"1 to {MAX_NUM_LABELS}"),
    "num-labels-1000000000": (lambda f: drop_labels(f, "1000000000"), f"1 to {MAX_NUM_LABELS}"),
    "processor-size-20000": (
        lambda f: edit_json(f / "preprocessor_config.json", size={"height": 20000, "width": 20000}),
        f"1 to {MAX_IMAGE_SIZE} pixels",
    ),
    "nested-200000": (nested_config, "levels deep"),
    "config-list": (lambda f: (f / "config.json").write_text("[1, 2, 3]"), "JSON list, not an object"),
    "id2label-list": (lambda f: edit_json(f / "config.json", id2label=["wall", "floor"]), "id2label"),
    "one-channel": (lambda f: edit_json(f / "config.json", num_channels=1), "num_channels"),
    "resample-99": (lambda f: edit_json(f / "preprocessor_config.json", resample=99), "resample 99"),
    "config-fifo": (lambda f: fifo(f, "config.json"), "not a regular file"),
    "processor-fifo": (lambda f: fifo(f, "preprocessor_config.json"), "not a regular file"),
    "five-names-150-head": (five_names, "names 5 classes (id2label) but its weights hold a 150-class head"),
}


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """A small valid SegFormer with a 150-class head and the published ADE20K processor settings."""
    config = SegformerConfig(hidden_sizes=[8, 16, 24, 32], decoder_hidden_size=16, depths=[1, 1, 1, 1],
                             num_attention_heads=[1, 1, 2, 2], id2label={i: f"class {i}" for i in range(150)})
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "valid"
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "do_resize": True, "feature_extractor_type": "SegformerFeatureExtractor",
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "reduce_labels": True,
        "resample": 2, "size": 64,
    }))
    return folder


@pytest.fixture(scope="module")
def ade_folder(tmp_path_factory) -> Path:
    """An ADEChallengeData2016 folder with one validation image and its annotation (values 0-150)."""
    root = tmp_path_factory.mktemp("ade") / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    for kind, suffix, pixels in (("images", ".jpg", rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)),
                                 ("annotations", ".png", rng.integers(0, 151, (40, 60), dtype=np.uint8))):
        (root / kind / "validation").mkdir(parents=True)
        Image.fromarray(pixels).save(root / kind / "validation" / f"ADE_val_00000001{suffix}")
    return root


# Runs the CLI's main() once per case, each in a fork of one process that imported the libraries once (a fresh
# interpreter per case took 10-20 s on a busy 2-core machine): exit status and stderr per case, a hang killed.
RUNNER = r"""
import json, os, signal, sys
import datasets, torch, transformers
from segstudio.cli.entry import main
cases, out, timeout = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
statuses = {}
for case, argv in cases.items():
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.path.join(out, case + ".stderr"), os.O_WRONLY | os.O_CREAT), 2)
        signal.alarm(timeout)
        try:
            status = main(argv)
        except BaseException:
            import traceback
            traceback.print_exc()
            status = 99
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    statuses[case] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(statuses))
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cases(cases: dict[str, list[str]], tmp_path: Path) -> dict[str, tuple[int, str]]:
    """(exit status, stderr) of the CLI for each case's arguments; status -14 is a case killed for hanging."""
    logs = tmp_path / "stderr"
    logs.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(cases), str(logs), str(CASE_TIMEOUT)], capture_output=True, text=True,
        timeout=CASE_TIMEOUT * (len(cases) + 2), env=env, preexec_fn=_limit_memory,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    statuses = json.loads(result.stdout.splitlines()[-1])
    return {case: (statuses[case], (logs / f"{case}.stderr").read_text()) for case in cases}


def spoiled_folders(model_folder: Path, tmp_path: Path) -> dict[str, Path]:
    folders = {}
    for case, (spoil, _expected) in SPOILS.items():
        folders[case] = tmp_path / "models" / case
        shutil.copytree(model_folder, folders[case])
        spoil(folders[case])
    return folders


def refusal_problems(outcomes: dict[str, tuple[int, str]]) -> list[str]:
    """What differs from 'exit 2, one line naming the problem, no traceback', per case."""
    problems = []
    for case, (_spoil, expected) in SPOILS.items():
        status, stderr = outcomes[case]
        lines = stderr.strip().splitlines()
        one_line = len(lines) == 1 and lines[0].startswith("segstudio: error: ") and expected in lines[0]
        if status != 2 or not one_line or "Traceback" in stderr:
            problems.append(f"{case}: exit {status}, stderr {stderr[-500:]!r}")
    return problems


@pytest.mark.slow
def test_predict_refuses_each_hostile_model_folder(model_folder, tmp_path) -> None:
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(image)
    folders = {"valid": model_folder, **spoiled_folders(model_folder, tmp_path)}
    outcomes = run_cases({
        case: ["predict", "--model", str(folder), "--device", "cpu", str(image),
               "--output", str(tmp_path / "out" / case)]
        for case, folder in folders.items()
    }, tmp_path)
    assert outcomes.pop("valid")[0] == 0  # the same folder unspoiled predicts under the same limits
    assert refusal_problems(outcomes) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["valid"]  # nothing for the others


@pytest.mark.slow
def test_evaluate_refuses_each_hostile_model_folder(model_folder, ade_folder, tmp_path) -> None:
    folders = spoiled_folders(model_folder, tmp_path)
    outcomes = run_cases({
        case: ["evaluate", "--dataset", str(ade_folder), "--split", "validation", "--model", str(folder),
               "--device", "cpu", "--json", str(tmp_path / "metrics" / case / "metrics.json")]
        for case, folder in folders.items()
    }, tmp_path)
    assert refusal_problems(outcomes) == []
    assert not (tmp_path / "metrics").exists()

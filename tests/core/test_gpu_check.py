"""What of the GPU check runs without a GPU: its pixel agreement and verdict, and its refusal without CUDA."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_agreement_counts_pixels_over_all_images(gpu_check) -> None:
    rng = np.random.default_rng(0)
    first = [rng.integers(0, 150, shape, dtype=np.uint8) for shape in ((40, 60), (7, 3), (128, 96))]
    second = [a.copy() for a in first]
    second[0][0, :5] += 1  # 5 of 2,400 pixels in a large image
    second[1][:, :] += 1  # every pixel of a small one
    expected = np.mean(np.concatenate([a.ravel() for a in first]) == np.concatenate([b.ravel() for b in second]))
    assert gpu_check.pixel_agreement(first, second) == pytest.approx(expected, abs=1e-12)
    assert gpu_check.pixel_agreement(first, first) == 1.0


def test_agreement_refuses_maps_that_do_not_pair_up(gpu_check) -> None:
    a = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        gpu_check.pixel_agreement([a], [a.T[:2]])
    with pytest.raises(ValueError, match="1 label maps against 2"):
        gpu_check.pixel_agreement([a], [a, a])
    with pytest.raises(ValueError, match="no pixels"):
        gpu_check.pixel_agreement([], [])


def test_the_verdict_needs_99_9_percent_of_the_pixels(gpu_check) -> None:
    maps = np.zeros((100, 100), np.uint8)
    for wrong, passes in ((10, True), (11, False)):  # 10,000 pixels: 10 wrong is 99.9% exactly
        other = maps.copy()
        other.flat[:wrong] = 1
        failures = gpu_check.agreement_failures({"float32": gpu_check.pixel_agreement([maps], [other])})
        assert (failures == []) is passes
    (line,) = gpu_check.agreement_failures({"predict": 0.99, "float32": 1.0})
    assert line.startswith("gpu_check: predict predictions agree") and "99.000%" in line
    assert gpu_check.agreement_failures({"predict": float("nan")}) != []


def _run_script(tmp_path: Path, nvidia_smi: str | None, **env: str) -> subprocess.CompletedProcess:
    """The script with a PATH holding only what it needs, and ``nvidia_smi`` as that command's body if given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("dirname"), bin_dir / "dirname")
    if nvidia_smi is not None:
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n{nvidia_smi}\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    return subprocess.run([shutil.which("bash"), str(SCRIPT)], capture_output=True, text=True, timeout=300,
                          env={"PATH": str(bin_dir), "HOME": str(tmp_path), **env})


@pytest.mark.parametrize("nvidia_smi", [None, "exit 9"], ids=["no nvidia-smi", "nvidia-smi lists no device"])
def test_the_script_refuses_at_once_without_a_gpu(tmp_path, nvidia_smi) -> None:
    done = _run_script(tmp_path, nvidia_smi)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "gpu_check: no NVIDIA GPU here (nvidia-smi is missing or lists no device): run it on a machine with CUDA"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run for real")
def test_a_torch_without_cuda_is_refused_in_one_line(tmp_path, gpu_check) -> None:
    """nvidia-smi answers, but the interpreter's torch is a CPU build: the Python part says so and exits 2."""
    if importlib.util.find_spec("segstudio.resources") is None:
        pytest.skip("SegStudio is not installed here: the script would install it into this interpreter")
    done = _run_script(tmp_path, "echo 'GPU 0: stand-in for nvidia-smi -L'", SEGSTUDIO_PYTHON=sys.executable,
                       PYTHONPATH=str(ROOT))
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and done.stderr.strip().splitlines() == [gpu_check.NO_CUDA]


@pytest.mark.slow
def test_the_rehearsal_runs_every_step_of_the_check_on_the_cpu(tmp_path) -> None:
    """The whole check with small sizes on the CPU, compared with itself: the script's code runs before a GPU is
    spent on it, and prints each figure it promises."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--rehearse-on-cpu"],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    figures = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    expected = {"device", "torch", "train_steps", "train_precision", "train_seconds_with_setup",
                "train_steps_per_second", "train_loss", "throughput_size", "throughput_precision",
                "throughput_batch_1", "throughput_batch_2", "gpu_check_seconds"}
    for side in ("cpu_checked", "cpu"):
        expected |= {f"predict_seconds_{side}", f"evaluate_seconds_{side}", f"evaluate_mean_iou_{side}"}
    expected |= {"predict_agreement_cpu_checked_vs_cpu", "float32_agreement_cpu_checked_vs_cpu"}
    assert set(figures) == expected
    assert figures["device"] == "cpu (rehearsal)" and figures["train_steps"] == "2"
    assert figures["predict_agreement_cpu_checked_vs_cpu"] == figures["float32_agreement_cpu_checked_vs_cpu"] == "1"
    assert figures["evaluate_mean_iou_cpu_checked"] == figures["evaluate_mean_iou_cpu"]
    assert 0.0 < float(figures["evaluate_mean_iou_cpu"]) <= 1.0 and float(figures["train_loss"]) > 0.0
    assert float(figures["throughput_batch_2"].split()[0]) > 0.0

"""GPU readiness check (``scripts/gpu_check.sh`` runs it): the CUDA path of train, predict and evaluate on the demo.

AMP fine-tuning of the demo model for 50 steps; ``segstudio predict`` and ``segstudio evaluate`` on the demo with
``--device cuda`` and ``--device cpu`` (the real commands, each in its own process); float32 predictions on CUDA
and on the CPU in this process; throughput and peak memory at batch 1, 8 and 32 at 512x512. Prints one figure per
line (``name: value [unit]``). Exit status: 0 when CUDA's predictions agree with the CPU's on >= 99.9% of the
pixels (both checks), 1 when one agrees less, 2 at once when CUDA is not available.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MIN_AGREEMENT = 0.999
TRAIN_STEPS = 50
THROUGHPUT_BATCHES = (1, 8, 32)
THROUGHPUT_SIZE = 512
NO_CUDA = ("gpu_check: CUDA is not available here (no NVIDIA GPU, or a CPU-only torch build; scripts/setup.sh "
           "installs the CUDA build where nvidia-smi works): run it on a machine with an NVIDIA GPU")


def pixel_agreement(first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> float:
    """The fraction of pixels, over all images, where two lists of label maps give the same class."""
    if len(first) != len(second):
        raise ValueError(f"{len(first)} label maps against {len(second)}")
    same = total = 0
    for index, (a, b) in enumerate(zip(first, second, strict=True)):
        if a.shape != b.shape:
            raise ValueError(f"label map {index}: shape {a.shape} against {b.shape}")
        same += int(np.count_nonzero(a == b))
        total += a.size
    if total == 0:
        raise ValueError("no pixels to compare")
    return same / total


def agreement_failures(agreements: dict[str, float], minimum: float = MIN_AGREEMENT) -> list[str]:
    """One line for each check whose agreement is below ``minimum`` (none: the check passes)."""
    return [f"gpu_check: {name} predictions agree with the CPU's on {100 * value:.3f}% of the pixels, "
            f"below {100 * minimum:.1f}%" for name, value in agreements.items() if not value >= minimum]


def figure(name: str, value: object, unit: str = "") -> None:
    """One line: ``name: value [unit]`` (floats to 4 significant digits)."""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}{' ' + unit if unit else ''}", flush=True)


def _mib(nbytes: int) -> float:
    return nbytes / 2**20


def check_training(dataset, work: Path) -> None:
    """AMP fine-tuning of the demo model on CUDA: steps per second, precision, last loss, peak memory."""
    import torch

    from segstudio.core.model.loading import load_model
    from segstudio.core.training.trainer import TrainSettings, train

    loaded = load_model("demo", label_map=dataset.label_map, reduce_labels=dataset.convention.reduce_labels)
    settings = TrainSettings(output_dir=work / "train", max_steps=TRAIN_STEPS, batch_size=8, device="cuda",
                             mixed_precision=True, eval_limit=8, logging_steps=10)
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = train(dataset, loaded, settings)
    seconds = time.perf_counter() - start
    summary = next((entry for entry in reversed(result.history) if "train_runtime" in entry), {})
    figure("train_steps", TRAIN_STEPS)
    figure("train_precision", "bf16" if torch.cuda.is_bf16_supported() else "fp16")
    figure("train_seconds_with_setup", seconds, "s")  # model and data set-up, evaluations, checkpoints too
    figure("train_steps_per_second", float(summary.get("train_steps_per_second", float("nan"))), "steps/s")
    figure("train_loss", float(summary.get("train_loss", float("nan"))))
    figure("train_peak_memory", _mib(torch.cuda.max_memory_allocated()), "MiB")


def _segstudio(*args: str) -> float:
    """Run a segstudio command in its own process (it must exit 0); its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "segstudio", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gpu_check: segstudio {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def _masks(folder: Path) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(path)) for path in sorted(folder.glob("*.png"))]


def check_commands(work: Path) -> float:
    """``predict`` and ``evaluate`` on the demo, CUDA then CPU; returns predict's pixel agreement."""
    images = work / "demo" / "images" / "validation"
    _segstudio("demo-data", str(work / "demo"))
    for device in ("cuda", "cpu"):
        seconds = _segstudio("predict", "--model", "demo", "--device", device, str(images),
                             "--output", str(work / f"masks-{device}"))
        figure(f"predict_seconds_{device}", seconds, "s")
    for device in ("cuda", "cpu"):
        metrics = work / f"metrics-{device}.json"
        seconds = _segstudio("evaluate", "--dataset", "demo", "--model", "demo", "--device", device,
                             "--json", str(metrics))
        figure(f"evaluate_seconds_{device}", seconds, "s")
        figure(f"evaluate_mean_iou_{device}", float(json.loads(metrics.read_text())["mean_iou"]))
    agreement = pixel_agreement(_masks(work / "masks-cuda"), _masks(work / "masks-cpu"))
    figure("predict_agreement_cuda_vs_cpu", agreement)
    return agreement


def check_float32(dataset) -> float:
    """Float32 predictions of the demo validation split on CUDA and on the CPU; their pixel agreement."""
    from segstudio.core.inference.predictor import Predictor
    from segstudio.core.model.loading import load_model

    images = [row["image"].convert("RGB") for row in dataset.splits["validation"]]
    maps = [Predictor(load_model("demo"), device=device, precision="fp32").predict(images)
            for device in ("cuda", "cpu")]
    agreement = pixel_agreement(*maps)
    figure("float32_agreement_cuda_vs_cpu", agreement)
    return agreement


def check_throughput(dataset) -> None:
    """Images per second of ``Predictor.predict`` (default precision) at 512x512, and peak memory, per batch."""
    import torch

    from segstudio.core.inference.predictor import Predictor
    from segstudio.core.model.loading import load_model

    loaded = load_model("demo")
    loaded.processor.size = {"height": THROUGHPUT_SIZE, "width": THROUGHPUT_SIZE}
    rows = dataset.splits["validation"]
    for batch in THROUGHPUT_BATCHES:
        predictor = Predictor(loaded, device="cuda", batch_size=batch)
        if batch == THROUGHPUT_BATCHES[0]:
            figure("throughput_precision", str(predictor.autocast_dtype or torch.float32).removeprefix("torch."))
        images = [rows[i % len(rows)]["image"].convert("RGB").resize((THROUGHPUT_SIZE, THROUGHPUT_SIZE))
                  for i in range(batch)]
        predictor.predict(images)  # warm-up: kernels chosen, memory pooled
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        rounds, start = 0, time.perf_counter()
        while rounds < 3 or time.perf_counter() - start < 2.0:
            predictor.predict(images)
            rounds += 1
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        figure(f"throughput_batch_{batch}", rounds * batch / seconds, "images/s")
        figure(f"peak_memory_batch_{batch}", _mib(torch.cuda.max_memory_allocated()), "MiB")


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from segstudio.core.data.sources import load_source

    started = time.perf_counter()
    figure("device", torch.cuda.get_device_name(0))
    figure("torch", torch.__version__)
    dataset = load_source("demo")
    with tempfile.TemporaryDirectory(prefix="segstudio-gpu-check-") as folder:
        work = Path(folder)
        check_training(dataset, work)
        agreements = {"predict": check_commands(work), "float32": check_float32(dataset)}
    check_throughput(dataset)
    figure("gpu_check_seconds", time.perf_counter() - started, "s")
    failures = agreement_failures(agreements)
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

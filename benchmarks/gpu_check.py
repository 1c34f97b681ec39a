"""GPU readiness check (``scripts/gpu_check.sh`` runs it): the CUDA path of train, predict and evaluate on the demo.

AMP fine-tuning of the demo model for 50 steps; ``segstudio predict`` and ``segstudio evaluate`` on the demo with
``--device cuda`` and ``--device cpu`` (the real commands, each in its own process); float32 predictions on CUDA
and on the CPU in this process; throughput and peak memory at batch 1, 8 and 32 at 512x512. Prints one figure per
line (``name: value [unit]``). Exit status: 0 when CUDA's predictions agree with the CPU's on >= 99.9% of the
pixels (both checks), 1 when one agrees less, 2 at once when CUDA is not available.

``--rehearse-on-cpu`` runs every step on the CPU with small sizes (2 training steps, batches 1 and 2 at 64x64),
comparing the CPU with itself: the script's own code is checked on a machine without a GPU before a GPU is spent.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_AGREEMENT = 0.999
TRAIN_STEPS = 50
THROUGHPUT_BATCHES = (1, 8, 32)
THROUGHPUT_SIZE = 512
NO_CUDA = ("gpu_check: CUDA is not available here (no NVIDIA GPU, or a CPU-only torch build; scripts/setup.sh "
           "installs the CUDA build where nvidia-smi works): run it on a machine with an NVIDIA GPU")


@dataclass(frozen=True)
class Plan:
    """What the check runs: on which device, how many training steps, which batches at which size."""

    device: str = "cuda"
    train_steps: int = TRAIN_STEPS
    batches: tuple[int, ...] = THROUGHPUT_BATCHES
    size: int = THROUGHPUT_SIZE
    images: int | None = None  # how many demo validation images predict / evaluate / float32 use (None: all 48)
    timed_seconds: float = 2.0  # each batch's throughput is timed over at least this long (and 3 rounds)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"


REHEARSAL = Plan(device="cpu", train_steps=2, batches=(1, 2), size=64, images=4, timed_seconds=0.0)


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


def _reset_peak_memory(plan: Plan) -> None:
    import torch

    if plan.cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_memory(plan: Plan, name: str) -> None:
    """The device's peak allocated memory since the last reset (CUDA only: the CPU has no such counter)."""
    import torch

    if plan.cuda:
        figure(name, _mib(torch.cuda.max_memory_allocated()), "MiB")


def check_training(dataset, work: Path, plan: Plan) -> None:
    """AMP fine-tuning of the demo model: steps per second, precision, last loss, peak memory."""
    import torch

    from segstudio.core.model.loading import load_model
    from segstudio.core.training.trainer import TrainSettings, train

    loaded = load_model("demo", label_map=dataset.label_map, reduce_labels=dataset.convention.reduce_labels)
    settings = TrainSettings(output_dir=work / "train", max_steps=plan.train_steps, batch_size=8,
                             device=plan.device, mixed_precision=True, eval_limit=plan.images or 8,
                             logging_steps=10)
    _reset_peak_memory(plan)
    start = time.perf_counter()
    result = train(dataset, loaded, settings)
    seconds = time.perf_counter() - start
    summary = next((entry for entry in reversed(result.history) if "train_runtime" in entry), None)
    if summary is None:
        raise SystemExit("gpu_check: training ended without Trainer's summary (train_runtime) in its history")
    precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if plan.cuda else "fp32"
    figure("train_steps", plan.train_steps)
    figure("train_precision", precision)
    figure("train_seconds_with_setup", seconds, "s")  # model and data set-up, evaluations, checkpoints too
    figure("train_steps_per_second", float(summary["train_steps_per_second"]), "steps/s")
    figure("train_loss", float(summary["train_loss"]))
    _peak_memory(plan, "train_peak_memory")


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


def check_commands(work: Path, plan: Plan) -> float:
    """``predict`` and ``evaluate`` on the demo, on the device then the CPU; returns predict's pixel agreement."""
    _segstudio("demo-data", str(work / "demo"))
    images = work / "demo" / "images" / "validation"
    if plan.images is not None:  # the first N images, in a folder of their own
        chosen = work / "chosen"
        chosen.mkdir()
        for path in sorted(images.glob("*.jpg"))[:plan.images]:
            (chosen / path.name).write_bytes(path.read_bytes())
        images = chosen
    limit = [] if plan.images is None else ["--limit", str(plan.images)]
    runs = {"checked": plan.device, "cpu": "cpu"}  # kept apart: the rehearsal compares the CPU with itself
    for name, device in runs.items():
        seconds = _segstudio("predict", "--model", "demo", "--device", device, str(images),
                             "--output", str(work / f"masks-{name}"))
        figure(f"predict_seconds_{_label(name, plan)}", seconds, "s")
    for name, device in runs.items():
        metrics = work / f"metrics-{name}.json"
        seconds = _segstudio("evaluate", "--dataset", "demo", "--model", "demo", "--device", device, *limit,
                             "--json", str(metrics))
        figure(f"evaluate_seconds_{_label(name, plan)}", seconds, "s")
        figure(f"evaluate_mean_iou_{_label(name, plan)}", float(json.loads(metrics.read_text())["mean_iou"]))
    masks = _masks(work / "masks-checked")
    if not masks:
        raise SystemExit(f"gpu_check: predict wrote no masks into {work / 'masks-checked'}")
    agreement = pixel_agreement(masks, _masks(work / "masks-cpu"))
    figure(f"predict_agreement_{_label('checked', plan)}_vs_cpu", agreement)
    return agreement


def _label(name: str, plan: Plan) -> str:
    """A figure's device name: ``cuda`` or ``cpu``; the rehearsal's checked side is ``cpu_checked``."""
    if name == "checked":
        return plan.device if plan.device != "cpu" else "cpu_checked"
    return name


def check_float32(dataset, plan: Plan) -> float:
    """Float32 predictions of the demo validation split on the device and on the CPU; their pixel agreement."""
    from segstudio.core.inference.predictor import Predictor
    from segstudio.core.model.loading import load_model

    rows = dataset.splits["validation"]
    images = [rows[i]["image"].convert("RGB") for i in range(len(rows) if plan.images is None else plan.images)]
    maps = [Predictor(load_model("demo"), device=device, precision="fp32").predict(images)
            for device in (plan.device, "cpu")]
    agreement = pixel_agreement(*maps)
    figure(f"float32_agreement_{_label('checked', plan)}_vs_cpu", agreement)
    return agreement


def check_throughput(dataset, plan: Plan) -> None:
    """Images per second of ``Predictor.predict`` (default precision) at the plan's size, and peak memory, per batch."""
    import torch

    from segstudio.core.inference.predictor import Predictor
    from segstudio.core.model.loading import load_model

    loaded = load_model("demo")
    loaded.processor.size = {"height": plan.size, "width": plan.size}
    rows = dataset.splits["validation"]
    figure("throughput_size", f"{plan.size}x{plan.size}")
    for batch in plan.batches:
        predictor = Predictor(loaded, device=plan.device, batch_size=batch)
        if batch == plan.batches[0]:
            figure("throughput_precision", str(predictor.autocast_dtype or torch.float32).removeprefix("torch."))
        images = [rows[i % len(rows)]["image"].convert("RGB").resize((plan.size, plan.size)) for i in range(batch)]
        predictor.predict(images)  # warm-up: kernels chosen, memory pooled
        _reset_peak_memory(plan)
        rounds, start = 0, time.perf_counter()
        while rounds < 3 or time.perf_counter() - start < plan.timed_seconds:
            predictor.predict(images)
            rounds += 1
        if plan.cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        figure(f"throughput_batch_{batch}", rounds * batch / seconds, "images/s")
        _peak_memory(plan, f"peak_memory_batch_{batch}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rehearse-on-cpu", action="store_true",
                        help="every step on the CPU with small sizes: checks this script without a GPU")
    plan = REHEARSAL if parser.parse_args(argv).rehearse_on_cpu else Plan()
    import torch

    if plan.cuda and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from segstudio.core.data.sources import load_source

    started = time.perf_counter()
    figure("device", torch.cuda.get_device_name(0) if plan.cuda else "cpu (rehearsal)")
    figure("torch", torch.__version__)
    dataset = load_source("demo")
    with tempfile.TemporaryDirectory(prefix="segstudio-gpu-check-") as folder:
        work = Path(folder)
        check_training(dataset, work, plan)
        agreements = {"predict": check_commands(work, plan), "float32": check_float32(dataset, plan)}
    check_throughput(dataset, plan)
    figure("gpu_check_seconds", time.perf_counter() - started, "s")
    failures = agreement_failures(agreements)
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

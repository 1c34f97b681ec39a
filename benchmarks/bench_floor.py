"""How close per-image inference is to the compute floor of this CPU.

floor = FLOPs of one 512x512 forward pass (``torch.utils.flop_counter`` on transformers' own model, so the
decode head is counted as transformers runs it) / this CPU's float32 matrix-multiply rate, measured in the
same run with the same thread count. The per-image time is SegStudio's whole inference path on 683x512
images at 512x512 (resize, normalise, encoder, decode head, upsample to 683x512, argmax), batch 8, inputs
already decoded. Reported for the demo checkpoint (10 classes) and for MiT-b0 with ADE20K's 150 classes.

    .venv/bin/python benchmarks/bench_floor.py
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from segstudio.core.allocator import keep_freed_memory
from segstudio.core.inference import Predictor
from segstudio.core.labels import LabelMap
from segstudio.core.model import load_model

SIZE = 512


def matmul_rate(n: int = 2048, seconds: float = 3.0) -> float:
    """Best float32 GFLOP/s of an n x n matrix product over repeated runs."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        torch.mm(a, b, out=out)
        best = max(best, 2 * n**3 / (time.perf_counter() - tick) / 1e9)
    return best


def model_gflop(model: torch.nn.Module) -> float:
    """FLOPs of one forward pass at SIZE x SIZE, counted by PyTorch's flop counter (GFLOP)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(pixel_values=torch.randn(1, 3, SIZE, SIZE))
    return counter.get_total_flops() / 1e9


def images(count: int = 16) -> list[Image.Image]:
    """683x512 images with structure (smooth colour fields), like photos resized for ADE20K."""
    rng = np.random.default_rng(0)
    small = [rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(count)]
    return [Image.fromarray(x).resize((683, 512), Image.BICUBIC) for x in small]


def per_image_seconds(predictor: Predictor, inputs: list[Image.Image], rounds: int = 3) -> float:
    """Best time per image over ``rounds`` passes of predict() over ``inputs``."""
    predictor.predict(inputs[: predictor.batch_size])  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        predictor.predict(inputs)
        best = min(best, (time.perf_counter() - start) / len(inputs))
    return best


def measure(name: str, loaded, inputs: list[Image.Image], rate: float) -> dict:
    loaded.model.eval()
    gflop = model_gflop(loaded.model)
    predictor = Predictor(loaded, device="cpu", batch_size=8, precision="fp32")
    seconds = per_image_seconds(predictor, inputs)
    floor = gflop / rate
    return {"model": name, "gflop_per_image": round(gflop, 2), "floor_ms": round(floor * 1e3, 1),
            "measured_ms": round(seconds * 1e3, 1), "times_floor": round(seconds / floor, 2)}


def main() -> dict:
    tuned = keep_freed_memory()  # as `segstudio` and the app do at start (SEGSTUDIO_SYSTEM_MALLOC=1: not)
    threads = torch.get_num_threads()
    inputs = images()
    rate = matmul_rate()
    demo = load_model("demo", image_size=SIZE)
    ade = load_model("scratch", label_map=LabelMap.ade20k(), image_size=SIZE)
    rows = [measure("demo checkpoint (10 classes)", demo, inputs, rate),
            measure("MiT-b0, 150 ADE20K classes", ade, inputs, rate)]
    after = matmul_rate(seconds=1.5)  # the machine's load can change during the run: report both
    result = {"threads": threads, "allocator_tuned": tuned, "matmul_gflops": round(rate, 1), "matmul_gflops_after": round(after, 1),
              "rows": rows}
    for row in rows:
        print(f"{row['model']:32s} {row['gflop_per_image']:6.2f} GFLOP  floor {row['floor_ms']:6.1f} ms  "
              f"measured {row['measured_ms']:6.1f} ms/image  = {row['times_floor']:.2f}x the floor")
    print(f"float32 matmul rate {rate:.1f} GFLOP/s ({after:.1f} at the end), {threads} threads, "
          f"freed memory kept: {tuned}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

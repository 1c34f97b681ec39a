"""How close per-image inference is to the compute floor of this CPU.

floor = FLOPs of one 512x512 forward pass (``torch.utils.flop_counter`` on transformers' own model, so the
decode head is counted as transformers runs it) / this CPU's float32 matrix-multiply rate, measured in the same
run with the same thread count just before each timed pass (``--rounds`` passes; the median round is reported).
The per-image time is SegStudio's whole inference path on 683x512 images at 512x512 (resize, normalise,
encoder, decode head, upsample to 683x512, argmax), batch 8, inputs already decoded. Reported for the demo
checkpoint (10 classes) and for MiT-b0 with ADE20K's 150 classes.

    .venv/bin/python benchmarks/bench_floor.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from segstudio.core.inference.predictor import Predictor
from segstudio.core.labels.label_map import LabelMap
from segstudio.core.model.loading import load_model
from segstudio.process_setup import keep_freed_memory

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


def measure(name: str, loaded, inputs: list[Image.Image], rounds: int = 3) -> dict:
    """Rounds of (matmul rate, one timed pass over ``inputs``): each pass is held against the rate measured just
    before it, since this machine's speed drifts within minutes; the figure is the median round."""
    loaded.model.eval()
    gflop = model_gflop(loaded.model)
    predictor = Predictor(loaded, device="cpu", batch_size=8, precision="fp32")
    predictor.predict(inputs[: predictor.batch_size])  # warm-up
    passes = []
    for _ in range(rounds):
        rate = matmul_rate(seconds=1.5)
        start = time.perf_counter()
        predictor.predict(inputs)
        seconds = (time.perf_counter() - start) / len(inputs)
        passes.append({"gflops": round(rate, 1), "measured_ms": round(seconds * 1e3, 1),
                       "floor_ms": round(gflop / rate * 1e3, 1), "times_floor": round(seconds * rate / gflop, 2)})
    middle = sorted(passes, key=lambda p: p["times_floor"])[len(passes) // 2]
    return {"model": name, "gflop_per_image": round(gflop, 2), **middle,
            "times_floor_per_round": [p["times_floor"] for p in passes]}


def main(rounds: int = 3) -> dict:
    tuned = keep_freed_memory()  # as `segstudio` and the app do at start (SEGSTUDIO_SYSTEM_MALLOC=1: not)
    threads = torch.get_num_threads()
    inputs = images()
    demo = load_model("demo", image_size=SIZE)
    ade = load_model("scratch", label_map=LabelMap.ade20k(), image_size=SIZE)
    rows = [measure("demo checkpoint (10 classes)", demo, inputs, rounds),
            measure("MiT-b0, 150 ADE20K classes", ade, inputs, rounds)]
    result = {"threads": threads, "allocator_tuned": tuned, "rows": rows}
    for row in rows:
        print(f"{row['model']:32s} {row['gflop_per_image']:6.2f} GFLOP  floor {row['floor_ms']:6.1f} ms "
              f"({row['gflops']:.0f} GFLOP/s)  measured {row['measured_ms']:6.1f} ms/image  = "
              f"{row['times_floor']:.2f}x the floor (median round; rounds {row['times_floor_per_round']})")
    print(f"float32 matmul, {threads} threads, freed memory kept: {tuned}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    main(parser.parse_args().rounds)

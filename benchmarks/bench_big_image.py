"""Peak memory of `segstudio predict --format color --format overlay` on one very large image.

The image (``--megapixels``, 81 by default: just under Pillow's decompression-bomb limit of 89.5 Mpx) is a smooth
JPEG written to a temporary folder; the prediction runs in its own process with the demo checkpoint on the CPU.
Prints the process's peak resident memory (``ru_maxrss``), the time, and the peak per megapixel.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

RUN = r'''
import resource, sys
from segstudio.cli.entry import main
code = main(["predict", "--model", "demo", sys.argv[1], "--output", sys.argv[2], "--format", "color",
             "--format", "overlay", "--device", "cpu"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
'''


def write_image(path: Path, megapixels: float) -> tuple[int, int]:
    side = int(math.sqrt(megapixels * 1e6))
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    pixels = np.empty((side, side, 3), np.uint8)
    pixels[..., 0] = ramp[:, None]
    pixels[..., 1] = ramp[None, :]
    pixels[..., 2] = (ramp[:, None] + ramp[None, :]) / 2
    Image.fromarray(pixels).save(path, quality=80)
    return side, side


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megapixels", type=float, default=81.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        image = Path(folder) / "big.jpg"
        width, height = write_image(image, args.megapixels)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", RUN, str(image), str(Path(folder) / "out")],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return done.returncode
    peak_mb = int(done.stdout.strip().splitlines()[-1]) / 1024
    figures = {"width": width, "height": height, "peak_mb": round(peak_mb), "seconds": round(seconds, 1),
               "peak_mb_per_megapixel": round(peak_mb / (width * height / 1e6), 1)}
    print(f"predict {width}x{height} colour + overlay: peak {peak_mb:.0f} MB, {seconds:.1f} s")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

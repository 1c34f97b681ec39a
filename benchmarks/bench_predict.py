"""Prediction throughput: `segstudio predict` against transformers' `pipeline("image-segmentation")`.

Both run as whole processes on the same 48 images (683x512, made from the demo validation split) with the demo
checkpoint set to process at 512x512. Prints both times, the ratio, and the pixel agreement of the index masks:
medians over ``--rounds`` alternating runs (3), the ratio of each round, the ratio of the median times, and the
ratio of the processes' CPU times (user + system), which the host's other load stretches less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

PIPELINE_SCRIPT = r'''
import sys, json
from pathlib import Path
import numpy as np
from PIL import Image
from transformers import pipeline
model, src, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
seg = pipeline("image-segmentation", model=model, device="cpu")
label2id = {v: int(k) for k, v in json.loads((Path(model) / "config.json").read_text())["id2label"].items()}
for path in sorted(src.glob("*.jpg")):
    image = Image.open(path).convert("RGB")
    ids = np.full((image.height, image.width), 255, np.uint8)
    for item in seg(image, subtask="semantic"):
        ids[np.asarray(item["mask"]) > 0] = label2id[item["label"]]
    Image.fromarray(ids).save(out / (path.stem + ".png"))
'''


def _make_inputs(folder: Path, count: int = 48) -> None:
    from segstudio.core.data.sources import load_source

    rows = load_source("demo").splits["validation"]
    for index in range(count):
        image = rows[index % len(rows)]["image"].convert("RGB").resize((683, 512), Image.BILINEAR)
        image.save(folder / f"img_{index:03d}.jpg", quality=95)


def _model_at_512(folder: Path) -> Path:
    from segstudio.core.model.location import DEMO_MODEL_DIR

    model = folder / "model"
    shutil.copytree(str(DEMO_MODEL_DIR), model)
    config = json.loads((model / "preprocessor_config.json").read_text())
    config["size"] = {"height": 512, "width": 512}
    (model / "preprocessor_config.json").write_text(json.dumps(config))
    return model


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process; the host's other load stretches CPU time less than wall."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main(rounds: int = 3) -> dict:
    """Time both processes ``rounds`` times, alternating (so both see the same machine load); report medians."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        _make_inputs(tmp / "in")
        model = _model_at_512(tmp)
        script = tmp / "pipe.py"
        script.write_text(PIPELINE_SCRIPT)
        ours, theirs = [], []
        for _ in range(rounds):
            for folder in ("ours", "pipe"):
                shutil.rmtree(tmp / folder, ignore_errors=True)
                (tmp / folder).mkdir()
            ours.append(_timed([sys.executable, "-m", "segstudio", "predict", "--model", str(model),
                                str(tmp / "in"), "--output", str(tmp / "ours")]))
            theirs.append(_timed([sys.executable, str(script), str(model), str(tmp / "in"), str(tmp / "pipe")]))
        # predict writes dataset ids (reduce_labels: class k as k+1); the pipeline script wrote model ids.
        agree = total = 0
        for path in sorted((tmp / "pipe").glob("*.png")):
            a = np.asarray(Image.open(tmp / "ours" / path.name)).astype(np.int32) - 1
            b = np.asarray(Image.open(path)).astype(np.int32)
            agree += int((a == b).sum())
            total += a.size
    ratios = [t[0] / o[0] for o, t in zip(ours, theirs, strict=True)]
    walls = [statistics.median(run[0] for run in runs) for runs in (ours, theirs)]
    cpus = [statistics.median(run[1] for run in runs) for runs in (ours, theirs)]
    result = {"segstudio_predict_s": round(walls[0], 2),
              "pipeline_s": round(walls[1], 2),
              "speedup": round(statistics.median(ratios), 2),
              "speedup_per_round": [round(r, 2) for r in ratios],
              "speedup_of_median_times": round(walls[1] / walls[0], 2),
              "cpu_s": {"segstudio_predict": round(cpus[0], 1), "pipeline": round(cpus[1], 1)},
              "speedup_cpu_time": round(cpus[1] / cpus[0], 2),
              "pixel_agreement": round(agree / total, 5), "images": 48}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    main(parser.parse_args().rounds)

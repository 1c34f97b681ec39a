"""Browsing a 2,000-image split with cached predictions: time to switch images, and resident memory.

Builds an image/mask-pairs folder of 2,000 ADE20K-sized images (683x512 JPEG + PNG mask, made from the demo's
validation split), opens it in the real MainWindow (offscreen), fills the split's result cache the way the
evaluation worker does (a packed uint8 mask, a sparse confusion and per-class areas per image; the masks are
the ground truth with ~15% of pixels changed, since what is measured is storing and showing them, not the
model), then steps through images as the Down key does and times each switch until the new image, its ground
truth and prediction are on screen (viewer content set and painted). The reference in the same run: the time
to decode the same image and mask with PIL, which any viewer has to pay.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_browse.py [--images 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from gui_harness import close_window, open_window
from PIL import Image


def rss_mb() -> float:
    """Resident memory of this process now (MB), from /proc."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_folder(root: Path, count: int) -> Path:
    """ROOT/images/validation/*.jpg + ROOT/masks/validation/*.png + labels.json, 683x512."""
    from segstudio.core.data.sources import load_source
    from segstudio.core.export.writers import write_labels_json

    demo = load_source("demo")
    rows = demo.splits["validation"]
    (root / "images" / "validation").mkdir(parents=True)
    (root / "masks" / "validation").mkdir(parents=True)
    sources = []
    for row in rows:
        image = row["image"].convert("RGB").resize((683, 512), Image.BILINEAR)
        mask = row["annotation"].resize((683, 512), Image.NEAREST)
        sources.append((image, mask))
    for index in range(count):
        image, mask = sources[index % len(sources)]
        stem = f"img_{index:05d}"
        if index < len(sources):
            image.save(root / "images" / "validation" / f"{stem}.jpg", quality=90)
            mask.save(root / "masks" / "validation" / f"{stem}.png")
        else:  # copies of the encoded files: the same bytes, written fast
            shutil.copyfile(root / "images" / "validation" / f"img_{index % len(sources):05d}.jpg",
                            root / "images" / "validation" / f"{stem}.jpg")
            shutil.copyfile(root / "masks" / "validation" / f"img_{index % len(sources):05d}.png",
                            root / "masks" / "validation" / f"{stem}.png")
    write_labels_json(root, demo.label_map, demo.convention)
    return root


def fill_results(review, rng: np.random.Generator) -> None:
    """Predictions for every row, stored the way the evaluation worker stores them."""
    from segstudio.core.metrics.confusion import ConfusionMatrix
    from segstudio.gui.controllers.results import outcome_from

    source, results = review.source, review.results()
    loaded = review.bundle.loaded
    k = loaded.label_map.num_labels
    cells = 16
    for row in range(len(source)):
        entry = source.dataset.splits[source.split][row]
        gt = loaded.convention.to_model_ids(np.asarray(entry["annotation"]))
        noise = rng.integers(0, k, size=(cells, cells), dtype=np.uint8)
        flip = rng.random((cells, cells)) < 0.15
        block = np.kron(np.where(flip, noise, 255), np.ones((gt.shape[0] // cells + 1, gt.shape[1] // cells + 1),
                                                              np.uint8))[: gt.shape[0], : gt.shape[1]]
        prediction = np.where(block != 255, block, np.minimum(gt, k - 1)).astype(np.uint8)
        confusion = ConfusionMatrix(k, loaded.convention.ignore_index).update(prediction, gt)
        results.add(outcome_from(row, prediction, confusion, None, k))
    results.complete = True
    review.refresh_results()


def browse(app, window, steps: int) -> list[float]:
    """Seconds per switch (Down key equivalent) until the new row's content is set and painted."""
    panel = window.review.panel
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        panel.step(1)
        target = panel.current_entry()
        while window.viewer.content is None or window.viewer.content.index != target:
            app.processEvents()
        window.viewer.repaint()
        times.append(time.perf_counter() - start)
    return times


def decode_reference(folder: Path, count: int) -> list[float]:
    """Seconds to decode one image and its mask with PIL (what showing an image costs at least)."""
    times = []
    for index in range(count):
        stem = f"img_{index:05d}"
        start = time.perf_counter()
        np.asarray(Image.open(folder / "images" / "validation" / f"{stem}.jpg").convert("RGB"))
        np.asarray(Image.open(folder / "masks" / "validation" / f"{stem}.png"))
        times.append(time.perf_counter() - start)
    return times


def main(images: int = 2000, steps: int = 200) -> dict:
    from segstudio.core.data.sources import load_source
    from segstudio.gui.workers.jobs import load_model_bundle

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = make_folder(tmp / "pairs", images)
        start_rss = rss_mb()
        app, window = open_window(tmp)
        dataset = load_source(str(folder))
        bundle = load_model_bundle("demo", dataset, "cpu")
        window.review.auto_evaluate = False
        window.set_dataset(dataset)
        window.review.set_model(bundle)
        before_fill = rss_mb()
        fill_results(window.review, np.random.default_rng(0))
        app.processEvents()
        filled_rss = rss_mb()
        browse(app, window, 10)  # warm-up
        switch = np.array(browse(app, window, steps)) * 1e3
        reference = np.array(decode_reference(folder, steps)) * 1e3
        end_rss = rss_mb()
        stored = sum(o.prediction.nbytes for o in window.review.results().outcomes.values())
        close_window(app, window)
    result = {
        "images": images,
        "switch_ms_p50": round(float(np.percentile(switch, 50)), 1),
        "switch_ms_p95": round(float(np.percentile(switch, 95)), 1),
        "switch_ms_max": round(float(switch.max()), 1),
        "pil_decode_ms_p50": round(float(np.percentile(reference, 50)), 1),
        "pil_decode_ms_p95": round(float(np.percentile(reference, 95)), 1),
        "rss_mb_window_and_model": round(before_fill, 0),
        "rss_mb_with_predictions": round(filled_rss, 0),
        "rss_mb_after_browsing": round(end_rss, 0),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "rss_mb_at_start": round(start_rss, 0),
        "stored_prediction_mb": round(stored / 2**20, 1),
    }
    print(f"switching images: p50 {result['switch_ms_p50']} ms, p95 {result['switch_ms_p95']} ms "
          f"(PIL decode alone p50 {result['pil_decode_ms_p50']} ms)")
    print(f"resident memory: {result['rss_mb_window_and_model']:.0f} MB with window + model, "
          f"{result['rss_mb_with_predictions']:.0f} MB with {images} predictions cached "
          f"({result['stored_prediction_mb']} MB of packed masks), peak {result['peak_rss_mb']:.0f} MB")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    main(args.images, args.steps)

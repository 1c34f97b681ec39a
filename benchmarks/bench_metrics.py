"""ConfusionMatrix.update against a faithful re-implementation of evaluate's mean_iou, on realistic masks.

200 pairs of 512x512 uint8 masks: blobby regions of 10-30 classes out of 150, some ignored (255) pixels along
boundaries and in an "other" region, and predictions that differ from the labels on ~15% of the pixels, in
regions. Both methods run in the same process on the same masks (best of N repeats) and must agree exactly.
A second figure times them side by side in chunks of 20 images (ours, then the reference on the same images; each
chunk's best of 5 rounds), so that both see the same spell of this shared machine's drifting speed.
``--classes 847 --dtype int32`` spreads the same masks over a larger label set (ignore index -1, or 65535 for
uint16), as datasets with more than 255 classes store them. ``--untrained`` swaps each prediction for noise: a
random class per 4x4 cell, as an untrained model's argmax over quarter-resolution logits looks once upsampled.
``--numba`` (numba installed by hand; not a dependency) also times a compiled kernel (``numba_counts.py``) in
``ConfusionMatrix.update``'s place, both ways, and checks it agrees.

    .venv/bin/python benchmarks/bench_metrics.py [--images 200] [--size 512] [--classes 150] [--dtype uint8]
                                                [--untrained] [--chunk 20] [--numba]
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import numpy as np

from segstudio.core.metrics.confusion import ConfusionMatrix
from segstudio.core.metrics.reference import reference_mean_iou

NUM_LABELS = 150
IGNORE = 255


def _upsample(field: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of a small square field to (size, size), by gathers (no BLAS threads)."""
    low = field.shape[0]
    x = np.linspace(0, low - 1, size, dtype=np.float32)
    left = np.floor(x).astype(np.intp).clip(0, low - 2)
    weight = x - left
    rows = field[left] * (1 - weight)[:, None] + field[left + 1] * weight[:, None]
    return rows[:, left] * (1 - weight) + rows[:, left + 1] * weight


def blob_partition(rng: np.random.Generator, regions: int, size: int, low: int = 12) -> np.ndarray:
    """A (size, size) map of region indices 0..regions-1 with smooth, blobby boundaries (argmax of smooth noise)."""
    fields = rng.standard_normal((regions, low, low)).astype(np.float32)
    fields += rng.uniform(-0.5, 0.5, size=(regions, 1, 1)).astype(np.float32)
    best = _upsample(fields[0], size)
    index = np.zeros((size, size), np.uint8)
    for region in range(1, regions):
        candidate = _upsample(fields[region], size)
        index[candidate > best] = region
        np.maximum(best, candidate, out=best)
    return index


def ignore_for(num_labels: int, dtype: np.dtype) -> int:
    """255 while classes fit below it; else the largest uint16, or -1 for signed masks."""
    if num_labels <= IGNORE:
        return IGNORE
    return int(np.iinfo(dtype).max) if np.dtype(dtype).kind == "u" else -1


def make_pair(rng: np.random.Generator, size: int = 512, error_share: float = 0.15):
    """(prediction, label) as uint8 model ids; the prediction is wrong on ~error_share of the pixels."""
    regions = int(rng.integers(10, 31))
    part = blob_partition(rng, regions, size)
    classes = rng.choice(NUM_LABELS, size=regions, replace=False).astype(np.uint8)
    label = classes[part]
    pred = label.copy()
    edge = np.zeros(label.shape, bool)
    edge[:, 1:] |= label[:, 1:] != label[:, :-1]
    edge[1:, :] |= label[1:, :] != label[:-1, :]
    label[edge] = IGNORE
    label[part == rng.integers(regions)] = IGNORE
    cells = 24
    # Error regions at half resolution (cheaper to draw); labels keep full-resolution, staircase boundaries.
    errors = np.repeat(np.repeat(blob_partition(rng, cells, (size + 1) // 2, low=10), 2, axis=0), 2, axis=1)
    errors = errors[:size, :size]
    area = np.bincount(errors.ravel(), minlength=cells)
    order = rng.permutation(cells)
    chosen = order[: int(np.searchsorted(np.cumsum(area[order]), error_share * size * size)) + 1]
    wrong = np.zeros(cells, bool)
    wrong[chosen] = True
    other = np.where(
        rng.random(cells) < 0.7,
        classes[rng.integers(regions, size=cells)],
        rng.integers(NUM_LABELS, size=cells),
    ).astype(np.uint8)
    return np.where(wrong[errors], other[errors], pred), label


def untrained(pair, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The pair with its prediction replaced by a random class per 4x4 cell (an untrained model's output)."""
    _pred, label = pair
    cells = rng.integers(NUM_LABELS, size=((label.shape[0] + 3) // 4, (label.shape[1] + 3) // 4), dtype=np.uint8)
    noise = np.repeat(np.repeat(cells, 4, axis=0), 4, axis=1)[: label.shape[0], : label.shape[1]]
    return np.ascontiguousarray(noise), label


def _timed(run) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this thread, result) of one call."""
    wall, cpu = time.perf_counter(), time.thread_time()
    result = run()
    return time.perf_counter() - wall, time.thread_time() - cpu, result


def widen(pair, rng: np.random.Generator, num_labels: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The pair's 150 ids mapped onto distinct ids of a ``num_labels`` set, stored as ``dtype``."""
    pred, label = pair
    ids = rng.choice(num_labels, size=NUM_LABELS, replace=False)
    ignore = ignore_for(num_labels, dtype)
    wide_label = np.where(label == IGNORE, ignore, ids[np.minimum(label, NUM_LABELS - 1)])
    return ids[pred].astype(dtype), wide_label.astype(dtype)


def _matrix(num_labels: int, ignore: int, counter=None) -> ConfusionMatrix:
    """A ConfusionMatrix; with ``counter`` (a RunCounter class), counting through that instead (--numba)."""
    matrix = ConfusionMatrix(num_labels, ignore)
    if counter is not None:
        matrix._counter = counter(num_labels, ignore)  # the one object update() counts with
    return matrix


def _streaming(preds, labels, num_labels: int = NUM_LABELS, ignore: int = IGNORE, counter=None) -> dict:
    matrix = _matrix(num_labels, ignore, counter)
    for pred, label in zip(preds, labels, strict=True):
        matrix.update(pred, label)
    return matrix.compute()


def _plain_bincount(preds, labels, num_labels: int = NUM_LABELS) -> np.ndarray:
    """The obvious fast path, for timing calibration only: one int64 bincount over label * W + pred per image
    (W = 256 for the default masks). It folds nothing (ignored and out-of-range values keep rows of their own, or
    for wide masks wrap onto other rows), so it does less than the others and its counts are not checked."""
    width = 256 if num_labels <= 255 else num_labels + 1
    table = None
    for pred, label in zip(preds, labels, strict=True):
        code = label.astype(np.intp).ravel()
        if width != 256:
            code %= width
        code *= width
        code += pred.ravel()
        counts = np.bincount(code, minlength=width * width)
        table = counts if table is None else table + counts
    return table


def _compiled_counter(pred, label, num_labels: int, ignore: int):
    """(numba_counts.NumbaRunCounter, seconds its first call took: the kernel's compilation) for --numba."""
    try:
        from numba_counts import NumbaRunCounter
    except ImportError as error:
        raise SystemExit(f"--numba needs numba installed (it is not a SegStudio dependency): {error}") from None
    wall, _cpu, _ = _timed(partial(_streaming, [pred], [label], num_labels, ignore, NumbaRunCounter))
    return NumbaRunCounter, wall


def _measure(
    preds, labels, rounds: int, fast_per_round: int, num_labels: int, ignore: int, compiled=None
) -> tuple[dict, dict]:
    """Best (wall, cpu) seconds per method, interleaved so all methods see the same load; and their results."""
    methods = {
        "reference": (1, lambda: reference_mean_iou(preds, labels, num_labels, ignore)),
        "bincount": (1, lambda: _plain_bincount(preds, labels, num_labels)),
        "confusion": (fast_per_round, lambda: _streaming(preds, labels, num_labels, ignore)),
    }
    if compiled is not None:
        methods["numba"] = (fast_per_round, lambda: _streaming(preds, labels, num_labels, ignore, compiled))
    best = {name: (float("inf"), float("inf")) for name in methods}
    results = {}
    for _ in range(rounds):
        for name, (repeats, run) in methods.items():
            for _ in range(repeats):
                wall, cpu, results[name] = _timed(run)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best, results


def _same_chunk(
    preds, labels, chunk: int, rounds: int, num_labels: int, ignore: int, compiled=None
) -> tuple[float, float, float | None]:
    """(ours, reference, compiled or None) seconds per image, each chunk timed side by side:
    ConfusionMatrix.update on ``chunk`` images not touched since the previous round (as cold as in the whole
    passes), then the reference on the same images (then the compiled kernel, if any); each chunk's best of
    ``rounds`` is kept. All see the same spell of the machine's speed, which whole passes seconds apart do not."""
    # one matrix per method for all chunks: its buffers and tables are built once
    matrices = {"ours": _matrix(num_labels, ignore)}
    if compiled is not None:
        matrices["compiled"] = _matrix(num_labels, ignore, compiled)

    def update(matrix: ConfusionMatrix, part_preds, part_labels) -> None:
        for pred, label in zip(part_preds, part_labels, strict=True):
            matrix.update(pred, label)

    spans = range(0, len(preds), chunk)
    best = {name: [float("inf")] * len(spans) for name in ("reference", *matrices)}
    for _ in range(rounds):
        for index, start in enumerate(spans):
            part_preds, part_labels = preds[start : start + chunk], labels[start : start + chunk]
            runs = {name: partial(update, matrix, part_preds, part_labels) for name, matrix in matrices.items()}
            runs["reference"] = partial(reference_mean_iou, part_preds, part_labels, num_labels, ignore)
            for name in ("ours", "reference", "compiled"):
                if name in runs:
                    wall, _cpu, _ = _timed(runs[name])
                    best[name][index] = min(best[name][index], wall)
    per_image = {name: sum(times) / len(preds) for name, times in best.items()}
    return per_image["ours"], per_image["reference"], per_image.get("compiled")


def main(images: int = 200, size: int = 512, rounds: int = 3, fast_per_round: int = 3,
         num_labels: int = NUM_LABELS, dtype: str = "uint8", noisy: bool = False, chunk: int = 20,
         numba: bool = False) -> dict:
    """Build the masks, time the methods, check ConfusionMatrix agrees exactly, print and return the figures.

    Rounds interleave the methods so that all see the same machine load; each figure is the best pass. CPU time
    (this thread) is reported beside wall time because shared machines stretch wall time unevenly.
    """
    rng = np.random.default_rng(2024)
    if numba and (num_labels, dtype) != (NUM_LABELS, "uint8"):
        raise SystemExit("--numba times byte masks of 150 classes only (other masks would take the NumPy kernel)")
    if num_labels < NUM_LABELS:
        raise SystemExit(f"--classes must be at least {NUM_LABELS} (the masks are drawn from {NUM_LABELS} ids)")
    pairs = [make_pair(rng, size) for _ in range(images)]
    if noisy:
        pairs = [untrained(pair, rng) for pair in pairs]
    ignore = ignore_for(num_labels, np.dtype(dtype))
    if (num_labels, dtype) != (NUM_LABELS, "uint8"):
        pairs = [widen(pair, rng, num_labels, dtype) for pair in pairs]
    preds, labels = [p for p, _ in pairs], [lbl for _, lbl in pairs]
    valid = sum(int((lbl != ignore).sum()) for lbl in labels)
    wrong = sum(int(((p != lbl) & (lbl != ignore)).sum()) for p, lbl in pairs)
    compiled, compile_s = _compiled_counter(preds[0], labels[0], num_labels, ignore) if numba else (None, None)
    best, results = _measure(preds, labels, rounds, fast_per_round, num_labels, ignore, compiled)
    ref, fast = results["reference"], results["confusion"]
    for name in ("confusion", "numba") if numba else ("confusion",):
        for key in ref:
            np.testing.assert_array_equal(np.asarray(results[name][key]), np.asarray(ref[key]), err_msg=f"{name}: {key}")
    ms = {name: round(wall / images * 1e3, 3) for name, (wall, _cpu) in best.items()}
    side_by_side = _same_chunk(preds, labels, chunk, 5, num_labels, ignore, compiled) if chunk > 0 else None
    figures = {
        "images": images,
        "size": size,
        "num_labels": num_labels,
        "dtype": dtype,
        "untrained": noisy,
        "classes_per_image": round(float(np.mean([np.unique(x[x != ignore]).size for x in labels])), 1),
        "wrong_pixel_share": round(wrong / valid, 3),
        **{f"{name}_ms_per_image": value for name, value in ms.items()},
        "speedup": round(best["reference"][0] / best["confusion"][0], 1),
        "speedup_cpu_time": round(best["reference"][1] / best["confusion"][1], 1),
        "plain_bincount_speedup": round(best["reference"][0] / best["bincount"][0], 1),
        **({} if side_by_side is None else {
            "same_chunk_ms_per_image": [round(t * 1e3, 3) for t in side_by_side[:2]],
            "same_chunk_speedup": round(side_by_side[1] / side_by_side[0], 1),
        }),
        **({} if compiled is None else {
            "numba_compile_s": round(compile_s, 2),
            "numba_speedup": round(best["reference"][0] / best["numba"][0], 1),
            **({} if side_by_side is None else {
                "numba_same_chunk_ms_per_image": round(side_by_side[2] * 1e3, 3),
                "numba_same_chunk_speedup": round(side_by_side[1] / side_by_side[2], 1),
            }),
        }),
        "mean_iou": fast["mean_iou"],
    }
    print(
        f"{images} {dtype} masks {size}x{size}, {num_labels} classes, {figures['classes_per_image']} in each, "
        f"{figures['wrong_pixel_share']:.1%} of labelled pixels wrong{' (untrained: noise)' if noisy else ''}\n"
        f"reference_mean_iou          {ms['reference']:8.3f} ms/image\n"
        f"plain np.bincount (no fold) {ms['bincount']:8.3f} ms/image  ({figures['plain_bincount_speedup']}x)\n"
        f"ConfusionMatrix.update      {ms['confusion']:8.3f} ms/image  ({figures['speedup']}x wall time, "
        f"{figures['speedup_cpu_time']}x CPU time)\n"
        f"ConfusionMatrix and reference agree exactly (mean IoU {fast['mean_iou']:.4f})"
    )
    if side_by_side is not None:
        print(f"side by side in chunks of {chunk} images (best of 5 per chunk): ConfusionMatrix.update "
              f"{side_by_side[0] * 1e3:.3f} ms/image, reference {side_by_side[1] * 1e3:.3f} ms/image "
              f"({figures['same_chunk_speedup']}x)")
    if compiled is not None:
        print(f"numba kernel (compiled in {compile_s:.2f} s) {ms['numba']:8.3f} ms/image ({figures['numba_speedup']}x "
              f"wall time), agrees exactly" + ("" if side_by_side is None else
              f"; side by side {side_by_side[2] * 1e3:.3f} ms/image ({figures['numba_same_chunk_speedup']}x)"))
    print(json.dumps(figures, default=float))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=NUM_LABELS)
    parser.add_argument("--dtype", default="uint8", choices=["uint8", "uint16", "int16", "int32", "int64"])
    parser.add_argument("--untrained", action="store_true", help="noisy predictions, as from an untrained model")
    parser.add_argument("--chunk", type=int, default=20, help="images per side-by-side chunk (0: skip that figure)")
    parser.add_argument("--numba", action="store_true", help="also time numba_counts.py's kernel (numba installed)")
    args = parser.parse_args()
    main(args.images, args.size, num_labels=args.classes, dtype=args.dtype, noisy=args.untrained, chunk=args.chunk,
         numba=args.numba)

"""The one inference path (predict, evaluate and the GUI): preprocess, run SegFormer, upsample, argmax.

Semantics are those of ``post_process_semantic_segmentation`` with target sizes (logits upsampled bilinearly,
``align_corners=False``, to each image's original size, then argmax), computed in row bands so a 4000x3000
image with 150 classes never holds the full (150, 3000, 4000) float tensor, and only for the classes that can
win in each band (usually a handful), which makes it several times faster than interpolating every class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from segstudio.core.errors import SegStudioError
from segstudio.core.inference.fast.fused_encoder import can_run as can_run_encoder
from segstudio.core.inference.fast.fused_encoder import fused_hidden_states
from segstudio.core.inference.fast.fused_head import can_fuse, fused_logits
from segstudio.core.inference.fast.resample import (
    Weights,
    interpolation_matrix,
    linear_weights,
    source_span,
    upsampling_matrix,
)
from segstudio.core.inference.pixel_values import pixel_values, resample_code, value_table
from segstudio.core.model.loading import LoadedModel, resolve_device

K = TypeVar("K", bound=Hashable)
BAND_ELEMENTS = 1 << 22  # floats per band tensor (16 MiB): a few of them are alive at once
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# Above this share of (class, logit row) pairs that can still win, pruning costs more than it saves (150 classes,
# 683x512: 26% contenders, pruned 212 ms vs all classes 121 ms; an untrained head, 100%: 532 ms vs 121 ms).
PRUNE_MAX_SHARE = 0.1


class InferenceError(SegStudioError, RuntimeError):
    """Inference cannot run with these settings (unknown precision, out of memory)."""


def _interpolate_rows(
    logits: torch.Tensor, y0: int, y1: int, iy: Weights, ix: Weights, classes: torch.Tensor | None = None
) -> torch.Tensor:
    """Output rows y0:y1 (of ``classes`` only, if given): the few source rows they need are interpolated
    horizontally, then combined vertically."""
    iy0, iy1, wy0, wy1 = iy
    ix0, ix1, wx0, wx1 = ix
    first, last = source_span(iy, y0, y1)
    source = logits[:, first:last]
    if classes is not None:
        source = source.index_select(0, classes)
    across = source.index_select(2, ix0) * wx0
    across.addcmul_(source.index_select(2, ix1), wx1)
    band = across.index_select(1, iy0[y0:y1] - first) * wy0[y0:y1, None]
    return band.addcmul_(across.index_select(1, iy1[y0:y1] - first), wy1[y0:y1, None])


def upsampled_bands(
    logits: torch.Tensor, out_size: tuple[int, int], max_elements: int = BAND_ELEMENTS
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(y0, y1, band)`` with ``band`` = rows y0:y1 of the bilinear upsampling of (C, h, w) ``logits``.

    Equal (to float32 rounding) to ``F.interpolate(logits[None], out_size, mode="bilinear")[0][:, y0:y1]``.
    """
    channels, height, width = logits.shape
    out_h, out_w = out_size
    iy = linear_weights(height, out_h, logits.device)
    ix = linear_weights(width, out_w, logits.device)
    step = max(1, max_elements // max(1, channels * out_w))
    for y0 in range(0, out_h, step):
        y1 = min(out_h, y0 + step)
        yield y0, y1, _interpolate_rows(logits, y0, y1, iy, ix)


def _id_dtype(num_labels: int) -> torch.dtype:
    """uint8 class ids while they fit (the fast path), then uint16 (16-bit PNGs), then int32."""
    return torch.uint8 if num_labels <= 256 else torch.uint16 if num_labels <= 65536 else torch.int32


def contenders(logits: torch.Tensor, tolerance: float) -> torch.Tensor:
    """(C, h) bool: classes that can win somewhere in the cells of each logit row (a to a+1).

    A bilinear value is a convex combination of its cell's 4 corners, so a class whose best corner is below
    the best worst-corner value of that cell cannot be the argmax anywhere inside it.
    """
    below = torch.cat([logits[:, 1:], logits[:, -1:]], dim=1)
    right = torch.cat([logits[:, :, 1:], logits[:, :, -1:]], dim=2)
    diagonal = torch.cat([below[:, :, 1:], below[:, :, -1:]], dim=2)
    low = torch.minimum(torch.minimum(logits, below), torch.minimum(right, diagonal))
    high = torch.maximum(torch.maximum(logits, below), torch.maximum(right, diagonal))
    floor = low.max(dim=0).values
    return (high >= floor - tolerance).any(dim=2)


def _row_groups(index0: torch.Tensor) -> list[tuple[int, int, int]]:
    """(first, stop, source row) for each run of output rows that fall in the same logit row."""
    values = index0.tolist()
    starts = [0] + [i for i in range(1, len(values)) if values[i] != values[i - 1]]
    stops = starts[1:] + [len(values)]
    return [(a, b, values[a]) for a, b in zip(starts, stops, strict=True)]


def upsample_argmax(
    logits: torch.Tensor, out_size: tuple[int, int], max_elements: int = BAND_ELEMENTS
) -> np.ndarray:
    """Class ids of (C, h, w) ``logits`` upsampled bilinearly to ``out_size``, then argmax.

    Small outputs are upsampled whole. Larger ones go row band by row band, and only the classes that can win
    in that band are interpolated (the argmax is the same: the winner is always among them, and they keep their
    order so ties break alike); when many classes can still win, all of them, as matrix products.
    """
    channels = logits.shape[0]
    out_h, out_w = out_size
    if channels * out_h * out_w <= max_elements:
        # Small enough to upsample whole: channels-last makes both the upsampling and the argmax over
        # classes run on contiguous memory (about 6x faster than NCHW on a CPU).
        # An explicit copy: ``logits[None]`` of a channels-last batch passes is_contiguous(channels_last) yet
        # has strides that make interpolate fall back to its slow NCHW kernel (measured 8x slower).
        whole = torch.empty((1, *logits.shape), dtype=logits.dtype, device=logits.device,
                            memory_format=torch.channels_last).copy_(logits)
        upsampled = F.interpolate(whole, size=out_size, mode="bilinear", align_corners=False)
        return upsampled[0].argmax(dim=0).to(_id_dtype(channels)).cpu().numpy()
    tolerance = 1e-4 * max(1.0, float(logits.abs().max()))
    possible = contenders(logits, tolerance)
    if float(possible.float().mean()) > PRUNE_MAX_SHARE:  # undecided logits (an untrained head): no pruning
        return _upsample_argmax_all_classes(logits, out_size, max_elements)
    iy = linear_weights(logits.shape[1], out_h, logits.device)
    ix = linear_weights(logits.shape[2], out_w, logits.device)
    ids = torch.empty(out_size, dtype=_id_dtype(channels), device=logits.device)
    for first, stop, row in _row_groups(iy[0].cpu()):
        classes = possible[:, row].nonzero().flatten()
        if len(classes) == 1:
            ids[first:stop] = classes[0].to(ids.dtype)
            continue
        subset = None if len(classes) == channels else classes
        step = max(1, max_elements // (len(classes) * out_w))
        for y0 in range(first, stop, step):
            y1 = min(stop, y0 + step)
            band = _interpolate_rows(logits, y0, y1, iy, ix, subset)
            ids[y0:y1] = classes[band.argmax(dim=0)].to(ids.dtype)
    return ids.cpu().numpy()


def _upsample_argmax_all_classes(logits: torch.Tensor, out_size: tuple[int, int], max_elements: int) -> np.ndarray:
    """Every class, band by band, as two matrix products on (rows, columns, classes) data: the interpolation
    matrices are mostly zeros, but a GEMM over them is still faster than gathers (~120 vs ~200 ms for 150 classes
    at 683x512), and the argmax then reads contiguous memory."""
    channels, height, width = logits.shape
    out_h, out_w = out_size
    pixels = logits.permute(1, 2, 0).contiguous()
    iy = linear_weights(height, out_h, logits.device)
    across_matrix = upsampling_matrix(width, out_w, logits.device)
    down_matrix = interpolation_matrix(iy, height)
    ids = torch.empty(out_size, dtype=_id_dtype(channels), device=logits.device)
    step = max(1, max_elements // (channels * out_w))
    for y0 in range(0, out_h, step):
        y1 = min(out_h, y0 + step)
        first, last = source_span(iy, y0, y1)
        across = torch.matmul(across_matrix, pixels[first:last])  # (rows, out_w, classes)
        band = torch.mm(down_matrix[y0:y1, first:last], across.view(last - first, -1))
        ids[y0:y1] = band.view(y1 - y0, out_w, channels).argmax(dim=2).to(ids.dtype)
    return ids.cpu().numpy()


def upsample_topk(
    logits: torch.Tensor, out_size: tuple[int, int], top_k: int, max_elements: int = BAND_ELEMENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k softmax probabilities (k, H, W) float16 and their class ids (k, H, W), band by band."""
    top_k = min(top_k, logits.shape[0])
    probs = torch.empty((top_k, *out_size), dtype=torch.float16, device=logits.device)
    ids = torch.empty((top_k, *out_size), dtype=_id_dtype(logits.shape[0]), device=logits.device)
    for y0, y1, band in upsampled_bands(logits, out_size, max_elements):
        values, indices = band.softmax(dim=0).topk(top_k, dim=0)
        probs[:, y0:y1] = values.to(torch.float16)
        ids[:, y0:y1] = indices.to(ids.dtype)
    return probs.cpu().numpy(), ids.cpu().numpy()


def _nearest_index(in_size: int, out_size: int) -> np.ndarray:
    return np.minimum(((np.arange(out_size) + 0.5) * in_size / out_size).astype(np.int64), in_size - 1)


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None for float32, else the autocast dtype: CUDA 'auto' uses bf16 where supported, else fp16."""
    if precision not in PRECISIONS:
        raise InferenceError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


class Predictor:
    """Runs a loaded model on PIL images; masks come back as model ids at each image's original size."""

    def __init__(
        self, loaded: LoadedModel, device: str = "auto", batch_size: int = 8, precision: str = "auto"
    ) -> None:
        self.loaded = loaded
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        self.autocast_dtype = _autocast_dtype(precision, self.device)
        self.model = loaded.model.to(self.device).eval()
        processor = loaded.processor
        self.size = loaded.image_size
        self.resample = resample_code(processor)
        self.values = value_table(processor)

    @property
    def num_labels(self) -> int:
        return int(self.model.config.num_labels)

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """``pixel_values`` (B, 3, H, W) float32 on the device, equal to what the image processor gives."""
        return pixel_values(images, self.size, self.resample, self.values).to(self.device)

    def logits(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Raw logits (B, C, H/4, W/4) as float32 on the device."""
        pixel_values = self.preprocess(images)
        autocast = (
            torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        try:
            with torch.inference_mode(), autocast:
                return self._forward(pixel_values).float()
        except torch.OutOfMemoryError:
            raise InferenceError(
                f"out of memory on {self.device}: lower the batch size (--batch-size) or image size (--image-size), "
                "or run on the CPU"
            ) from None

    def _forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Encoder and decode head, each through its fused version where it applies, else the model's own."""
        segformer = getattr(self.model, "segformer", None)
        head = getattr(self.model, "decode_head", None)
        if segformer is None or head is None:
            return self.model(pixel_values=pixel_values).logits
        if can_run_encoder(segformer, pixel_values):
            states = fused_hidden_states(segformer, pixel_values)
        else:
            states = segformer(pixel_values, output_hidden_states=True).hidden_states
        if (
            not can_fuse(head)
            or len(states) != len(head.linear_projections)
            or any(state.ndim != 4 for state in states)
        ):
            return head(states)
        return fused_logits(head, states)

    def predict(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """Model ids (H x W of each image; uint8 up to 256 classes, else uint16) for ``images``, in batches."""
        return [ids for _, ids in self.predict_iter(enumerate(images))]

    def predict_iter(self, items: Iterable[tuple[K, Image.Image]]) -> Iterator[tuple[K, np.ndarray]]:
        """Predict ``(key, image)`` pairs lazily, ``batch_size`` at a time, yielding ``(key, ids)`` in order."""
        for batch in self._batches(items):
            yield from self._run(batch)

    def _batches(self, items: Iterable[tuple]) -> Iterator[list[tuple]]:
        """``items`` in lists of ``batch_size`` (the last one shorter), pulled lazily."""
        batch: list[tuple] = []
        for item in items:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _run(self, batch: list[tuple[K, Image.Image]]) -> Iterator[tuple[K, np.ndarray]]:
        logits = self.logits([image for _, image in batch])
        with torch.inference_mode():
            results = [
                (key, upsample_argmax(logits[i], (image.height, image.width)))
                for i, (key, image) in enumerate(batch)
            ]
        yield from results

    def predict_probs(
        self, image: Image.Image, top_k: int = 3, max_side: int | None = 1024
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids (H, W), top_probs (k, H, W) float16, top_ids (k, H, W) like ids) for a pixel inspector.

        ``ids`` is exactly what :meth:`predict` returns. The top-k maps are computed at most ``max_side``
        pixels on the long side and enlarged (nearest), so they may disagree with ``ids`` along boundaries.
        """
        out_h, out_w = image.height, image.width
        logits = self.logits([image])[0]
        factor = 1.0 if max_side is None else min(1.0, max_side / max(out_h, out_w))
        grid = (max(1, round(out_h * factor)), max(1, round(out_w * factor)))
        with torch.inference_mode():
            ids = upsample_argmax(logits, (out_h, out_w))
            probs, top_ids = upsample_topk(logits, grid, top_k)
        if grid != (out_h, out_w):
            rows, cols = _nearest_index(grid[0], out_h), _nearest_index(grid[1], out_w)
            probs = probs[:, rows[:, None], cols[None, :]]
            top_ids = top_ids[:, rows[:, None], cols[None, :]]
        return ids, probs, top_ids

    def predict_confidence_iter(
        self, items: Iterable[tuple[K, Image.Image, np.ndarray | None]]
    ) -> Iterator[tuple[K, np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """Like :meth:`predict_iter` for ``(key, image, labels)``, yielding ``(key, ids, given, top)``.

        ``ids`` are :meth:`predict`'s; ``given`` (H, W) float32 is the softmax probability of each pixel's label
        (0 where the label is not a class id) and ``top`` that of the predicted class; both None without labels.
        """
        for batch in self._batches(items):
            yield from self._run_confidence(batch)

    def _run_confidence(self, batch: list) -> Iterator[tuple]:
        logits = self.logits([image for _, image, _ in batch])
        with torch.inference_mode():
            results = [
                (key, *upsample_confidence(logits[i], (image.height, image.width), labels))
                for i, (key, image, labels) in enumerate(batch)
            ]
        yield from results


def _band_confidence(band: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(top, given) softmax probabilities of a (C, h, w) band of logits: its maximum and its ``labels``'s.

    Reduces over classes in (C, h, w) order (over channels-last data torch's reductions ran ~10x slower); the
    band is overwritten.
    """
    band = band.contiguous()
    exps = band.sub_(band.amax(dim=0)).exp_()
    total = exps.sum(dim=0)
    if labels is None:
        return total.reciprocal_(), None
    channels = band.shape[0]
    known = (labels >= 0) & (labels < channels)
    given = exps.gather(0, torch.where(known, labels, 0)[None])[0].div_(total).mul_(known)
    return total.reciprocal_(), given


def upsample_confidence(
    logits: torch.Tensor, out_size: tuple[int, int], labels: np.ndarray | None, max_elements: int = BAND_ELEMENTS
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``upsample_argmax``'s ids, plus per pixel the probability of ``labels`` (model ids) and of the winner.

    Small outputs are upsampled once for all three; larger ones take ``upsample_argmax`` for the ids and the
    probabilities band by band, so memory stays bounded as for prediction.
    """
    channels = logits.shape[0]
    out_h, out_w = out_size
    label_tensor = None if labels is None else torch.from_numpy(np.asarray(labels).astype(np.int64, copy=False))
    if channels * out_h * out_w <= max_elements:
        whole = torch.empty((1, *logits.shape), dtype=logits.dtype, device=logits.device,
                            memory_format=torch.channels_last).copy_(logits)
        upsampled = F.interpolate(whole, size=out_size, mode="bilinear", align_corners=False)[0]
        ids = upsampled.argmax(dim=0).to(_id_dtype(channels)).cpu().numpy()
        if label_tensor is None:
            return ids, None, None
        top, given = _band_confidence(upsampled, label_tensor.to(logits.device))
        return ids, given.cpu().numpy(), top.cpu().numpy()
    ids = upsample_argmax(logits, out_size, max_elements)
    if label_tensor is None:
        return ids, None, None
    label_tensor = label_tensor.to(logits.device)
    top = torch.empty(out_size, dtype=torch.float32, device=logits.device)
    given = torch.empty(out_size, dtype=torch.float32, device=logits.device)
    for y0, y1, band in upsampled_bands(logits, out_size, max_elements):
        top[y0:y1], given[y0:y1] = _band_confidence(band, label_tensor[y0:y1])
    return ids, given.cpu().numpy(), top.cpu().numpy()

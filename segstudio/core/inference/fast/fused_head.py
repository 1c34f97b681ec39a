"""SegFormer's all-MLP decode head, re-associated for inference (same logits, a fraction of the work).

transformers' head projects each stage to ``decoder_hidden_size`` channels, upsamples all four to 1/4 of the
input, concatenates them (4 x 256 channels at 128x128 for a 512 input) and applies a 1x1 convolution and batch
norm. All of that is linear, and bilinear upsampling commutes with a per-pixel linear map (its weights sum to
1, so biases pass through too). So the projection, the fuse convolution's block for that stage and the batch
norm fold into one (C_i, hidden) matrix applied at the stage's own resolution, and the 1024-channel
concatenation and its 1x1 convolution are never built.

Bilinear upsampling is separable: one small matrix per axis. The coarse stages are widened by a batched matrix
product each; the full-resolution map is then built a block of rows at a time (1 MiB): the first stage's
projection, plus each coarse stage upsampled in height by a matrix product over only the few source rows that
block needs (an output row mixes two), then ReLU and the classifier, while the block is still in the CPU's
cache. The 256-channel map is never written out whole, and the height products skip the interpolation
matrices' zeros (one dense product over all 112 coarse rows cost a third of the head). The folded bias is added
once, to the first coarse stage before it is widened: interpolation weights sum to 1, so it reaches every pixel
unchanged. The weights are folded on every call (microseconds), so a model trained in place is seen as it is now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from segstudio.core.inference.fast.resample import (
    interpolation_matrix,
    linear_weights,
    source_span,
    upsampling_matrix,
)

# Floats in one block of the full-resolution hidden map (1 MiB): it is summed, rectified and classified while it
# is still in the CPU's cache, instead of writing and re-reading the whole 256-channel map (16 MiB at 512).
BLOCK_FLOATS = 1 << 18


def can_fuse(head: nn.Module) -> bool:
    """True for a SegFormer decode head in eval mode with the layers this module folds."""
    needed = ("linear_projections", "linear_fuse", "batch_norm", "activation", "classifier")
    return (
        all(hasattr(head, name) for name in needed)
        and not head.training
        and isinstance(head.activation, nn.ReLU)
        and isinstance(head.batch_norm, nn.BatchNorm2d)
        and head.batch_norm.track_running_stats
        and type(head.linear_fuse) is nn.Conv2d
        and type(head.classifier) is nn.Conv2d
        # plain float layers only (a quantised or otherwise swapped projection runs as the model defines it)
        and all(type(getattr(mlp, "proj", None)) is nn.Linear for mlp in head.linear_projections)
    )


def folded_weights(head: nn.Module) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per stage, the (C_i, hidden) matrix of projection, fuse block and batch norm; and the summed bias."""
    stages = len(head.linear_projections)
    hidden = head.linear_fuse.weight.shape[0]
    norm = head.batch_norm
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    bias = norm.bias - norm.running_mean * scale
    fuse = head.linear_fuse.weight[:, :, 0, 0] * scale[:, None]
    matrices = []
    for index, projection in enumerate(head.linear_projections):
        # transformers concatenates the stages in reverse order (deepest first)
        block = fuse[:, (stages - 1 - index) * hidden:(stages - index) * hidden]
        matrices.append((block @ projection.proj.weight).T.contiguous())
        bias = bias + block @ projection.proj.bias
    return matrices, bias


def fused_logits(head: nn.Module, hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
    """The head's logits (B, num_labels, H/4, W/4), channels-last float32, from the encoder's four (B, C, h, w) maps."""
    device = hidden_states[0].device
    # float32 throughout (under autocast too): the head is a small share of the time, and out= needs one dtype
    with torch.autocast(device_type=device.type, enabled=False):
        return _fused_logits(head, [state.float() for state in hidden_states])


def _pixel_rows(state: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h * w, C): a view for the channels-last maps the fused encoder returns."""
    return state.permute(0, 2, 3, 1).reshape(state.shape[0], -1, state.shape[1])


def block_rows(height: int, row_floats: int, device: torch.device) -> int:
    """Output rows per block: a cache-sized block on the CPU; elsewhere all rows at once (a GPU gains nothing from
    blocking and would pay a kernel launch per block and stage)."""
    if device.type != "cpu":
        return height
    return max(1, min(height, BLOCK_FLOATS // row_floats))


class _RowBlock(NamedTuple):
    """Output rows ``start:stop`` and, per coarse stage, the source rows ``first:last`` and their weights."""

    start: int
    stop: int
    sources: list[tuple[int, int, torch.Tensor]]


def _row_blocks(heights: Sequence[int], height: int, rows: int, device: torch.device) -> list[_RowBlock]:
    """Output rows in blocks of ``rows``; each block needs only a few rows of each coarse stage (2 per output row)."""
    stages = [linear_weights(h, height, device) for h in heights]
    matrices = [interpolation_matrix(weights, h) for weights, h in zip(stages, heights, strict=True)]
    blocks = []
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        sources = []
        for weights, matrix in zip(stages, matrices, strict=True):
            first, last = source_span(weights, start, stop)
            sources.append((first, last, matrix[start:stop, first:last].contiguous()))
        blocks.append(_RowBlock(start, stop, sources))
    return blocks


def _fused_logits(head: nn.Module, hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
    matrices, bias = folded_weights(head)
    first, coarse = hidden_states[0], list(zip(hidden_states[1:], matrices[1:], strict=True))
    batch, _, height, width = first.shape
    hidden, device = bias.numel(), first.device
    rows = block_rows(height, width * hidden, device)
    blocks = _row_blocks([state.shape[2] for state, _ in coarse], height, rows, device)
    across = [upsampling_matrix(state.shape[3], width, device) for state, _ in coarse]
    classifier = head.classifier.weight[:, :, 0, 0].T
    widened = [torch.empty(state.shape[2], width, hidden, device=device) for state, _ in coarse]
    total = torch.empty(rows * width, hidden, device=device)
    logits = torch.empty(batch, height, width, classifier.shape[1], device=device)
    first_rows, coarse_rows = _pixel_rows(first), [_pixel_rows(state) for state, _ in coarse]
    for image in range(batch):
        for stage, ((state, matrix), stage_rows, widen) in enumerate(zip(coarse, coarse_rows, across, strict=True)):
            projected = torch.mm(stage_rows[image], matrix)
            if stage == 0:
                projected += bias  # passes through the interpolation unchanged (see the module's docstring)
            torch.matmul(widen, projected.view(state.shape[2], state.shape[3], hidden), out=widened[stage])
        for block in blocks:
            pixels = (block.stop - block.start) * width  # in this block
            summed = total[:pixels]
            rows_in = first_rows[image, block.start * width:block.stop * width]
            if coarse:
                torch.mm(rows_in, matrices[0], out=summed)
            else:
                torch.addmm(bias, rows_in, matrices[0], out=summed)
            flat = summed.view(block.stop - block.start, width * hidden)
            for (first_row, last_row, weights), stage_map in zip(block.sources, widened, strict=True):
                flat.addmm_(weights, stage_map[first_row:last_row].view(last_row - first_row, width * hidden))
            summed.relu_()
            out = logits[image, block.start:block.stop].view(pixels, -1)
            torch.addmm(head.classifier.bias, summed, classifier, out=out)
    return logits.permute(0, 3, 1, 2)

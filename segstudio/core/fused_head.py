"""SegFormer's all-MLP decode head, re-associated for inference (same logits, a fraction of the work).

transformers' head projects each stage to ``decoder_hidden_size`` channels, upsamples all four to 1/4 of the
input, concatenates them (4 x 256 channels at 128x128 for a 512 input) and applies a 1x1 convolution and batch
norm. All of that is linear, and bilinear upsampling commutes with a per-pixel linear map (its weights sum to
1, so biases pass through too). So the projection, the fuse convolution's block for that stage and the batch
norm fold into one (C_i, hidden) matrix applied at the stage's own resolution, and the 1024-channel
concatenation and its 1x1 convolution are never built.

Bilinear upsampling is separable: one small matrix per axis. The coarse stages are widened by a batched matrix
product each, stacked row-wise, and all three are then upsampled in height *and summed* by one matrix product
(K = the sum of their heights) that accumulates onto the full-resolution stage. That writes the 256-channel
map once instead of three interpolations and three additions over it (about half the head's time on a 2-core
CPU, where these passes are memory-bound). Images go one at a time so the map stays in the CPU's cache.
The weights are folded on every call (microseconds), so a model trained in place is always seen as it is now.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from segstudio.core.resample import upsampling_matrix


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
    """(B, C, h, w) -> (B, h * w, C)."""
    return state.permute(0, 2, 3, 1).reshape(state.shape[0], -1, state.shape[1])


def _fused_logits(head: nn.Module, hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
    matrices, bias = folded_weights(head)
    first, coarse = hidden_states[0], list(zip(hidden_states[1:], matrices[1:], strict=True))
    batch, _, height, width = first.shape
    hidden, device = bias.numel(), first.device
    heights = [state.shape[2] for state, _ in coarse]
    down = torch.cat([upsampling_matrix(h, height, device) for h in heights], dim=1)  # (H, sum of heights)
    across = [upsampling_matrix(state.shape[3], width, device) for state, _ in coarse]
    classifier = head.classifier.weight[:, :, 0, 0].T
    stacked = torch.empty(sum(heights), width, hidden, device=device)
    total = torch.empty(height * width, hidden, device=device)
    logits = torch.empty(batch, height, width, classifier.shape[1], device=device)
    first_rows, coarse_rows = _pixel_rows(first), [_pixel_rows(state) for state, _ in coarse]
    for image in range(batch):
        row = 0
        for (state, matrix), rows, widen in zip(coarse, coarse_rows, across, strict=True):
            stage_h, stage_w = state.shape[2], state.shape[3]
            projected = torch.mm(rows[image], matrix).view(stage_h, stage_w, hidden)
            torch.matmul(widen, projected, out=stacked[row:row + stage_h])  # (h, W, hidden)
            row += stage_h
        torch.addmm(bias, first_rows[image], matrices[0], out=total)
        total.view(height, width * hidden).addmm_(down, stacked.view(row, width * hidden))
        total.relu_()
        torch.addmm(head.classifier.bias, total, classifier, out=logits[image].view(height * width, -1))
    return logits.permute(0, 3, 1, 2)

"""SegFormer's all-MLP decode head, re-associated for inference (same logits, a third of the work).

transformers' head projects each stage to ``decoder_hidden_size`` channels, upsamples all four to 1/4 of the
input, concatenates them (4 x 256 channels at 128x128 for a 512 input) and applies a 1x1 convolution and batch
norm. All of that is linear, and bilinear upsampling commutes with a per-pixel linear map (its weights sum to
1, so biases pass through too). So the projection, the fuse convolution's block for that stage and the batch
norm fold into one (C_i, hidden) matrix applied at the stage's own resolution; only the folded sums are
upsampled, and the 1024-channel concatenation and its 1x1 convolution are never built. Everything runs
channels-last, where PyTorch's CPU upsampling and the channel reductions are several times faster.
The weights are folded on every call (microseconds), so a model trained in place is always seen as it is now.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


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
    """The head's logits (B, num_labels, H/4, W/4), channels-last, from the encoder's four (B, C, h, w) maps."""
    matrices, bias = folded_weights(head)
    size = hidden_states[0].shape[-2:]
    total = None
    for state, matrix in zip(hidden_states, matrices, strict=True):
        batch, channels, height, width = state.shape
        pixels = state.permute(0, 2, 3, 1).reshape(-1, channels)
        stage = torch.mm(pixels, matrix).view(batch, height, width, -1).permute(0, 3, 1, 2)
        if stage.shape[-2:] != size:
            stage = F.interpolate(stage, size=size, mode="bilinear", align_corners=False)
        total = stage if total is None else total.add_(stage)
    features = total.permute(0, 2, 3, 1)  # (B, H, W, hidden), contiguous
    features.add_(bias).relu_()
    classifier = head.classifier.weight[:, :, 0, 0]
    logits = torch.addmm(head.classifier.bias, features.reshape(-1, features.shape[-1]), classifier.T)
    return logits.view(*features.shape[:3], -1).permute(0, 3, 1, 2)

"""1-D linear interpolation (``align_corners=False``, as torch computes it) as indices and weights or as a matrix."""

from __future__ import annotations

import torch

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def linear_weights(in_size: int, out_size: int, device: torch.device | str = "cpu") -> Weights:
    """Source indices and weights of 1-D linear interpolation, ``align_corners=False`` (as torch computes them)."""
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    src = ((torch.arange(out_size, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_(min=0)
    index0 = src.floor().long().clamp_(max=in_size - 1)
    weight1 = (src - index0).clamp_(0, 1)
    index1 = (index0 + 1).clamp_(max=in_size - 1)
    return index0.to(device), index1.to(device), (1 - weight1).to(device), weight1.to(device)


def source_span(weights: Weights, start: int, stop: int) -> tuple[int, int]:
    """``(first, last)``: the source indices ``first:last`` that outputs ``start:stop`` read (two each)."""
    return int(weights[0][start]), int(weights[1][stop - 1]) + 1


def interpolation_matrix(weights: Weights, in_size: int) -> torch.Tensor:
    """(out_size, in_size): the 1-D linear interpolation ``weights`` (from linear_weights) as a matrix."""
    index0, index1, weight0, weight1 = weights
    matrix = torch.zeros(len(index0), in_size, device=index0.device)
    rows = torch.arange(len(index0), device=index0.device)
    matrix.index_put_((rows, index0), weight0, accumulate=True)
    matrix.index_put_((rows, index1), weight1, accumulate=True)
    return matrix


def upsampling_matrix(in_size: int, out_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(out_size, in_size): what ``F.interpolate(mode="bilinear", align_corners=False)`` does along one axis."""
    return interpolation_matrix(linear_weights(in_size, out_size, device), in_size)

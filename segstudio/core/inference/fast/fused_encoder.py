"""SegFormer's encoder for float32 CPU inference through oneDNN's fused kernels (the same hidden states, faster).

At a 512 input the encoder's first stages hold 128x128 and 64x64 tokens of only 32-256 channels, so on a
2-core CPU most of its layers are bound by memory traffic, not arithmetic, and each eager op is a full pass:
``nn.Linear`` (aten addmm) first copies the bias into its output, the Mix-FFN's GELU reads and writes the
depthwise convolution's output again, each residual addition is one more pass, and the stage outputs are
copied to NCHW. oneDNN, which PyTorch's CPU convolutions already run on, applies the bias, the GELU and the
residual addition inside the kernel: ``torch.ops.mkldnn._linear_pointwise`` and ``_convolution_pointwise``,
the ops PyTorch's own compiler (inductor) emits for these patterns. Measured on this 2-core CPU at batch 8,
512x512: 73-76 ms per image through transformers' encoder, 62-64 ms here; outputs within 1e-5.

Hidden states come back channels-last (a free view of the tokens), which the fused decode head reads without
a copy. Anything this module does not recognise (training mode, autograd, autocast, another device or
dtype, swapped layers, an activation other than exact GELU) runs through transformers instead.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


@functools.cache
def kernels_available() -> bool:
    """True where this PyTorch build has oneDNN and its fused ops give eager PyTorch's numbers (checked once)."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        generator = torch.Generator().manual_seed(0)
        x, weight, bias = (torch.randn(shape, generator=generator) for shape in ((4, 3), (5, 3), (5,)))
        maps, kernel = torch.randn(1, 4, 5, 6, generator=generator), torch.randn(4, 1, 3, 3, generator=generator)
        with torch.inference_mode():
            fused = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
            summed = torch.ops.mkldnn._linear_pointwise.binary(x, fused, weight, bias, "add")
            activated = torch.ops.mkldnn._convolution_pointwise(
                maps, kernel.contiguous(memory_format=torch.channels_last), bias[:4], [1, 1], [1, 1], [1, 1], 4,
                "gelu", [], "none",
            )
            expected = F.linear(x, weight, bias)
            expected_map = F.gelu(F.conv2d(maps, kernel, bias[:4], padding=1, groups=4))
        return all(
            torch.allclose(got, want, atol=1e-5)
            for got, want in ((fused, expected), (summed, 2 * expected), (activated, expected_map))
        )
    except (AttributeError, RuntimeError):  # an op missing from this build, or not built for this CPU
        return False


def _plain_linear(layer: object) -> bool:
    return type(layer) is nn.Linear and layer.bias is not None


def _plain_conv(layer: object) -> bool:
    return type(layer) is nn.Conv2d and layer.bias is not None and layer.padding_mode == "zeros"


def _block_is_plain(block: nn.Module) -> bool:
    attention, mlp = getattr(block, "attention", None), getattr(block, "mlp", None)
    projections = ("q_proj", "k_proj", "v_proj", "o_proj")
    if attention is None or mlp is None:
        return False
    if not all(_plain_linear(getattr(attention, name, None)) for name in projections):
        return False
    reduction = getattr(attention, "sequence_reduction", None)
    if getattr(attention, "sequence_reduction_ratio", 1) > 1 and not (
        reduction is not None and _plain_conv(getattr(reduction, "sequence_reduction", None))
    ):
        return False
    return (
        all(hasattr(attention, name) for name in ("head_dim", "num_attention_heads", "scaling"))
        and _plain_linear(getattr(mlp, "fc1", None))
        and _plain_linear(getattr(mlp, "fc2", None))
        and _plain_conv(getattr(getattr(mlp, "dwconv", None), "dwconv", None))
        and all(type(getattr(block, name, None)) is nn.LayerNorm for name in ("layernorm_before", "layernorm_after"))
    )


def can_run(segformer: nn.Module, pixel_values: torch.Tensor) -> bool:
    """True when ``fused_hidden_states`` applies: eval mode, no autograd or autocast, float32 on the CPU."""
    config = getattr(segformer, "config", None)
    stages = getattr(segformer, "stages", None)
    return (
        pixel_values.device.type == "cpu"
        and pixel_values.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and not segformer.training
        and getattr(config, "hidden_act", None) == "gelu"
        and stages is not None
        and all(
            _plain_conv(getattr(stage.patch_embeddings, "proj", None))
            and type(getattr(stage, "layer_norm", None)) is nn.LayerNorm
            and all(_block_is_plain(block) for block in stage.blocks)
            for stage in stages
        )
        and kernels_available()
    )


def _linear(x: torch.Tensor, layer: nn.Linear, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``layer(x)``, or ``layer(x) + residual`` with the addition inside the kernel."""
    if residual is None:
        return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "none", [], "")
    return torch.ops.mkldnn._linear_pointwise.binary(x, residual, layer.weight, layer.bias, "add")


def _conv(x: torch.Tensor, layer: nn.Conv2d, activation: str = "none") -> torch.Tensor:
    """``layer(x)`` (then exact GELU when ``activation='gelu'``); channels-last weights, so channels-last output."""
    weight = layer.weight.contiguous(memory_format=torch.channels_last)
    return torch.ops.mkldnn._convolution_pointwise(
        x, weight, layer.bias, list(layer.padding), list(layer.stride), list(layer.dilation), layer.groups,
        activation, [], "none",
    )


def _layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _tokens_as_map(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W) channels-last: a view, no copy."""
    return tokens.transpose(1, 2).view(tokens.shape[0], tokens.shape[2], height, width)


def _attention(attention: nn.Module, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Efficient self-attention before its output projection: (B, N, C) -> (B, N, C)."""
    batch, length, _channels = tokens.shape
    heads, head_dim = attention.num_attention_heads, attention.head_dim
    query = _linear(tokens, attention.q_proj).view(batch, length, heads, head_dim).transpose(1, 2)
    keys_from = tokens
    if attention.sequence_reduction_ratio > 1:
        reduction = attention.sequence_reduction
        reduced = _conv(_tokens_as_map(tokens, height, width), reduction.sequence_reduction)
        keys_from = _layer_norm(reduced.flatten(2).transpose(1, 2), reduction.layer_norm)
    kv_shape = (batch, keys_from.shape[1], heads, head_dim)
    key = _linear(keys_from, attention.k_proj).view(kv_shape).transpose(1, 2)
    value = _linear(keys_from, attention.v_proj).view(kv_shape).transpose(1, 2)
    # PyTorch's flash attention for CPU: measured faster here than explicit (chunked) softmax(QK^T)V
    out = F.scaled_dot_product_attention(query, key, value, scale=attention.scaling)
    return out.transpose(1, 2).reshape(batch, length, heads * head_dim)


def _block(block: nn.Module, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """One transformer block (dropout and drop-path are identities in eval mode)."""
    attended = _attention(block.attention, _layer_norm(tokens, block.layernorm_before), height, width)
    tokens = _linear(attended, block.attention.o_proj, residual=tokens)
    mlp = block.mlp
    hidden = _linear(_layer_norm(tokens, block.layernorm_after), mlp.fc1)
    hidden = _conv(_tokens_as_map(hidden, height, width), mlp.dwconv.dwconv, "gelu")
    return _linear(hidden.flatten(2).transpose(1, 2), mlp.fc2, residual=tokens)


def fused_hidden_states(segformer: nn.Module, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """The encoder's per-stage outputs, as ``segformer(pixel_values, output_hidden_states=True)`` gives them."""
    states: list[torch.Tensor] = []
    inputs = pixel_values
    for stage in segformer.stages:
        embedded = _conv(inputs, stage.patch_embeddings.proj)
        height, width = embedded.shape[2:]
        tokens = _layer_norm(embedded.flatten(2).transpose(1, 2), stage.patch_embeddings.layer_norm)
        for block in stage.blocks:
            tokens = _block(block, tokens, height, width)
        tokens = _layer_norm(tokens, stage.layer_norm)
        # every stage but a last one built with reshape_last_stage=False hands on a (B, C, H, W) map
        inputs = _tokens_as_map(tokens, height, width) if getattr(stage, "reshape", True) else tokens
        states.append(inputs)
    return states

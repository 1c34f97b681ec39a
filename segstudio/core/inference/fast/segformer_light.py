"""SegFormer for inference without importing transformers: a start 2.5-3 s shorter for ``segstudio predict``.

Importing transformers takes 2.5-3 s on a 2-core CPU, the model work of ~30 images at 512x512: its modeling
utilities import ``torch._dynamo`` (through the hub-kernels and flash-attention integrations) and
``torch.distributed.tensor`` (through its weight-conversion machinery), whatever the model. Inference needs none
of it. The modules here mirror transformers 5's ``SegformerForSemanticSegmentation``: the
same attribute names (so ``fused_encoder`` and ``fused_head`` run them unchanged), the same state-dict names
after the renaming transformers applies to saved checkpoints, and the same arithmetic in ``forward`` (checked
against transformers in ``tests/core/test_segformer_light.py``).

Loading is all or nothing: a config key, processor setting, weight name or shape this module does not know
gives ``None``, and the caller loads through transformers, which also writes the detailed load report. Settings
no model can have (``checkpoint_files``' bounds) raise the same ModelLoadError either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.core.model.checkpoint_files import (
    PROCESSOR_DEFAULTS,
    check_config,
    processor_dict,
    read_json_object,
)

ARCHITECTURE = "SegformerForSemanticSegmentation"
PROCESSOR_TYPES = ("SegformerImageProcessor", "SegformerImageProcessorPil", "SegformerImageProcessorFast")
# transformers 5's conversion_mapping.py for SegformerModel and SegformerForSemanticSegmentation: saved
# checkpoints keep the original names, the modules use these.
_RENAMES = (
    (r"encoder\.patch_embeddings\.(\d+)\.", r"stages.\1.patch_embeddings."),
    (r"encoder\.block\.(\d+)\.", r"stages.\1.blocks."),
    (r"encoder\.layer_norm\.(\d+)", r"stages.\1.layer_norm"),
    (r"attention\.self\.query", "attention.q_proj"),
    (r"attention\.self\.key", "attention.k_proj"),
    (r"attention\.self\.value", "attention.v_proj"),
    (r"attention\.self\.sr", "attention.sequence_reduction.sequence_reduction"),
    (r"attention\.self\.layer_norm", "attention.sequence_reduction.layer_norm"),
    (r"attention\.output\.dense", "attention.o_proj"),
    (r"mlp\.dense1", "mlp.fc1"),
    (r"mlp\.dense2", "mlp.fc2"),
    (r"layer_norm_1", "layernorm_before"),
    (r"layer_norm_2", "layernorm_after"),
    (r"decode_head\.linear_c\.", "decode_head.linear_projections."),
)
_LIST_KEYS = ("depths", "hidden_sizes", "sr_ratios", "patch_sizes", "strides", "num_attention_heads", "mlp_ratios")


@dataclass
class LightConfig:
    """The architecture fields of a SegFormer config.json (those a forward pass reads)."""

    num_channels: int
    depths: list[int]
    hidden_sizes: list[int]
    sr_ratios: list[int]
    patch_sizes: list[int]
    strides: list[int]
    num_attention_heads: list[int]
    mlp_ratios: list[float]
    decoder_hidden_size: int
    id2label: dict[int, str]
    hidden_act: str = "gelu"
    reshape_last_stage: bool = True

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def num_encoder_blocks(self) -> int:
        return len(self.depths)

    @classmethod
    def from_raw(cls, raw: dict) -> LightConfig | None:
        """The config, or None when it is not a plain SegFormer this module mirrors."""
        if raw.get("model_type") != "segformer" or ARCHITECTURE not in (raw.get("architectures") or []):
            return None
        if raw.get("hidden_act") != "gelu" or raw.get("reshape_last_stage", True) is not True:
            return None
        try:
            lists = {key: [int(v) if key != "mlp_ratios" else float(v) for v in raw[key]] for key in _LIST_KEYS}
            id2label = {int(k): str(v) for k, v in raw["id2label"].items()}
            config = cls(
                num_channels=int(raw["num_channels"]), decoder_hidden_size=int(raw["decoder_hidden_size"]),
                id2label=id2label, **lists,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        stages = int(raw.get("num_encoder_blocks", len(config.depths)))
        if stages < 1 or any(len(values) != stages for values in lists.values()) or not id2label:
            return None
        if sorted(id2label) != list(range(len(id2label))):
            return None
        return config


@dataclass
class ProcessorSettings:
    """What inference reads from a SegFormer image processor (preprocessor_config.json), nothing else."""

    size: dict[str, int]
    resample: int
    do_rescale: bool
    rescale_factor: float
    do_normalize: bool
    image_mean: list[float]
    image_std: list[float]
    do_reduce_labels: bool = False

    @classmethod
    def from_raw(cls, raw: dict) -> ProcessorSettings | None:
        """The settings from a ``processor_dict`` (legacy keys already read), transformers' defaults for keys
        left out, or None when a value means something inference here would not do."""
        if raw.get("image_processor_type") not in PROCESSOR_TYPES:
            return None
        values = {**PROCESSOR_DEFAULTS, **raw}
        if values["do_resize"] is not True:
            return None
        try:
            size = {"height": int(values["size"]["height"]), "width": int(values["size"]["width"])}
            settings = cls(
                size=size, resample=int(values["resample"]), do_rescale=bool(values["do_rescale"]),
                rescale_factor=float(values["rescale_factor"]), do_normalize=bool(values["do_normalize"]),
                image_mean=[float(v) for v in values["image_mean"]],
                image_std=[float(v) for v in values["image_std"]],
                do_reduce_labels=bool(values["do_reduce_labels"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if len(settings.image_mean) != 3 or len(settings.image_std) != 3 or min(size.values()) < 1:
            return None
        return settings


class EncoderOutput(NamedTuple):
    hidden_states: tuple[torch.Tensor, ...]


class SemanticOutput(NamedTuple):
    logits: torch.Tensor


class PatchEmbeddings(nn.Module):
    def __init__(self, patch_size: int, stride: int, channels: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, hidden, kernel_size=patch_size, stride=stride, padding=patch_size // 2)
        self.layer_norm = nn.LayerNorm(hidden)


class SequenceReduction(nn.Module):
    def __init__(self, hidden: int, ratio: int) -> None:
        super().__init__()
        self.sequence_reduction = nn.Conv2d(hidden, hidden, kernel_size=ratio, stride=ratio)
        self.layer_norm = nn.LayerNorm(hidden)


class Attention(nn.Module):
    """Efficient self-attention: keys and values from a strided-convolution reduction of the tokens."""

    def __init__(self, hidden: int, heads: int, ratio: int) -> None:
        super().__init__()
        self.num_attention_heads = heads
        self.head_dim = hidden // heads
        self.scaling = self.head_dim**-0.5
        self.sequence_reduction_ratio = ratio
        self.q_proj = nn.Linear(hidden, heads * self.head_dim)
        self.k_proj = nn.Linear(hidden, heads * self.head_dim)
        self.v_proj = nn.Linear(hidden, heads * self.head_dim)
        self.o_proj = nn.Linear(heads * self.head_dim, hidden)
        if ratio > 1:
            self.sequence_reduction = SequenceReduction(hidden, ratio)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, length, channels = tokens.shape
        split = (batch, -1, self.num_attention_heads, self.head_dim)
        query = self.q_proj(tokens).view(split).transpose(1, 2)
        keys_from = tokens
        if self.sequence_reduction_ratio > 1:
            reduction = self.sequence_reduction
            grid = tokens.transpose(1, 2).reshape(batch, channels, height, width)
            reduced = reduction.sequence_reduction(grid).reshape(batch, channels, -1).transpose(1, 2)
            keys_from = reduction.layer_norm(reduced)
        key = self.k_proj(keys_from).view(split).transpose(1, 2)
        value = self.v_proj(keys_from).view(split).transpose(1, 2)
        out = F.scaled_dot_product_attention(query, key, value, scale=self.scaling)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))


class DepthWiseConv(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)


class MixMLP(nn.Module):
    """fc1, depthwise 3x3 convolution, exact GELU, fc2."""

    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, inner)
        self.dwconv = DepthWiseConv(inner)
        self.fc2 = nn.Linear(inner, hidden)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        hidden = self.fc1(tokens)
        batch, _length, channels = hidden.shape
        grid = hidden.transpose(1, 2).view(batch, channels, height, width)
        hidden = self.dwconv.dwconv(grid).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(hidden))


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, ratio: int, mlp_ratio: float) -> None:
        super().__init__()
        self.layernorm_before = nn.LayerNorm(hidden)
        self.attention = Attention(hidden, heads, ratio)
        self.layernorm_after = nn.LayerNorm(hidden)
        self.mlp = MixMLP(hidden, int(hidden * mlp_ratio))

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        tokens = self.attention(self.layernorm_before(tokens), height, width) + tokens
        return self.mlp(self.layernorm_after(tokens), height, width) + tokens


class Stage(nn.Module):
    def __init__(self, config: LightConfig, index: int) -> None:
        super().__init__()
        hidden = config.hidden_sizes[index]
        channels = config.num_channels if index == 0 else config.hidden_sizes[index - 1]
        self.reshape = True  # reshape_last_stage=False configs load through transformers
        self.patch_embeddings = PatchEmbeddings(config.patch_sizes[index], config.strides[index], channels, hidden)
        self.blocks = nn.ModuleList(
            Layer(hidden, config.num_attention_heads[index], config.sr_ratios[index], config.mlp_ratios[index])
            for _ in range(config.depths[index])
        )
        self.layer_norm = nn.LayerNorm(hidden)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        embedded = self.patch_embeddings.proj(inputs)
        batch, _channels, height, width = embedded.shape
        tokens = self.patch_embeddings.layer_norm(embedded.flatten(2).transpose(1, 2))
        for block in self.blocks:
            tokens = block(tokens, height, width)
        tokens = self.layer_norm(tokens)
        return tokens.reshape(batch, height, width, -1).permute(0, 3, 1, 2).contiguous()


class Encoder(nn.Module):
    """transformers' ``SegformerModel``: the four stages; ``forward`` returns every stage's output."""

    def __init__(self, config: LightConfig) -> None:
        super().__init__()
        self.config = config
        self.stages = nn.ModuleList(Stage(config, index) for index in range(config.num_encoder_blocks))

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = True) -> EncoderOutput:
        states, hidden = [], pixel_values
        for stage in self.stages:
            hidden = stage(hidden)
            states.append(hidden)
        return EncoderOutput(tuple(states))


class Projection(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(channels, hidden)


class DecodeHead(nn.Module):
    """The all-MLP head: project each stage, upsample to the first, concatenate (deepest first), fuse, classify."""

    def __init__(self, config: LightConfig) -> None:
        super().__init__()
        hidden = config.decoder_hidden_size
        self.linear_projections = nn.ModuleList(Projection(size, hidden) for size in config.hidden_sizes)
        self.linear_fuse = nn.Conv2d(hidden * config.num_encoder_blocks, hidden, kernel_size=1, bias=False)
        self.batch_norm = nn.BatchNorm2d(hidden)
        self.activation = nn.ReLU()
        self.classifier = nn.Conv2d(hidden, config.num_labels, kernel_size=1)

    def forward(self, states: tuple[torch.Tensor, ...]) -> torch.Tensor:
        size = states[0].shape[2:]
        upsampled = []
        for state, projection in zip(states, self.linear_projections, strict=True):
            batch, _channels, height, width = state.shape
            projected = projection.proj(state.flatten(2).transpose(1, 2)).transpose(1, 2)
            grid = projected.reshape(batch, -1, height, width)
            upsampled.append(F.interpolate(grid, size=size, mode="bilinear", align_corners=False))
        hidden = self.activation(self.batch_norm(self.linear_fuse(torch.cat(upsampled[::-1], dim=1))))
        return self.classifier(hidden)


class LightSegformer(nn.Module):
    """``SegformerForSemanticSegmentation`` for inference: ``model(pixel_values=...).logits``."""

    def __init__(self, config: LightConfig) -> None:
        super().__init__()
        self.config = config
        self.segformer = Encoder(config)
        self.decode_head = DecodeHead(config)

    def forward(self, pixel_values: torch.Tensor) -> SemanticOutput:
        return SemanticOutput(self.decode_head(self.segformer(pixel_values).hidden_states))


def module_name(saved: str) -> str:
    """A saved checkpoint's weight name as the modules here (and transformers 5's) call it."""
    for pattern, replacement in _RENAMES:
        saved = re.sub(pattern, replacement, saved)
    return saved


def _read_json(path: Path, name: str) -> dict | None:
    """The checked JSON object in ``path``, None when there is no such file; hostile files raise ModelLoadError."""
    return read_json_object(path, name) if path.exists() else None


def load_light(folder: str | Path, name: str | None = None) -> tuple[LightSegformer, ProcessorSettings, dict] | None:
    """(model in eval mode, float32 on the CPU; processor settings; raw config.json) from a saved folder, or None
    when anything in it is outside what this module mirrors exactly (the caller then uses transformers).
    Settings no model can have (``checkpoint_files``' bounds) raise ModelLoadError naming ``name``."""
    folder = Path(folder)
    name = name or str(folder)
    raw = _read_json(folder / "config.json", name)
    if raw is None or raw.get("model_type") != "segformer":
        return None  # load_model says what it is
    check_config(raw, name)
    raw_processor = _read_json(folder / "preprocessor_config.json", name)
    if raw_processor is None:
        return None
    config, processor = LightConfig.from_raw(raw), ProcessorSettings.from_raw(processor_dict(raw_processor, name))
    if config is None or processor is None:
        return None
    saved = _read_weights(folder, name)
    if saved is None:
        return None
    state = {module_name(key): tensor for key, tensor in saved.items()}
    with torch.device("meta"):
        model = LightSegformer(config)
    expected = model.state_dict()
    if set(state) != set(expected) or any(state[k].shape != v.shape for k, v in expected.items()):
        return None
    for key, tensor in state.items():
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            state[key] = tensor.float()
        elif not tensor.is_floating_point() and expected[key].dtype != tensor.dtype:
            return None
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval(), processor, raw


def _read_weights(folder: Path, name: str) -> dict[str, torch.Tensor] | None:
    """``model.safetensors``, or the shards ``model.safetensors.index.json`` lists (transformers' order of
    preference), or None when neither is there or a file is damaged (transformers reports that in its words)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    index = folder / "model.safetensors.index.json"
    listed: set[str] | None = None
    if (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    elif index.is_file():
        weight_map = read_json_object(index, name).get("weight_map")
        if not isinstance(weight_map, dict) or not all(_plain_file_name(v) for v in weight_map.values()):
            return None
        files, listed = sorted(set(weight_map.values())), set(weight_map)
    else:
        return None
    saved: dict[str, torch.Tensor] = {}
    try:
        for file in files:
            saved.update(load_file(str(folder / file)))
    except (OSError, SafetensorError):
        return None
    if listed is not None and set(saved) != listed:
        return None
    return saved


def _plain_file_name(value: object) -> bool:
    """A shard name in the index: a file beside it, never a path elsewhere."""
    return isinstance(value, str) and value == Path(value).name and value.endswith(".safetensors")

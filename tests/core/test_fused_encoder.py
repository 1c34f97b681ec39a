"""The oneDNN-fused encoder gives transformers' hidden states, and runs only where it applies."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import SegformerConfig, SegformerForSemanticSegmentation

from segstudio.core.inference.fast import fused_encoder
from segstudio.core.inference.fast.fused_encoder import can_run, fused_hidden_states, kernels_available
from segstudio.core.inference.predictor import Predictor
from segstudio.core.labels.label_map import LabelConvention, LabelMap
from segstudio.core.model.loading import LoadedModel, LoadReport, new_processor

TINY = {"hidden_sizes": [8, 16, 32, 64], "decoder_hidden_size": 32, "depths": [2, 1, 1, 1], "num_labels": 5}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model(**overrides) -> SegformerForSemanticSegmentation:
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(SegformerConfig(**{**TINY, **overrides})).eval()
    with torch.no_grad():  # non-trivial norms, so a skipped or misplaced LayerNorm shows
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


def reference_states(model, pixel_values):
    return model.segformer(pixel_values, output_hidden_states=True).hidden_states


def test_the_fused_kernels_exist_in_this_torch_build() -> None:
    assert kernels_available()


@pytest.mark.parametrize("shape", [(3, 3, 64, 64), (2, 3, 61, 83), (1, 3, 33, 40)])
def test_fused_states_equal_transformers_states(shape) -> None:
    model = tiny_model()
    pixel_values = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.inference_mode():
        assert can_run(model.segformer, pixel_values)
        reference = reference_states(model, pixel_values)
        fused = fused_hidden_states(model.segformer, pixel_values)
    assert len(fused) == len(reference) == 4
    for ours, theirs in zip(fused, reference, strict=True):
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    assert fused[0].is_contiguous(memory_format=torch.channels_last)  # the decode head reads it without a copy


def test_a_last_stage_left_as_tokens_stays_tokens() -> None:
    model = tiny_model(reshape_last_stage=False)
    pixel_values = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        reference = reference_states(model, pixel_values)
        fused = fused_hidden_states(model.segformer, pixel_values)
    assert reference[-1].ndim == fused[-1].ndim == 3
    for ours, theirs in zip(fused, reference, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_it_declines_what_it_does_not_compute_exactly() -> None:
    model = tiny_model()
    pixel_values = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert can_run(model.segformer, pixel_values)
        assert not can_run(model.segformer, pixel_values.double())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not can_run(model.segformer, pixel_values)
        assert not can_run(tiny_model(hidden_act="relu").segformer, pixel_values)
        assert not can_run(copy.deepcopy(model).train().segformer, pixel_values)
        swapped = copy.deepcopy(model)
        swapped.segformer.stages[1].blocks[0].attention.q_proj = nn.Sequential(nn.Linear(16, 16))
        assert not can_run(swapped.segformer, pixel_values)
        circular = copy.deepcopy(model)
        circular.segformer.stages[0].blocks[0].mlp.dwconv.dwconv.padding_mode = "circular"
        assert not can_run(circular.segformer, pixel_values)
    assert not can_run(model.segformer, pixel_values)  # autograd on: training code gets transformers' forward


def loaded_model(model) -> LoadedModel:
    label_map = LabelMap.from_names([f"class{i}" for i in range(model.config.num_labels)])
    return LoadedModel(model, new_processor(64), label_map, LabelConvention(True), LoadReport("tiny"), "tiny")


def test_predictor_runs_the_fused_encoder_and_predicts_what_transformers_predicts(monkeypatch) -> None:
    model = tiny_model()
    predictor = Predictor(loaded_model(model), device="cpu", batch_size=2, precision="fp32")
    pixel_values = torch.randn(2, 3, 64, 64)
    calls = []
    real = fused_encoder.fused_hidden_states

    def counting(segformer, values):
        calls.append(values.shape)
        return real(segformer, values)

    monkeypatch.setattr("segstudio.core.inference.predictor.fused_hidden_states", counting)
    with torch.inference_mode():
        logits = predictor._forward(pixel_values)
        expected = model(pixel_values=pixel_values).logits
    assert calls == [pixel_values.shape]
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_without_the_kernels_the_predictor_falls_back_to_transformers(monkeypatch) -> None:
    model = tiny_model()
    predictor = Predictor(loaded_model(model), device="cpu", batch_size=2, precision="fp32")
    pixel_values = torch.randn(2, 3, 64, 64)
    kernels_available.cache_clear()
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    try:
        assert not can_run(model.segformer, pixel_values)
        with torch.inference_mode():
            logits = predictor._forward(pixel_values)
            expected = model(pixel_values=pixel_values).logits
        torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    finally:
        kernels_available.cache_clear()


@pytest.mark.parametrize("broken", ["raises", "wrong numbers"])
def test_a_fused_kernel_that_fails_its_check_turns_the_fused_encoder_off(monkeypatch, broken) -> None:
    def convolution(*args):
        if broken == "raises":
            raise RuntimeError("could not create a primitive")
        return torch.zeros(1, 4, 5, 6)

    kernels_available.cache_clear()
    monkeypatch.setattr(torch.ops.mkldnn, "_convolution_pointwise", convolution)
    try:
        with torch.inference_mode():
            assert not can_run(tiny_model().segformer, torch.randn(1, 3, 64, 64))
    finally:
        kernels_available.cache_clear()

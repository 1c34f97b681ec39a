"""The one inference path: banded upsampling, preprocessing, sizes, batching, top-k probabilities."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers import SegformerConfig, SegformerForSemanticSegmentation

from segstudio.core.data.imageio import read_image
from segstudio.core.inference import predictor as inference
from segstudio.core.inference.fast.fused_head import BLOCK_FLOATS, block_rows, can_fuse, fused_logits
from segstudio.core.inference.predictor import (
    InferenceError,
    Predictor,
    contenders,
    upsample_argmax,
    upsample_topk,
    upsampled_bands,
)
from segstudio.core.labels.label_map import LabelConvention, LabelMap
from segstudio.core.model.loading import LoadedModel, LoadReport, new_processor

TINY = {"hidden_sizes": [8, 16, 32, 64], "decoder_hidden_size": 32, "depths": [1, 1, 1, 1]}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    names = [f"class{i}" for i in range(6)]
    label_map = LabelMap.from_names(names)
    config = SegformerConfig(**TINY, id2label=dict(label_map.id2label), label2id=label_map.label2id)
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(config).eval()
    return LoadedModel(model, new_processor(64), label_map, LabelConvention(True), LoadReport("tiny"), "tiny")


def random_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.BILINEAR)


def near_ties(full: torch.Tensor, tol: float = 1e-4) -> torch.Tensor:
    if full.shape[0] < 2:
        return torch.zeros(full.shape[1:], dtype=torch.bool)
    top2 = full.topk(2, dim=0).values
    return (top2[0] - top2[1]) < tol


@pytest.mark.parametrize(
    ("channels", "size", "out", "budget"),
    [
        (5, (16, 16), (37, 53), 300),
        (7, (16, 20), (8, 5), 50),
        (3, (16, 16), (16, 16), 10),
        (150, (32, 32), (97, 131), 1 << 14),
    ],
)
def test_banded_upsampling_equals_full_interpolate_and_argmax(channels, size, out, budget) -> None:
    torch.manual_seed(0)
    logits = torch.randn(channels, *size)
    full = F.interpolate(logits[None], size=out, mode="bilinear", align_corners=False)[0]
    bands = list(upsampled_bands(logits, out, max_elements=budget))
    assert len(bands) > 1 or out[0] == 1 or budget >= channels * out[0] * out[1]
    stacked = torch.cat([band for _, _, band in bands], dim=1)
    torch.testing.assert_close(stacked, full, rtol=0, atol=1e-4)
    ids = upsample_argmax(logits, out, max_elements=budget)
    assert ids.dtype == np.uint8 and ids.shape == out
    agree = torch.from_numpy(ids).long() == full.argmax(dim=0)
    assert bool((agree | near_ties(full)).all())


def smooth_logits(channels: int, size: tuple[int, int], seed: int) -> torch.Tensor:
    """Logits with regions and boundaries, like a trained model's (few classes compete in each cell)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, channels, 4, 4, generator=generator) * 4
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)[0]


def test_pruned_classes_never_include_the_winner_and_pruning_happens(monkeypatch) -> None:
    monkeypatch.setattr(inference, "PRUNE_MAX_SHARE", 1.0)  # always prune
    logits = smooth_logits(40, (24, 24), seed=0)
    possible = contenders(logits, 1e-4 * float(logits.abs().max()))
    assert possible.sum(0).float().mean() < 20  # most classes are skipped in most rows
    full = F.interpolate(logits[None], size=(100, 90), mode="bilinear", align_corners=False)[0]
    ids = upsample_argmax(logits, (100, 90), max_elements=1 << 12)  # small budget: the pruned, banded path
    assert bool(((torch.from_numpy(ids).long() == full.argmax(0)) | near_ties(full)).all())


@settings(max_examples=40, deadline=None)
@given(
    channels=st.integers(1, 12),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    out_h=st.integers(1, 40),
    out_w=st.integers(1, 40),
    seed=st.integers(0, 1000),
    smooth=st.booleans(),
    budget=st.sampled_from([64, 1 << 22]),  # banded, or upsampled whole
    prune_share=st.sampled_from([0.0, 1.0]),  # banded: never or always pruned
)
def test_upsample_argmax_equals_full_interpolate(channels, height, width, out_h, out_w, seed, smooth, budget,
                                                 prune_share) -> None:
    if smooth:
        logits = smooth_logits(channels, (height, width), seed)
    else:
        logits = torch.randn(channels, height, width, generator=torch.Generator().manual_seed(seed))
    full = F.interpolate(logits[None], size=(out_h, out_w), mode="bilinear", align_corners=False)[0]
    saved, inference.PRUNE_MAX_SHARE = inference.PRUNE_MAX_SHARE, prune_share
    try:
        ids = torch.from_numpy(upsample_argmax(logits, (out_h, out_w), max_elements=budget)).long()
    finally:
        inference.PRUNE_MAX_SHARE = saved
    assert bool(((ids == full.argmax(0)) | near_ties(full)).all())


def test_a_band_holds_far_fewer_floats_than_the_full_tensor() -> None:
    logits = torch.randn(150, 128, 128)
    out = (3000, 4000)
    _, _, band = next(upsampled_bands(logits, out))
    assert band.numel() <= (1 << 22) and band.shape[2] == 4000
    assert band.numel() < 150 * 3000 * 4000 / 100


def test_topk_probabilities_match_softmax_of_full_upsampling() -> None:
    torch.manual_seed(1)
    logits = torch.randn(6, 8, 8)
    full = F.interpolate(logits[None], size=(20, 30), mode="bilinear", align_corners=False)[0].softmax(0)
    probs, ids = upsample_topk(logits, (20, 30), 3, max_elements=100)
    values, indices = full.topk(3, dim=0)
    np.testing.assert_allclose(probs.astype(np.float32), values.numpy(), atol=2e-3)
    assert probs.dtype == np.float16 and ids.dtype == np.uint8
    assert (ids[0] == indices[0].numpy()).mean() > 0.99


def test_preprocessing_matches_the_image_processor(loaded: LoadedModel) -> None:
    predictor = Predictor(loaded, device="cpu")
    for image in (random_image(300, 200), random_image(40, 50, seed=3), random_image(64, 64, seed=4)):
        ours = predictor.preprocess([image])
        reference = loaded.processor(image, return_tensors="pt")["pixel_values"]
        assert ours.shape == reference.shape == (1, 3, 64, 64)
        assert torch.equal(ours, reference)


def test_masks_have_each_images_original_size_and_batches_match_singles(loaded: LoadedModel) -> None:
    images = [random_image(97, 61), random_image(40, 128, seed=1), random_image(64, 64, seed=2)]
    batched = Predictor(loaded, device="cpu", batch_size=8).predict(images)
    single = Predictor(loaded, device="cpu", batch_size=1)
    assert [m.shape for m in batched] == [(61, 97), (128, 40), (64, 64)]
    for image, mask in zip(images, batched, strict=True):
        assert mask.dtype == np.uint8 and mask.max() < 6
        alone = single.predict([image])[0]
        assert (alone == mask).mean() > 0.999  # batched kernels may round differently at near-ties


def test_predict_equals_transformers_post_processing(loaded: LoadedModel) -> None:
    predictor = Predictor(loaded, device="cpu")
    image = random_image(90, 70)
    pixel_values = predictor.preprocess([image])
    with torch.inference_mode():
        outputs = loaded.model(pixel_values=pixel_values)
    reference = loaded.processor.post_process_semantic_segmentation(outputs, target_sizes=[(70, 90)])[0]
    assert (predictor.predict([image])[0] == reference.numpy()).mean() > 0.999


def test_predict_iter_is_lazy_keeps_keys_and_order(loaded: LoadedModel) -> None:
    pulled = []

    def items():
        for key in "abcde":
            pulled.append(key)
            yield key, random_image(32, 24, seed=ord(key))

    results = Predictor(loaded, device="cpu", batch_size=2).predict_iter(items())
    first = next(results)
    assert first[0] == "a" and pulled == ["a", "b"]
    assert [key for key, _ in results] == ["b", "c", "d", "e"]


def test_exif_rotated_jpeg_gives_an_upright_mask(loaded: LoadedModel, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    random_image(80, 40).save(tmp_path / "rotated.jpg", exif=exif)
    image = read_image(tmp_path / "rotated.jpg")
    assert image.size == (40, 80)
    assert Predictor(loaded, device="cpu").predict([image])[0].shape == (80, 40)


def test_predict_probs_shapes_and_consistency(loaded: LoadedModel) -> None:
    predictor = Predictor(loaded, device="cpu")
    image = random_image(120, 90)
    ids, probs, top_ids = predictor.predict_probs(image, top_k=3, max_side=60)
    assert ids.shape == (90, 120) and probs.shape == top_ids.shape == (3, 90, 120)
    assert probs.dtype == np.float16 and top_ids.dtype == np.uint8
    assert (ids == predictor.predict([image])[0]).all()
    assert (probs[0] >= probs[1]).all() and (probs.astype(np.float32).sum(0) <= 1.01).all()
    exact_ids, exact_probs, exact_top = predictor.predict_probs(image, top_k=2, max_side=None)
    assert exact_probs.shape == (2, 90, 120)
    assert (exact_top[0] == exact_ids).mean() > 0.999


def test_bf16_on_cpu_runs_and_unknown_precision_is_refused(loaded: LoadedModel) -> None:
    masks = Predictor(loaded, device="cpu", precision="bf16").predict([random_image(30, 20)])
    assert masks[0].shape == (20, 30)
    with pytest.raises(InferenceError, match="unknown precision"):
        Predictor(loaded, device="cpu", precision="int4")


def test_fused_decode_head_gives_the_models_logits(loaded: LoadedModel) -> None:
    loaded = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model).eval())
    head = loaded.model.decode_head
    assert can_fuse(head)
    with torch.no_grad():  # give batch norm statistics that are not the identity
        head.batch_norm.running_mean.uniform_(-0.5, 0.5)
        head.batch_norm.running_var.uniform_(0.5, 2.0)
        head.batch_norm.weight.uniform_(0.5, 1.5)
    predictor = Predictor(loaded, device="cpu")
    pixel_values = predictor.preprocess([random_image(90, 70), random_image(64, 64, seed=5)])
    with torch.inference_mode():
        reference = loaded.model(pixel_values=pixel_values).logits
        states = loaded.model.segformer(pixel_values, output_hidden_states=True).hidden_states
        fused = fused_logits(head, states)
    torch.testing.assert_close(fused, reference, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(predictor.logits([random_image(90, 70)]), reference[:1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("block_rows", [1, 3, None])
@pytest.mark.parametrize("shape", [(1, 3, 100, 70), (3, 3, 45, 131)])
def test_fused_head_matches_on_sizes_the_strides_do_not_divide(loaded: LoadedModel, shape, block_rows,
                                                                monkeypatch) -> None:
    model = loaded.model.eval()
    if block_rows is not None:  # blocks of 1 or 3 output rows (the last one shorter): each reads its own sources
        width, hidden = -(-shape[3] // 4), model.config.decoder_hidden_size
        monkeypatch.setattr("segstudio.core.inference.fast.fused_head.BLOCK_FLOATS", block_rows * width * hidden)
    pixel_values = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.inference_mode():
        states = model.segformer(pixel_values, output_hidden_states=True).hidden_states
        reference = model.decode_head(states)
        fused = fused_logits(model.decode_head, states)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the head runs in float32 under autocast too
            under_autocast = fused_logits(model.decode_head, states)
    assert {state.shape[-2:] for state in states[1:]} != {states[0].shape[-2:]}
    torch.testing.assert_close(fused, reference, rtol=1e-4, atol=1e-4)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, fused)


def test_head_blocks_are_cache_sized_on_the_cpu_and_whole_elsewhere() -> None:
    assert block_rows(128, 128 * 256, torch.device("cpu")) == BLOCK_FLOATS // (128 * 256) == 8
    assert block_rows(128, 4096 * 256, torch.device("cpu")) == 1
    assert block_rows(3, 8 * 32, torch.device("cpu")) == 3
    assert block_rows(128, 128 * 256, torch.device("cuda")) == 128


def test_a_head_in_training_mode_or_with_swapped_layers_is_not_fused(loaded: LoadedModel) -> None:
    head = copy.deepcopy(loaded.model.decode_head)
    assert not can_fuse(head.train())
    assert can_fuse(head.eval())
    head.linear_projections[0].proj = torch.nn.Sequential(head.linear_projections[0].proj)  # e.g. an adapter
    assert not can_fuse(head)  # not a plain Linear: nothing to fold safely, the model's own forward runs


def test_undecided_logits_take_the_all_class_bands_and_match(monkeypatch) -> None:
    calls = []
    original = inference._upsample_argmax_all_classes
    monkeypatch.setattr(inference, "_upsample_argmax_all_classes",
                        lambda *args: calls.append(1) or original(*args))
    logits = torch.randn(150, 24, 32, generator=torch.Generator().manual_seed(3))  # an untrained head
    full = F.interpolate(logits[None], size=(97, 131), mode="bilinear", align_corners=False)[0]
    ids = upsample_argmax(logits, (97, 131), max_elements=1 << 16)
    assert calls and ids.shape == (97, 131)
    assert bool(((torch.from_numpy(ids).long() == full.argmax(0)) | near_ties(full)).all())

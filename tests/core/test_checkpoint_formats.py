"""Published SegFormer checkpoint files (legacy processor keys, .bin, shards, half precision, encoder-only) load as
transformers loads them, through either loader."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn
from transformers import (
    SegformerConfig,
    SegformerForImageClassification,
    SegformerForSemanticSegmentation,
    SegformerImageProcessor,
)

from segstudio.core.inference.fast.segformer_light import LightSegformer
from segstudio.core.inference.loading import load_for_inference
from segstudio.core.inference.predictor import Predictor
from segstudio.core.model.loading import ModelLoadError, load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = {
    "hidden_sizes": [8, 16, 24, 32], "decoder_hidden_size": 16, "depths": [1, 1, 2, 1],
    "num_attention_heads": [1, 2, 2, 4], "sr_ratios": [4, 2, 2, 1], "mlp_ratios": [2, 2, 4, 2],
}
# The preprocessor_config.json that nvidia/segformer-b0-finetuned-ade-512-512 (and its ADE20K siblings) ship,
# as the feature extractor of transformers 4.x wrote it.
PUBLISHED_ADE_PROCESSOR = {
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "SegformerFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "reduce_labels": True,
    "resample": 2,
    "size": 512,
}


def small_config(num_labels: int = 150) -> SegformerConfig:
    return SegformerConfig(**SMALL, id2label={i: f"class {i}" for i in range(num_labels)})


def randomised(model: nn.Module) -> nn.Module:
    """Every weight and statistic shifted (norms off 1 and 0, running variances still positive), so a tensor loaded
    wrong or not at all changes the logits."""
    torch.manual_seed(0)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.rand_like(tensor) * 0.3)
    return model.eval()


def write_processor(folder: Path, settings: dict) -> None:
    (folder / "preprocessor_config.json").write_text(json.dumps(settings, indent=2))


@pytest.fixture(scope="module")
def source_model() -> SegformerForSemanticSegmentation:
    torch.manual_seed(0)
    return randomised(SegformerForSemanticSegmentation(small_config()))


def saved(model: nn.Module, folder: Path, **options) -> Path:
    model.save_pretrained(folder, **options)
    write_processor(folder, PUBLISHED_ADE_PROCESSOR)
    return folder


def reference(folder: Path) -> SegformerForSemanticSegmentation:
    """transformers' own float32 load of the folder."""
    return SegformerForSemanticSegmentation.from_pretrained(folder, dtype=torch.float32).eval()


def logits(model: nn.Module) -> torch.Tensor:
    pixel_values = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return model(pixel_values=pixel_values).logits


def assert_same_input(loaded, theirs) -> None:
    """predict's model input for an odd-sized image equals the reference processor's pixel_values."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8))
    expected = theirs(image, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(Predictor(loaded, "cpu").preprocess([image]), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("edge", [512, 640])
def test_published_legacy_processor_keys_read_as_transformers_4_read_them(source_model, tmp_path, edge) -> None:
    folder = saved(source_model, tmp_path / "ade")
    write_processor(folder, {**PUBLISHED_ADE_PROCESSOR, "size": edge})
    theirs = SegformerImageProcessor.from_pretrained(folder)
    # transformers 5 keeps the legacy key as it was saved (4.x read it as do_reduce_labels)
    assert theirs.reduce_labels is True and theirs.do_reduce_labels is False
    for loaded in (load_model(str(folder)), load_for_inference(str(folder), "cpu")):
        assert loaded.convention.reduce_labels is True
        assert loaded.processor.do_reduce_labels is False  # the convention owns the shift
        assert loaded.image_size == (theirs.size.height, theirs.size.width) == (edge, edge)
        assert_same_input(loaded, theirs)
    assert isinstance(load_for_inference(str(folder), "cpu").model, LightSegformer)


def test_the_legacy_key_wins_over_a_saved_do_reduce_labels_as_in_transformers_4(source_model, tmp_path) -> None:
    folder = saved(source_model, tmp_path / "both")
    write_processor(folder, {**PUBLISHED_ADE_PROCESSOR, "reduce_labels": False, "do_reduce_labels": True})
    assert load_model(str(folder)).convention.reduce_labels is False
    assert load_for_inference(str(folder), "cpu").convention.reduce_labels is False


def assert_loads_as_transformers(folder: Path, light: bool) -> None:
    """Both loaders give transformers' logits (1e-5), id2label and the recorded convention."""
    expected = reference(folder)
    full, fast = load_model(str(folder)), load_for_inference(str(folder), "cpu")
    assert isinstance(fast.model, LightSegformer if light else SegformerForSemanticSegmentation)
    for loaded in (full, fast):
        assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
        torch.testing.assert_close(logits(loaded.model), logits(expected), rtol=0, atol=1e-5)
        assert loaded.label_map.id2label == expected.config.id2label
        assert loaded.convention.reduce_labels is True
    assert fast.report.summary() == full.report.summary() and full.report.ok


def test_safetensors_baseline(source_model, tmp_path) -> None:
    assert_loads_as_transformers(saved(source_model, tmp_path / "st"), light=True)


def test_pytorch_model_bin(source_model, tmp_path) -> None:
    folder = saved(source_model, tmp_path / "bin")
    weights = load_file(folder / "model.safetensors")  # the checkpoint's own names, as published .bin files have
    (folder / "model.safetensors").unlink()
    torch.save(weights, folder / "pytorch_model.bin")
    assert_loads_as_transformers(folder, light=False)


def test_sharded_safetensors(source_model, tmp_path) -> None:
    folder = saved(source_model, tmp_path / "shards", max_shard_size="20KB")
    assert not (folder / "model.safetensors").exists()
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2
    assert_loads_as_transformers(folder, light=True)


@pytest.mark.parametrize("key", ["dtype", "torch_dtype"])  # transformers 5 writes dtype, 4.x torch_dtype
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_checkpoints_compute_in_float32(source_model, tmp_path, dtype, key) -> None:
    folder = saved(copy.deepcopy(source_model).to(dtype), tmp_path / "half")
    recorded = json.loads((folder / "config.json").read_text())
    assert recorded.pop("dtype") == str(dtype).removeprefix("torch.")
    (folder / "config.json").write_text(json.dumps({**recorded, key: str(dtype).removeprefix("torch.")}))
    assert {t.dtype for t in load_file(folder / "model.safetensors").values() if t.is_floating_point()} == {dtype}
    assert_loads_as_transformers(folder, light=True)


def test_an_encoder_only_classification_checkpoint_gets_a_new_decode_head(tmp_path) -> None:
    torch.manual_seed(1)
    classifier = randomised(SegformerForImageClassification(small_config(num_labels=10)))
    folder = saved(classifier, tmp_path / "mit")
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["SegformerForImageClassification"]
    expected = reference(folder)
    for loaded in (load_model(str(folder)), load_for_inference(str(folder), "cpu")):
        encoder = {k: v for k, v in loaded.model.state_dict().items() if k.startswith("segformer.")}
        assert encoder and all(torch.equal(v, expected.state_dict()[k]) for k, v in encoder.items())
        report = loaded.report
        assert report.newly_initialized and all(n.startswith("decode_head.") for n in report.newly_initialized)
        assert "decode_head.classifier.weight" in report.newly_initialized
        assert "decode head newly initialised" in report.summary() and "encoder-only" in report.summary()
        assert {"classifier.weight", "classifier.bias"} <= set(report.unexpected)


class _RunsCode:
    """Unpickling this runs code: what a hostile pytorch_model.bin does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_a_pickle_that_runs_code_is_refused_without_running_it(source_model, tmp_path) -> None:
    folder = saved(source_model, tmp_path / "evil")
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "ran.txt"
    torch.save({**weights, "payload": _RunsCode(marker)}, folder / "pytorch_model.bin", pickle_protocol=2)
    with pytest.raises(ModelLoadError, match="pickled objects other than tensors, which SegStudio never runs"):
        load_for_inference(str(folder), "cpu")
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(folder / "pytorch_model.bin", weights_only=True)
    torch.load(folder / "pytorch_model.bin", weights_only=False)  # the payload is real: unsafe loading runs it
    assert marker.read_text() == "ran"


def test_keys_a_processor_config_leaves_out_take_transformers_defaults(source_model, tmp_path) -> None:
    folder = saved(source_model, tmp_path / "bare")
    write_processor(folder, {"image_processor_type": "SegformerImageProcessor", "do_reduce_labels": True})
    theirs = SegformerImageProcessor.from_pretrained(folder)
    for loaded in (load_model(str(folder)), load_for_inference(str(folder), "cpu")):
        assert loaded.image_size == (theirs.size.height, theirs.size.width)
        assert_same_input(loaded, theirs)
        assert loaded.convention.reduce_labels is theirs.do_reduce_labels is True
    assert isinstance(load_for_inference(str(folder), "cpu").model, LightSegformer)

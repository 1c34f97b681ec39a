"""The transformers-free SegFormer for prediction: same weights and numbers as transformers', or no load at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import SegformerConfig, SegformerForSemanticSegmentation

from segstudio.core.inference.fast.segformer_light import LightSegformer, load_light, module_name
from segstudio.core.inference.loading import load_for_inference
from segstudio.core.inference.predictor import Predictor
from segstudio.core.labels.label_map import LabelConvention, LabelMap
from segstudio.core.model.loading import load_model, new_processor, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# Another shape than mit-b0 in every list, so a hard-coded b0 detail would show.
ODD = {
    "hidden_sizes": [8, 16, 24, 40], "decoder_hidden_size": 24, "depths": [1, 2, 1, 2], "num_attention_heads": [1, 2, 3, 4],
    "sr_ratios": [4, 2, 2, 1], "patch_sizes": [5, 3, 3, 3], "strides": [2, 2, 2, 2], "mlp_ratios": [2, 3, 4, 2],
    "num_channels": 3,
}
NAMES = ["sky", "road", "tree", "car", "person"]


def odd_model() -> SegformerForSemanticSegmentation:
    label_map = LabelMap.from_names(NAMES)
    config = SegformerConfig(**ODD, id2label=dict(label_map.id2label), label2id=label_map.label2id)
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(config).eval()
    with torch.no_grad():  # non-trivial norms and statistics, so a skipped or misplaced one shows
        for module in model.modules():
            if isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "odd"
    return save_checkpoint(odd_model(), new_processor(48), LabelMap.from_names(NAMES), LabelConvention(False), out)


def copy_folder(folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    out.mkdir()
    for path in folder.iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    return out


def edit_json(path: Path, **changes) -> None:
    raw = json.loads(path.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize("spec", ["demo", "odd"])
def test_logits_equal_transformers_fused_and_plain(spec, odd_folder) -> None:
    folder = odd_folder if spec == "odd" else "demo"
    light, full = load_for_inference(str(folder), "cpu"), load_model(str(folder))
    assert isinstance(light.model, LightSegformer) and isinstance(full.model, SegformerForSemanticSegmentation)
    pixel_values = torch.randn(2, 3, 61, 83, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # the modules' own forward (autograd mode: the fused kernels stay out)
        torch.testing.assert_close(
            light.model(pixel_values=pixel_values).logits, full.model(pixel_values=pixel_values).logits,
            rtol=0, atol=1e-6,  # the same operations in the same order: equal but for the attention kernel's choice
        )
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (70, 90, 3), dtype=np.uint8))
    ours, theirs = Predictor(light, "cpu"), Predictor(full, "cpu")
    torch.testing.assert_close(ours.logits([image]), theirs.logits([image]), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.predict([image])[0], theirs.predict([image])[0])
    assert ours.size == theirs.size and ours.resample == theirs.resample
    np.testing.assert_array_equal(ours.values, theirs.values)


def test_the_loaded_model_carries_what_load_model_gives(odd_folder, tmp_path) -> None:
    for folder in ("demo", str(odd_folder)):
        light, full = load_for_inference(folder, "cpu"), load_model(folder)
        assert light.label_map == full.label_map and light.convention == full.convention
        assert light.image_size == full.image_size and light.source == full.source == folder
        assert light.report.summary() == full.report.summary()
        assert light.processor.do_reduce_labels is False
        assert light.model.config.num_labels == full.model.config.num_labels
    reduced = copy_folder(odd_folder, tmp_path)
    edit_json(reduced / "preprocessor_config.json", do_reduce_labels=True)
    assert load_for_inference(str(reduced), "cpu").convention == load_model(str(reduced)).convention


def test_saved_names_map_onto_the_modules_as_transformers_maps_them(odd_folder) -> None:
    saved = load_file(str(odd_folder / "model.safetensors"))
    assert any(".attention.self.query." in name for name in saved)  # checkpoints keep the original names
    full = load_model(str(odd_folder)).model
    assert {module_name(name) for name in saved} == set(full.state_dict())
    assert module_name("segformer.stages.0.blocks.0.attention.q_proj.weight") == (
        "segformer.stages.0.blocks.0.attention.q_proj.weight"
    )


def test_a_checkpoint_saved_with_module_names_loads_too(odd_folder, tmp_path) -> None:
    folder = copy_folder(odd_folder, tmp_path)
    saved = load_file(str(folder / "model.safetensors"))
    save_file({module_name(k): v for k, v in saved.items()}, str(folder / "model.safetensors"))
    assert load_light(folder) is not None


def test_half_precision_weights_load_as_float32(odd_folder, tmp_path) -> None:
    folder = copy_folder(odd_folder, tmp_path)
    saved = load_file(str(folder / "model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in saved.items()}, str(folder / "model.safetensors"))
    model = load_for_inference(str(folder), "cpu").model
    assert isinstance(model, LightSegformer)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def _drop_weight(folder: Path) -> None:
    saved = load_file(str(folder / "model.safetensors"))
    saved.pop("decode_head.classifier.bias")
    save_file(saved, str(folder / "model.safetensors"))


def _add_weight(folder: Path) -> None:
    saved = load_file(str(folder / "model.safetensors"))
    saved["decode_head.extra.weight"] = torch.zeros(2)
    save_file(saved, str(folder / "model.safetensors"))


def _reshape_weight(folder: Path) -> None:
    saved = load_file(str(folder / "model.safetensors"))
    saved["decode_head.classifier.bias"] = torch.zeros(7)
    save_file(saved, str(folder / "model.safetensors"))


def _truncate(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "spoil",
    [
        lambda f: edit_json(f / "config.json", hidden_act="relu"),
        lambda f: edit_json(f / "config.json", reshape_last_stage=False),
        lambda f: edit_json(f / "config.json", architectures=["SegformerForImageClassification"]),
        lambda f: edit_json(f / "config.json", depths=[1, 2, 1]),
        lambda f: edit_json(f / "preprocessor_config.json", image_processor_type="BeitImageProcessor"),
        lambda f: edit_json(f / "preprocessor_config.json", do_resize=False),
        lambda f: edit_json(f / "preprocessor_config.json", size={"shortest_edge": 48}),
        lambda f: (f / "preprocessor_config.json").unlink(),
        lambda f: (f / "model.safetensors").rename(f / "pytorch_model.bin"),
        _drop_weight,
        _add_weight,
        _reshape_weight,
        _truncate,
    ],
    ids=["relu", "tokens-last-stage", "classifier", "depths", "processor-type", "no-resize", "shortest-edge",
         "no-processor", "bin-weights", "missing-weight", "extra-weight", "other-shape", "truncated"],
)
def test_anything_it_does_not_mirror_exactly_is_left_to_transformers(spoil, odd_folder, tmp_path) -> None:
    folder = copy_folder(odd_folder, tmp_path)
    spoil(folder)
    assert load_light(folder) is None


def test_what_it_declines_loads_through_transformers(odd_folder, tmp_path) -> None:
    folder = copy_folder(odd_folder, tmp_path)
    _drop_weight(folder)
    loaded = load_for_inference(str(folder), "cpu")
    assert isinstance(loaded.model, SegformerForSemanticSegmentation)
    assert loaded.report.newly_initialized == ["decode_head.classifier.bias"]  # transformers' report, as before
    assert isinstance(load_for_inference("scratch", "cpu").model, SegformerForSemanticSegmentation)


def one_image_folder(tmp_path: Path) -> Path:
    """A folder holding one small image, a.png, to predict."""
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(images / "a.png")
    return images


def test_predict_never_imports_transformers(odd_folder, tmp_path) -> None:
    images = one_image_folder(tmp_path)
    code = (
        "import sys; from segstudio.cli import main; "
        f"status = main(['predict', '--model', {str(odd_folder)!r}, '--device', 'cpu', {str(images)!r}, "
        f"'--output', {str(tmp_path / 'out')!r}]); "
        "print('transformers' in sys.modules, status)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split()[-2:] == ["False", "0"], result.stdout + result.stderr
    assert (tmp_path / "out" / "a.png").is_file()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    import transformers

    assert manifest["versions"]["transformers"] == transformers.__version__


HUB_REPO = "someone/tiny-segformer"
COMPARE_WITH_LOAD_MODEL = """
import json, sys, torch
from segstudio.core.model.loading import load_model
from segstudio.core.inference.loading import load_for_inference
light = load_for_inference(sys.argv[1], "cpu")
imported = "transformers" in sys.modules
full = load_model(sys.argv[1])
torch.set_grad_enabled(False)
x = torch.randn(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))
gap = (light.model(pixel_values=x).logits - full.model(pixel_values=x).logits).abs().max().item()
print(json.dumps({"light": type(light.model).__name__, "full": type(full.model).__name__, "imported": imported,
                  "gap": gap, "labels": light.label_map == full.label_map
                  and light.label_map.palette.tolist() == full.label_map.palette.tolist(), "convention": light.convention == full.convention,
                  "report": light.report.summary() == full.report.summary(), "size": light.image_size == full.image_size,
                  "reduce_labels": light.convention.reduce_labels, "image_size": light.image_size}))
"""


def hub_cache(tmp_path: Path, source: Path, rename: dict[str, str] | None = None) -> Path:
    """A huggingface_hub cache holding ``source``'s files as the main revision of HUB_REPO."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / ("models--" + HUB_REPO.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for path in source.iterdir():
        shutil.copy(path, snapshot / (rename or {}).get(path.name, path.name))
    return tmp_path / "hub"


def offline_run(code: str, cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=180, env=env)


def test_a_cached_hub_model_loads_light_with_what_load_model_gives(odd_folder, tmp_path) -> None:
    cache = hub_cache(tmp_path, odd_folder)
    edit_json(next(cache.glob("*/snapshots/*/labels.json")), palette=[[i, i, i] for i in range(len(NAMES))])
    result = offline_run(COMPARE_WITH_LOAD_MODEL, cache, HUB_REPO)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["light"] == "LightSegformer" and found["full"] == "SegformerForSemanticSegmentation"
    assert found["imported"] is False  # transformers came in only with load_model
    assert found["gap"] <= 1e-6
    # labels.json (the palette save_checkpoint keeps) is read from local folders only, by both loaders alike
    assert found["labels"] and found["convention"] and found["report"] and found["size"]


def test_a_cached_hub_model_with_legacy_processor_keys_loads_light_as_load_model_reads_them(odd_folder, tmp_path) -> None:
    cache = hub_cache(tmp_path, odd_folder)
    legacy = {  # as transformers 4.x's SegformerFeatureExtractor wrote it (the nvidia/segformer-*-ade-* checkpoints)
        "do_normalize": True, "do_resize": True, "feature_extractor_type": "SegformerFeatureExtractor",
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "reduce_labels": True,
        "resample": 2, "size": 48,
    }
    next(cache.glob("*/snapshots/*/preprocessor_config.json")).write_text(json.dumps(legacy))
    result = offline_run(COMPARE_WITH_LOAD_MODEL, cache, HUB_REPO)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["light"] == "LightSegformer" and found["gap"] <= 1e-6
    assert found["convention"] and found["size"] and found["report"]
    assert found["reduce_labels"] is True and found["image_size"] == [48, 48]


def test_a_cached_hub_model_the_light_loader_declines_loads_through_transformers(odd_folder, tmp_path) -> None:
    cache = hub_cache(tmp_path, odd_folder, rename={"model.safetensors": "pytorch_model.bin"})
    torch.save(load_file(odd_folder / "model.safetensors"), next(cache.glob("*/snapshots/*")) / "pytorch_model.bin")
    result = offline_run(COMPARE_WITH_LOAD_MODEL, cache, HUB_REPO)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["light"] == "SegformerForSemanticSegmentation" and found["imported"] is True
    assert found["gap"] == 0 and found["labels"] and found["report"]


def test_an_uncached_hub_model_offline_is_one_clear_line(tmp_path) -> None:
    images = one_image_folder(tmp_path)
    code = "import sys; from segstudio.cli import main; status = main(sys.argv[1:]); print('transformers' in sys.modules); sys.exit(status)"
    result = offline_run(code, tmp_path / "empty-cache", "predict", "--model", HUB_REPO, "--device", "cpu",
                         str(images), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stdout.split()[-1] == "False"  # said at once: no second attempt through transformers
    assert f"{HUB_REPO} is not in the local cache and the Hugging Face Hub is unreachable" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("value", "light"), [("1", False), ("yes", False), ("0", True), ("false", True), ("", True)])
def test_the_switch_turns_the_fast_path_off_only_when_set_to_a_true_value(value, light, monkeypatch) -> None:
    monkeypatch.setenv("SEGSTUDIO_NO_FAST_PATH", value)
    loaded = load_for_inference("demo", "cpu")
    assert isinstance(loaded.model, LightSegformer) is light

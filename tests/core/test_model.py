"""Model loading: round trips, float32 forcing, the load report, scratch, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    SegformerConfig,
    SegformerForSemanticSegmentation,
    SegformerImageProcessorPil,
    SegformerModel,
)

from segstudio.core.labels.label_map import LabelConvention, LabelMap
from segstudio.core.model.loading import (
    DeviceError,
    LoadReport,
    ModelLoadError,
    load_model,
    new_processor,
    resolve_device,
    save_checkpoint,
)
from segstudio.core.model.location import DEMO_MODEL_DIR

TINY = {"hidden_sizes": [8, 16, 32, 64], "decoder_hidden_size": 32, "depths": [1, 1, 1, 1]}


def tiny_model(label_map: LabelMap) -> SegformerForSemanticSegmentation:
    config = SegformerConfig(**TINY, id2label=dict(label_map.id2label), label2id=label_map.label2id)
    torch.manual_seed(1)
    return SegformerForSemanticSegmentation(config).eval()


@pytest.fixture
def five() -> LabelMap:
    return LabelMap.from_names(["wall", "floor", "tree", "ceiling", "widget"])


@pytest.fixture
def checkpoint(tmp_path: Path, five: LabelMap) -> Path:
    return save_checkpoint(
        tiny_model(five), new_processor(64), five, LabelConvention(True), tmp_path / "ckpt"
    )


def test_round_trip_keeps_labels_convention_size_and_weights(checkpoint: Path, five: LabelMap) -> None:
    loaded = load_model(str(checkpoint))
    assert loaded.label_map.id2label == five.id2label
    assert (loaded.label_map.palette == five.palette).all()
    assert loaded.convention.reduce_labels is True
    assert loaded.processor.do_reduce_labels is False  # the processor never reduces labels itself
    assert isinstance(loaded.processor, SegformerImageProcessorPil)
    assert loaded.image_size == (64, 64)
    assert loaded.report.ok and "all weights loaded" in loaded.report.summary()
    assert not loaded.model.training
    reference = tiny_model(five).state_dict()
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, reference[name]), name
    saved = json.loads((checkpoint / "preprocessor_config.json").read_text())
    assert saved["do_reduce_labels"] is True and saved["size"] == {"height": 64, "width": 64}
    assert json.loads((checkpoint / "config.json").read_text())["id2label"]["4"] == "widget"


def test_a_custom_palette_survives_the_round_trip(tmp_path: Path) -> None:
    palette = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    names = LabelMap.from_names(["a", "b", "c"], palette=np.array(palette, np.uint8))
    folder = save_checkpoint(
        tiny_model(names), new_processor(32), names, LabelConvention(False), tmp_path / "m"
    )
    assert load_model(str(folder)).label_map.palette.tolist() == palette


def test_convention_false_and_overrides(tmp_path: Path, five: LabelMap) -> None:
    folder = save_checkpoint(
        tiny_model(five), new_processor(32), five, LabelConvention(False), tmp_path / "m"
    )
    assert load_model(str(folder)).convention.reduce_labels is False
    loaded = load_model(str(folder), reduce_labels=True, image_size=48)
    assert loaded.convention.reduce_labels is True and loaded.image_size == (48, 48)


def test_save_replaces_an_existing_folder_without_leftovers(checkpoint: Path, five: LabelMap) -> None:
    (checkpoint / "stale.txt").write_text("old")
    save_checkpoint(tiny_model(five), new_processor(64), five, LabelConvention(False), checkpoint)
    assert not (checkpoint / "stale.txt").exists()
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["ckpt"]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_weights_always_load_as_float32(tmp_path: Path, five: LabelMap, dtype: torch.dtype) -> None:
    tiny_model(five).to(dtype).save_pretrained(tmp_path / "half")
    new_processor(64).save_pretrained(tmp_path / "half")
    loaded = load_model(str(tmp_path / "half"))
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    assert {p.device.type for p in loaded.model.parameters()} == {"cpu"}


def test_save_checkpoint_writes_float32(tmp_path: Path, five: LabelMap) -> None:
    from safetensors import safe_open

    folder = save_checkpoint(
        tiny_model(five).to(torch.bfloat16), new_processor(64), five, LabelConvention(True), tmp_path / "ck"
    )
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        names = handle.keys()
        assert {handle.get_tensor(name).dtype for name in names} <= {torch.float32, torch.int64}


def test_label_map_with_one_more_class_is_reported_with_cause_and_fix(
    checkpoint: Path, five: LabelMap
) -> None:
    six = LabelMap.from_names(["other", *five.id2label.values()])
    loaded = load_model(str(checkpoint), label_map=six)
    report = loaded.report
    assert not report.ok and loaded.model.config.num_labels == 6
    assert {name for name, _, _ in report.mismatched} == {
        "decode_head.classifier.weight",
        "decode_head.classifier.bias",
    }
    assert ("decode_head.classifier.bias", (5,), (6,)) in report.mismatched
    text = report.summary()
    assert "5 classes" in text and "reduce_labels" in text and "--reduce-labels" in text


def test_summary_explains_the_reverse_off_by_one() -> None:
    report = LoadReport(
        "x",
        mismatched=[("decode_head.classifier.bias", (151,), (150,))],
        num_labels=150,
        checkpoint_num_labels=151,
    )
    assert "--no-reduce-labels" in report.summary()


def test_encoder_only_checkpoint_reports_a_new_decode_head(tmp_path: Path) -> None:
    SegformerModel(SegformerConfig(**TINY)).save_pretrained(tmp_path / "encoder")
    loaded = load_model(str(tmp_path / "encoder"))
    assert loaded.label_map.num_labels == 150
    assert loaded.report.newly_initialized and all(
        n.startswith("decode_head.") for n in loaded.report.newly_initialized
    )
    assert "decode head newly initialised" in loaded.report.summary()


def test_scratch_is_mit_b0_and_reproducible(five: LabelMap) -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = load_model("scratch", label_map=five, image_size=64)
    assert torch.equal(torch.rand(1), before)  # the global RNG is left alone
    second = load_model("scratch", label_map=five)
    assert list(first.model.config.hidden_sizes) == [32, 64, 160, 256]
    assert first.model.config.num_labels == 5 and first.image_size == (64, 64)
    assert second.image_size == (512, 512)
    weight = "decode_head.classifier.weight"
    assert torch.equal(first.model.state_dict()[weight], second.model.state_dict()[weight])
    assert not first.report.ok


def test_missing_truncated_and_foreign_models_raise_clear_errors(tmp_path: Path, checkpoint: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(str(tmp_path / "nope"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((checkpoint / "config.json").read_text())
    with pytest.raises(ModelLoadError, match="no weights"):
        load_model(str(broken))
    data = (checkpoint / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="damaged or incomplete"):
        load_model(str(broken))
    config = json.loads((checkpoint / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(ModelLoadError, match="bert model, not SegFormer"):
        load_model(str(broken))
    config.pop("id2label")
    config.pop("label2id")
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="no id2label"):
        load_model(str(broken))
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(str(broken))
    (broken / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(broken))
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(str(checkpoint / "config.json"))


def test_demo_missing_or_loadable() -> None:
    if (Path(str(DEMO_MODEL_DIR)) / "config.json").exists():
        assert load_model("demo").report.ok
    else:
        with pytest.raises(ModelLoadError, match="demo model is not installed"):
            load_model("demo")


def test_offline_hub_id_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    # huggingface_hub reads these at call time: an empty cache and no network, as on a fresh offline machine.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError) as caught:
        load_model("nvidia/mit-b0")
    message = str(caught.value)
    assert message.startswith(
        "nvidia/mit-b0 is not in the local cache and the Hugging Face Hub is unreachable"
    )
    assert "use demo, scratch or a local model folder as the model" in message and "\n" not in message


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")

"""A model of 300 classes: classes 255 and 299 survive predict's export (16-bit PNGs) and are counted by evaluate,
checked against transformers' own forward and post-processing and against evaluate's mean_iou algorithm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.labels.label_map import LabelConvention
from segstudio.core.metrics.reference import reference_mean_iou

CLASSES = 300
SIZE = (30, 40)  # height, width
NAMES = {i: f"class {i}" for i in range(CLASSES)}


def _images() -> dict[str, Image.Image]:
    return {name: Image.new("RGB", SIZE[::-1], (value,) * 3) for name, value in (("dark", 0), ("light", 255))}


def _reference_ids(folder: Path, images: dict[str, Image.Image]) -> dict[str, np.ndarray]:
    """transformers' prediction: its model's forward, then its processor's post-processing (as the pipeline)."""
    import torch
    from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

    model = SegformerForSemanticSegmentation.from_pretrained(folder).eval()
    processor = SegformerImageProcessor.from_pretrained(folder)
    out = {}
    for name, image in images.items():
        with torch.no_grad():
            outputs = model(**processor(images=image, return_tensors="pt"))
        ids = processor.post_process_semantic_segmentation(outputs, target_sizes=[SIZE])[0]
        out[name] = ids.numpy()
    return out


@pytest.fixture(scope="module", params=[True, False], ids=["reduce", "no-reduce"])
def wide_model(request, tmp_path_factory) -> tuple[Path, bool, dict[str, np.ndarray]]:
    """A tiny random 300-class SegFormer whose head predicts class 255 on a dark image and 299 on a light one."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    reduce = request.param
    torch.manual_seed(0)
    config = SegformerConfig(hidden_sizes=[8, 16, 16, 16], num_attention_heads=[1, 1, 1, 1], depths=[1, 1, 1, 1],
                             decoder_hidden_size=16, id2label=NAMES, label2id={n: i for i, n in NAMES.items()})
    model = SegformerForSemanticSegmentation(config).eval()
    processor = SegformerImageProcessor(size={"height": 32, "width": 32}, do_reduce_labels=reduce)
    features = {}
    classifier = model.decode_head.classifier
    hook = classifier.register_forward_hook(lambda _m, args, _out: features.setdefault("x", args[0]))
    means = []
    for image in _images().values():
        features.clear()
        with torch.no_grad():
            model(**processor(images=image, return_tensors="pt"))
        means.append(features["x"][0].mean(dim=(1, 2)))
    hook.remove()
    dark, light = means
    with torch.no_grad():  # class 299 above the midpoint between the two images' features, 255 below, others never
        classifier.weight.zero_()
        classifier.bias.fill_(-100.0)
        classifier.bias[255] = 0.0
        classifier.weight[299, :, 0, 0] = 10 * (light - dark)
        classifier.bias[299] = -10 * float((light - dark) @ (light + dark)) / 2
    folder = tmp_path_factory.mktemp("models") / ("reduce" if reduce else "plain")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    reference = _reference_ids(folder, _images())
    assert (reference["dark"] == 255).mean() > 0.9 and (reference["light"] == 299).mean() > 0.9
    return folder, reduce, reference


def _write_inputs(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, image in _images().items():
        image.save(folder / f"{name}.png")
    return folder


@pytest.mark.slow
def test_predict_refuses_ignore_255_and_writes_16_bit_masks(wide_model, tmp_path, capsys):
    model, reduce, reference = wide_model
    inputs = _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), str(inputs), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "ignore index 255 is also class 255" in err[-1] and "--ignore-index" in err[-1]
    assert not out.exists()
    assert main(["predict", "--model", str(model), str(inputs), "--output", str(out), "--ignore-index", "299"]) == 2
    assert "--ignore-index 299 is class 299 of this model" in capsys.readouterr().err and not out.exists()
    code = main(["predict", "--model", str(model), str(inputs), "--output", str(out), "--ignore-index", "65535"])
    assert code == 0
    for name, expected in reference.items():
        with Image.open(out / f"{name}.png") as png:
            assert png.mode == "I;16"
            written = np.asarray(png)
        np.testing.assert_array_equal(written, expected + (1 if reduce else 0))
    labels = json.loads((out / "labels.json").read_text())
    assert labels["mask_bits"] == 16 and labels["ignore_index"] == 65535 and labels["reduce_labels"] is reduce
    assert json.loads((out / "manifest.json").read_text())["labels"]["ignore_index"] == 65535


@pytest.mark.slow
def test_evaluate_counts_classes_255_and_299(wide_model, tmp_path, capsys):
    model, reduce, reference = wide_model
    root = tmp_path / "data"
    for split in ("train", "validation"):
        (root / "masks" / split).mkdir(parents=True)
        _write_inputs(root / "images" / split)
    shift = 1 if reduce else 0
    rng = np.random.default_rng(3)
    labels = {}
    for name, main_class in (("dark", 255), ("light", 299)):
        ids = np.full(SIZE, main_class, np.int64)
        ids[rng.random(SIZE) < 0.2] = 255 if main_class == 299 else 299
        ids[:, :3] = 7
        labels[name] = (ids + shift).astype(np.uint16)
        for split in ("train", "validation"):
            Image.fromarray(labels[name]).save(root / "masks" / split / f"{name}.png")
    (root / "labels.json").write_text(json.dumps({"id2label": NAMES, "reduce_labels": reduce}))
    report = tmp_path / "metrics.json"
    base = ["evaluate", "--dataset", str(root), "--model", str(model), "--json", str(report)]
    assert main(base) == 2
    assert "ignore index 255 is also class 255" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(root), "--model", str(model), "--output", str(run), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "ignore index 255 is also class 255" in err and not run.exists()
    assert "e.g. 65535" in err and "e.g. 255" not in err  # the fix offers no value that is a class
    assert main([*base, "--ignore-index", "65535"]) == 0
    written = json.loads(report.read_text())
    names = sorted(reference)
    expected = reference_mean_iou([reference[n] for n in names], [labels[n].copy() for n in names], CLASSES,
                                  65535, reduce_labels=reduce)
    iou = np.array([np.nan if v is None else v for v in written["per_category_iou"]])
    np.testing.assert_array_equal(iou, expected["per_category_iou"])
    assert written["mean_iou"] == expected["mean_iou"] and written["overall_accuracy"] == expected["overall_accuracy"]
    assert 0 < iou[255] < 1 and 0 < iou[299] < 1


@pytest.mark.parametrize(("classes", "reduce", "dtype"), [
    (255, True, np.uint8), (256, False, np.uint8), (256, True, np.uint16), (300, False, np.uint16),
    (65536, True, np.int32),
])
def test_mask_type_follows_the_largest_dataset_id(classes, reduce, dtype):
    assert LabelConvention(reduce).dataset_dtype(classes) is dtype


@pytest.mark.slow
def test_a_checkpoint_trained_with_another_ignore_index_predicts_without_the_flag(wide_model, tmp_path, capsys):
    """``train`` records the dataset's ignore index as ``semantic_loss_ignore_index``; predict reads it back."""
    import json
    import shutil

    model, reduce, reference = wide_model
    trained = tmp_path / "trained"
    shutil.copytree(model, trained)
    config = json.loads((trained / "config.json").read_text())
    config["semantic_loss_ignore_index"] = 65535
    (trained / "config.json").write_text(json.dumps(config))
    inputs = _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["predict", "--model", str(trained), str(inputs), "--output", str(out)]) == 0
    labels = json.loads((out / "labels.json").read_text())
    assert labels["ignore_index"] == 65535
    for name, expected in reference.items():
        with Image.open(out / f"{name}.png") as png:
            written = np.asarray(png).astype(np.int64)
        assert np.array_equal(written, expected + (1 if reduce else 0))


def test_the_recorded_ignore_index_must_be_a_mask_value():
    from segstudio.core.model.loading import recorded_ignore_index

    assert recorded_ignore_index({}) == 255
    assert recorded_ignore_index({"semantic_loss_ignore_index": 65535}) == 65535
    for odd in (-100, 70000, 2.5, True, "255", None):
        assert recorded_ignore_index({"semantic_loss_ignore_index": odd}) == 255


def test_training_reads_16_bit_masks_with_ids_beyond_255_as_the_processor_resizes_8_bit_ones():
    """transformers' image processor resizes a mask through an 8-bit image (ids beyond 255 raise ValueError there);
    nearest resizing only picks pixels, so resizing the high and the low byte with it gives the reference."""
    import torch
    from transformers import SegformerImageProcessorPil

    from segstudio.core.training.transforms import SegmentationTransform

    processor = SegformerImageProcessorPil(do_reduce_labels=False)
    mask = np.random.default_rng(3).integers(0, 300, (37, 53)).astype(np.uint16)
    mask[:5, :7] = 299
    image = Image.fromarray(np.random.default_rng(4).integers(0, 255, (37, 53, 3), np.uint8))
    size = {"height": 24, "width": 40}

    def reference(ids: np.ndarray) -> torch.Tensor:
        return processor([image], segmentation_maps=[ids], size=size, return_tensors="pt")["labels"][0].long()

    expected = reference((mask >> 8).astype(np.uint8)) * 256 + reference((mask & 255).astype(np.uint8))
    transform = SegmentationTransform(processor, LabelConvention(False, 65535), 24, "none")
    transform.size = size
    rows = transform({"image": [image], "annotation": [Image.fromarray(mask)], "file_name": ["a.png"]})
    assert not transform.skipped and int(expected.max()) == 299
    assert torch.equal(rows["labels"][0], expected)
    assert torch.equal(rows["pixel_values"], processor([image], size=size, return_tensors="pt")["pixel_values"])

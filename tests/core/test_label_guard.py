"""The label-convention guard on small image/mask folders: each classic trap is found and named with its fix."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segstudio.core.data.label_guard import (
    IgnoredBatchGuard,
    LabelConventionError,
    check_labels,
    refuse_double_reduction,
    sample_indices,
    scan_split,
)
from segstudio.core.data.sources import SourceOptions, load_source
from segstudio.core.evaluation.scoring import evaluate_split
from segstudio.core.inference.predictor import Predictor
from segstudio.core.labels.label_map import LabelMap
from segstudio.core.model.loading import load_model
from segstudio.core.training.trainer import TrainingError, TrainSettings, train

NAMES = ["wall", "building", "sky"]


def write_pairs(root: Path, masks: dict[str, list[list[int]]], names: list[str] = NAMES,
                reduce: bool | None = None, size: int = 32) -> Path:
    """images/<split>/img_i.png and masks/<split>/img_i.png, each mask cycling through its values."""
    for split, value_lists in masks.items():
        for i, values in enumerate(value_lists):
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "masks" / split).mkdir(parents=True, exist_ok=True)
            rgb = np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(root / "images" / split / f"img_{i}.png")
            mask = np.asarray(values, np.uint8)[np.arange(size * size).reshape(size, size) % len(values)]
            Image.fromarray(mask).save(root / "masks" / split / f"img_{i}.png")
    labels = {"id2label": {str(i): n for i, n in enumerate(names)}}
    if reduce is not None:
        labels["reduce_labels"] = reduce
    (root / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
    return root


def dataset(tmp_path, masks, names=NAMES, reduce=None, **options):
    return load_source(str(write_pairs(tmp_path / "data", masks, names, reduce)), SourceOptions(**options))


@pytest.fixture(scope="module")
def model3():
    return load_model("scratch", label_map=LabelMap.from_names(NAMES), reduce_labels=False, image_size=32)


@pytest.fixture(scope="module")
def model4():
    names = NAMES + ["floor"]
    return load_model("scratch", label_map=LabelMap.from_names(names), reduce_labels=False, image_size=32)


def codes(report, severity=None):
    return [f.code for f in report.findings if severity is None or f.severity == severity]


def test_a_clean_dataset_and_model_agree(tmp_path, model3):
    data = dataset(tmp_path, {"train": [[0, 1, 2, 255], [0, 2]], "validation": [[1, 2]]})
    report = check_labels(data, model3)
    assert report.ok and not report.warnings
    assert codes(report) == ["scanned", "scanned", "agree"]
    assert report.scans[0].values == {0: 512 + 256, 1: 256, 2: 512 + 256, 255: 256}
    assert report.to_json_dict()["errors"] == 0


def test_ids_0_to_k_with_0_other_need_reduce_labels(tmp_path, model3):
    masks = {"train": [[0, 1, 2, 3], [0, 3]]}
    report = check_labels(dataset(tmp_path, masks), model3)
    assert codes(report, "error") == ["needs_reduce_labels"]
    finding = report.errors[0]
    assert "0..3" in finding.message and "--reduce-labels" in finding.fix
    fixed = check_labels(dataset(tmp_path / "again", masks, reduce_labels=True), model3)
    assert fixed.ok and "needs_reduce_labels" not in codes(fixed)


def test_already_reduced_masks_with_reduce_labels_are_a_double_reduction(tmp_path, model3):
    data = dataset(tmp_path, {"train": [[0, 1, 2, 255], [0, 1, 255]], "validation": [[0, 2, 255]]},
                   reduce_labels=True)
    report = check_labels(data, model3)
    assert codes(report, "error") == ["double_reduction"]
    assert "--no-reduce-labels" in report.errors[0].fix and "'wall'" in report.errors[0].message
    with pytest.raises(LabelConventionError, match="double reduction"):
        refuse_double_reduction(data, "train")
    with pytest.raises(TrainingError, match="double reduction"):
        train(data, model3, TrainSettings(output_dir=tmp_path / "run", max_steps=1, device="cpu"))
    with pytest.raises(LabelConventionError, match="--no-reduce-labels"):
        evaluate_split(data, "validation", Predictor(model3, device="cpu"))
    assert not (tmp_path / "run").exists()
    refuse_double_reduction(dataset(tmp_path / "ok", {"train": [[0, 1, 2, 3]]}, reduce_labels=True), "train")


def test_a_rare_last_class_missing_from_the_quick_look_is_confirmed_before_refusing(tmp_path):
    # 3 classes read with reduce_labels: dataset ids 1..3, 0 'other', 255 boundaries; id 3 in one mask of 40
    masks = [[0, 1, 2, 255]] * 40
    masks[7] = [0, 1, 3, 255]
    data = dataset(tmp_path, {"train": masks}, reduce_labels=True)
    assert 7 not in sample_indices(40, 16)  # the quick look misses it
    refuse_double_reduction(data, "train")  # the confirming look finds it: not refused
    with pytest.raises(LabelConventionError, match=r"\(in 40 train masks\)"):
        refuse_double_reduction(dataset(tmp_path / "reduced", {"train": [[0, 1, 2, 255]] * 40},
                                        reduce_labels=True), "train")


def test_stray_values_beyond_the_label_map_are_listed(tmp_path, model3):
    report = check_labels(dataset(tmp_path, {"train": [[0, 1, 2], [0, 7, 9]]}), model3)
    assert codes(report, "error") == ["stray_values"]
    assert "[7, 9]" in report.errors[0].message and "train" in report.errors[0].message


def test_a_head_that_disagrees_with_the_dataset(tmp_path, model3, model4):
    report = check_labels(dataset(tmp_path, {"train": [[0, 1, 2]]}), model4)
    assert codes(report, "error") == ["head_size"]
    assert "4 classes" in report.errors[0].message and "3" in report.errors[0].message
    # The 150-vs-151 trap in small: the label map counts 0 "other", the model was trained without it.
    other = dataset(tmp_path / "other", {"train": [[0, 1, 2, 3]]}, names=["other"] + NAMES)
    report = check_labels(other, model3)
    head = next(f for f in report.errors if f.code == "head_size")
    assert "the model has 3 classes" in head.fix and "0 = 'other'" in head.fix and "--reduce-labels" in head.fix


def test_ignore_indexes_and_the_processor_are_compared(tmp_path):
    loaded = load_model("scratch", label_map=LabelMap.from_names(NAMES), reduce_labels=True, image_size=32)
    data = dataset(tmp_path, {"train": [[0, 1, 2, 3]]}, reduce_labels=True)
    loaded.model.config.semantic_loss_ignore_index = -100
    loaded.processor.do_reduce_labels = True
    report = check_labels(data, loaded, metric_ignore_index=0)
    assert sorted(codes(report, "error")) == ["metric_ignore_index", "processor_reduce"]
    assert codes(report, "warning") == ["loss_ignore_index"]
    clash = dataset(tmp_path / "clash", {"train": [[0, 1, 2]]}, ignore_index=1)
    assert "ignore_is_class" in codes(check_labels(clash, load_model(
        "scratch", label_map=LabelMap.from_names(NAMES), reduce_labels=False, image_size=32)), "error")


def test_all_ignored_masks_are_a_warning_and_the_sample_is_deterministic(tmp_path, model3):
    data = dataset(tmp_path, {"train": [[0, 1], [255], [2], [255], [1, 2]]})
    report = check_labels(data, model3)
    assert codes(report, "warning") == ["all_ignored"] and "2 of 5" in report.warnings[0].message
    sampled = scan_split(data, "train", sample=3)
    assert (sampled.scanned, sampled.total) == (3, 5) and sampled == scan_split(data, "train", sample=3)
    assert sample_indices(5, 3) == [0, 2, 4] and sample_indices(2, 200) == [0, 1]
    assert "scanned 3 of 5" in next(f.message for f in check_labels(data, model3, sample=3).findings
                                    if f.code == "scanned")


def test_the_batch_guard_counts_all_ignored_batches(caplog):
    guard = IgnoredBatchGuard(255)
    with caplog.at_level(logging.WARNING, logger="segstudio.core.data.label_guard"):
        assert guard.should_skip(torch.full((2, 4, 4), 255), step=3)
    assert not guard.should_skip(torch.tensor([[255, 1]]))
    assert guard.skipped == 1 and "step 3" in caplog.text


def test_training_skips_batches_whose_pixels_are_all_ignored(tmp_path, caplog):
    data = dataset(tmp_path, {"train": [[0, 1, 2], [255], [1, 2], [255]]})
    loaded = load_model("scratch", label_map=data.label_map, reduce_labels=False, image_size=32)
    settings = TrainSettings(output_dir=tmp_path / "run", max_steps=4, batch_size=1, image_size=32, device="cpu",
                             logging_steps=1, save_steps=100)
    with caplog.at_level(logging.WARNING, logger="segstudio.core.data.label_guard"):
        result = train(data, loaded, settings)
    assert result.skipped_batches == 2 and caplog.text.count("every pixel is ignored") == 2
    losses = [log["loss"] for log in result.history if "loss" in log]
    assert len(losses) == 4 and all(np.isfinite(losses))


def test_an_all_ignored_batch_moves_no_weight_even_with_weight_decay(tmp_path):
    data = dataset(tmp_path, {"train": [[255], [255]]})
    loaded = load_model("scratch", label_map=data.label_map, reduce_labels=False, image_size=32)
    before = {name: value.detach().clone() for name, value in loaded.model.state_dict().items()}
    settings = TrainSettings(output_dir=tmp_path / "run", max_steps=2, batch_size=1, image_size=32, device="cpu",
                             logging_steps=1, save_steps=100, weight_decay=0.1)
    result = train(data, loaded, settings)
    after = loaded.model.state_dict()
    assert result.skipped_batches == 2
    # the optimizer steps were skipped: no decay, no moments; only batch-norm statistics may follow the batches
    moved = [name for name, value in before.items()
             if not torch.equal(value, after[name]) and "running_" not in name and "num_batches" not in name]
    assert moved == []


def test_a_labelled_batch_after_an_ignored_one_still_trains(tmp_path):
    data = dataset(tmp_path, {"train": [[255], [0, 1, 2]]})
    loaded = load_model("scratch", label_map=data.label_map, reduce_labels=False, image_size=32)
    before = loaded.model.decode_head.classifier.weight.detach().clone()
    settings = TrainSettings(output_dir=tmp_path / "run", max_steps=2, batch_size=1, image_size=32, device="cpu",
                             logging_steps=1, save_steps=100, weight_decay=0.1)
    result = train(data, loaded, settings)
    assert result.skipped_batches == 1
    assert not torch.equal(before, loaded.model.decode_head.classifier.weight)

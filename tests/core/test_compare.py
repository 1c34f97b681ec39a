"""Checkpoint A/B comparison: flip maps, per-class changes and per-image flips, through the core and the CLI."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from helpers import needs_demo_model

from segstudio.cli.entry import main
from segstudio.core.evaluation.compare import (
    BROKEN,
    FIXED,
    by_delta,
    compare_split,
    flip_counts,
    flip_map,
    ground_truth,
)
from segstudio.core.evaluation.scoring import evaluate_split
from segstudio.core.inference.predictor import Predictor
from segstudio.core.model.loading import load_model, save_checkpoint

LIMIT = 6
SUPPRESSED = 7  # "person", in every one of the first images; the demo class whose head is zeroed in model B


def test_flip_map_marks_fixed_and_broken_and_skips_ignored():
    gt = np.array([[0, 1, 2, 255], [1, 1, 0, 255]], np.uint8)
    a = np.array([[0, 2, 2, 3], [0, 1, 1, 0]], np.uint8)
    b = np.array([[1, 1, 2, 0], [1, 1, 0, 3]], np.uint8)
    flips = flip_map(a, b, gt)
    assert flips.tolist() == [[BROKEN, FIXED, 0, 0], [FIXED, 0, FIXED, 0]]
    assert flip_counts(a, b, gt) == (3, 1)
    assert flip_counts(a, a, gt) == (0, 0)
    with pytest.raises(ValueError, match="shapes differ"):
        flip_map(a, b[:, :2], gt)


@pytest.fixture(scope="module")
def demo():
    from segstudio.core.data.sources import load_source

    return load_source("demo")


@pytest.fixture(scope="module")
def model_a():
    return load_model("demo")


@pytest.fixture(scope="module")
def model_b(model_a):
    """The demo model with one class's classifier row zeroed and its bias pushed down: it never predicts it."""
    changed = copy.deepcopy(model_a)
    classifier = changed.model.decode_head.classifier
    with torch.no_grad():
        classifier.weight[SUPPRESSED] = 0
        classifier.bias[SUPPRESSED] = -1e4
    return changed


@needs_demo_model
def test_a_model_against_itself_changes_nothing(demo, model_a):
    predictor = Predictor(model_a, device="cpu")
    comparison = compare_split(demo, "validation", predictor, predictor, limit=LIMIT)
    assert len(comparison.images) == LIMIT
    assert all(i.fixed == 0 and i.broken == 0 and i.net == 0 for i in comparison.images)
    defined = [c for c in comparison.classes if not math.isnan(c.iou_a)]
    assert defined and all(c.delta == 0 for c in defined)
    assert comparison.mean_iou_delta == 0
    assert comparison.most_improved() == [] and comparison.most_regressed() == []


@needs_demo_model
def test_comparison_matches_two_separate_evaluations(demo, model_a, model_b):
    comparison = compare_split(demo, "validation", Predictor(model_a, device="cpu"),
                               Predictor(model_b, device="cpu"), limit=LIMIT)
    alone_a = evaluate_split(demo, "validation", Predictor(model_a, device="cpu"), limit=LIMIT)
    alone_b = evaluate_split(demo, "validation", Predictor(model_b, device="cpu"), limit=LIMIT)
    rows_a, rows_b = alone_a.class_rows(), alone_b.class_rows()
    for change in comparison.classes:
        expected_a, expected_b = rows_a[change.class_id].iou, rows_b[change.class_id].iou
        assert change.iou_a == expected_a or (math.isnan(change.iou_a) and math.isnan(expected_a))
        assert change.iou_b == expected_b or (math.isnan(change.iou_b) and math.isnan(expected_b))
    assert comparison.classes[SUPPRESSED].iou_b == 0.0 < comparison.classes[SUPPRESSED].iou_a
    assert by_delta(comparison.classes)[-1].class_id in {c.class_id for c in comparison.classes}
    assert comparison.mean_iou_delta == alone_b.metrics["mean_iou"] - alone_a.metrics["mean_iou"]
    total_broken = 0
    for image in comparison.images:
        pred_a, pred_b = alone_a.images[image.index].prediction, alone_b.images[image.index].prediction
        gt = ground_truth(demo, "validation", image.index)
        valid = gt != 255
        assert image.fixed == np.count_nonzero((pred_a != gt) & (pred_b == gt) & valid)
        assert image.broken == np.count_nonzero((pred_a == gt) & (pred_b != gt) & valid)
        assert image.mean_iou_b == alone_b.images[image.index].mean_iou
        total_broken += image.broken
    assert total_broken > 0
    regressed = comparison.most_regressed(3)
    assert regressed and regressed == sorted(regressed, key=lambda i: i.net) and regressed[0].net < 0


@needs_demo_model
def test_cli_compare_writes_per_class_and_per_image_json(demo, model_b, tmp_path, capsys):
    folder = save_checkpoint(model_b.model, model_b.processor, model_b.label_map, model_b.convention,
                             tmp_path / "model-b")
    same = tmp_path / "same.json"
    assert main(["compare", "--dataset", "demo", "--model", "demo", "--model", "demo", "--limit", "3",
                 "--json", str(same)]) == 0
    document = json.loads(same.read_text())
    assert len(document["per_image"]) == 3
    assert all(row["fixed"] == 0 and row["broken"] == 0 for row in document["per_image"])
    assert all(row["delta"] in (0, None) for row in document["per_class"])
    capsys.readouterr()
    changed = tmp_path / "changed.json"
    assert main(["compare", "--dataset", "demo", "--model", "demo", "--model", str(folder), "--limit", "3",
                 "--json", str(changed)]) == 0
    out = capsys.readouterr().out
    document = json.loads(changed.read_text())
    row = document["per_class"][SUPPRESSED]
    assert row["iou_b"] == 0 and row["delta"] == pytest.approx(-row["iou_a"])
    assert sum(r["broken"] for r in document["per_image"]) > 0
    assert "most regressed by B:" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["id", "class"])
    end = lines.index("most improved by B:" if "most improved by B:" in lines else "most improved by B: none")
    assert lines[end - 1].split()[0] == str(SUPPRESSED)  # sorted by change: the loss comes last
    assert end - header > 2


def test_cli_compare_needs_two_models(capsys):
    code = main(["compare", "--dataset", "demo", "--model", "demo"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "exactly two models" in err[0]


@needs_demo_model
def test_cli_compare_on_a_split_without_ground_truth_says_so(capsys):
    code = main(["compare", "--dataset", "demo", "--split", "test", "--model", "demo", "--model", "demo",
                 "--limit", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "no ground truth" in err[-1] and "Traceback" not in "\n".join(err)

"""Label-error ranking: probabilities against torch's softmax, confident-learning thresholds, the suspected map,
streaming summaries against the map, and ``segstudio label-issues``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import needs_demo_model

from segstudio.cli.entry import main
from segstudio.cli.label_issues import safe_cell
from segstudio.core.data.ade_folder import write_ade_folder
from segstudio.core.data.demo_dataset import make_demo
from segstudio.core.inference.predictor import upsample_argmax, upsample_confidence
from segstudio.core.review.label_issues import LEVELS, LabelIssueCollector, softmin_score, suspected_map

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smooth_logits(channels: int, height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, channels, max(2, height // 4), max(2, width // 4), generator=generator) * 6
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)[0]


@pytest.mark.parametrize(("channels", "out", "budget"), [(6, (70, 90), 1 << 22), (12, (57, 83), 3000)])
def test_probabilities_are_torchs_softmax_of_the_upsampled_logits(channels, out, budget) -> None:
    """Whole and banded: ids are predict's, given / top are softmax(F.interpolate(logits)) at the label / max."""
    logits = smooth_logits(channels, 16, 20, seed=channels)
    labels = np.random.default_rng(0).integers(0, channels, out).astype(np.uint8)
    labels[:5] = 255  # ignored: probability 0
    ids, given, top = upsample_confidence(logits, out, labels, max_elements=budget)
    full = F.interpolate(logits[None], size=out, mode="bilinear", align_corners=False)[0].softmax(dim=0)
    np.testing.assert_array_equal(ids, upsample_argmax(logits, out, max_elements=budget))
    np.testing.assert_allclose(top, full.max(dim=0).values.numpy(), atol=1e-5)
    picked = full.gather(0, torch.from_numpy(np.minimum(labels, channels - 1).astype(np.int64))[None])[0]
    np.testing.assert_allclose(given[5:], picked.numpy()[5:], atol=1e-5)
    assert (given[:5] == 0).all()
    assert upsample_confidence(logits, out, None)[1] is None


def planted_image(rng: np.random.Generator, num_labels: int = 3, size: int = 32):
    """Labels in bands, a model that agrees (p=0.9) except in a planted square relabelled 0 -> 2 (model: 0)."""
    truth = (np.arange(size)[:, None] * num_labels // size).repeat(size, axis=1)
    labels = truth.copy()
    labels[2:8, 2:8] = 2
    labels[-3:, -3:] = 255  # ignored
    ids = truth.copy()
    top = np.full(labels.shape, 0.9, np.float32)
    given = np.where(labels == ids, 0.9, 0.05).astype(np.float32)
    given[labels == 255] = 0
    noise = rng.random(labels.shape) < 0.02  # the model's own hesitations: unsure and wrong on a few pixels
    noise[2:8, 2:8] = False
    ids[noise] = (truth[noise] + 1) % num_labels
    top[noise], given[noise] = 0.5, 0.4
    return labels.astype(np.uint8), ids.astype(np.uint8), given, top


def test_thresholds_are_mean_self_confidence_per_class_ignoring_ignored_pixels() -> None:
    rng = np.random.default_rng(1)
    collector = LabelIssueCollector(3)
    images = [planted_image(rng) for _ in range(3)]
    for index, (labels, ids, given, top) in enumerate(images):
        collector.add(index, labels, ids, given, top)
    labels = np.concatenate([image[0].ravel() for image in images])
    given = np.concatenate([image[2].ravel() for image in images])
    expected = [given[labels == k].astype(np.float64).mean() for k in range(3)]
    np.testing.assert_allclose(collector.thresholds(), expected)


def test_the_planted_region_is_suspected_and_counts_equal_the_map() -> None:
    rng = np.random.default_rng(2)
    collector = LabelIssueCollector(3)
    images = [planted_image(rng) for _ in range(4)]
    clean = images[0][1].copy()  # a fifth image whose labels are exactly the model's prediction
    images.append((clean.copy(), clean, np.full(clean.shape, 0.9, np.float32), np.full(clean.shape, 0.9, np.float32)))
    for index, (labels, ids, given, top) in enumerate(images):
        collector.add(index, labels, ids, given, top)
    report = collector.report({i: f"img{i}" for i in range(5)})
    by_index = {image.index: image for image in report.images}
    for index, (labels, ids, given, top) in enumerate(images):
        flagged = suspected_map(labels, ids, given, top, report.thresholds)
        assert by_index[index].suspected == int(flagged.sum())
        assert not flagged[labels == 255].any()
        if index < 4:
            assert flagged[2:8, 2:8].all()
            assert by_index[index].pairs[0] == (2, 0, 36)
    assert report.images[-1].index == 4 and report.images[-1].suspected == 0
    assert [image.score for image in report.images] == sorted(image.score for image in report.images)


def test_image_score_is_softmin_of_confidence_calibrated_by_class_thresholds() -> None:
    """Equal, to the histogram's quantisation, to softmin over min(1, p_k / t_k) of every labelled pixel."""
    rng = np.random.default_rng(4)
    collector = LabelIssueCollector(3)
    images = [planted_image(rng) for _ in range(3)]
    for index, (labels, ids, given, top) in enumerate(images):
        given[labels != 255] = rng.random(int((labels != 255).sum()))
        collector.add(index, labels, ids, given, top)
    report = collector.report({})
    for image in report.images:
        labels, _, given, _ = images[image.index]
        known = labels != 255
        calibrated = np.minimum(1.0, given[known] / report.thresholds[labels[known]])
        assert image.score == pytest.approx(softmin_score(calibrated), abs=2 / LEVELS)


def test_a_class_nobody_labelled_is_never_a_confident_prediction() -> None:
    labels = np.zeros((4, 4), np.uint8)
    ids = np.full((4, 4), 1, np.uint8)
    given, top = np.full((4, 4), 0.01, np.float32), np.full((4, 4), 0.99, np.float32)
    assert not suspected_map(labels, ids, given, top, np.array([0.5, np.nan])).any()
    assert suspected_map(labels, ids, given, top, np.array([0.5, 0.5])).all()


def test_softmin_is_cleanlabs_published_formula() -> None:
    """cleanlab: image score = <p, softmax((1 - p) / T)>, T = 0.1; tends to the minimum as T shrinks."""
    p = np.random.default_rng(3).random(1000)
    weights = np.exp((1 - p) / 0.1)
    assert softmin_score(p) == pytest.approx(float(p @ weights / weights.sum()))
    assert softmin_score(p, temperature=1e-4) == pytest.approx(p.min(), abs=1e-3)
    assert softmin_score(np.array([], np.float32)) == 1.0


def test_threshold_levels_split_probabilities_at_the_same_step_in_counts_and_map() -> None:
    """A pixel exactly at a threshold's quantised level counts as reaching it, in both."""
    labels = np.zeros((1, 2), np.uint8)
    ids = np.ones((1, 2), np.uint8)
    given = np.array([[0.0, 0.0]], np.float32)
    top = np.array([[10 / LEVELS, 9.5 / LEVELS]], np.float32)
    flagged = suspected_map(labels, ids, given, top, np.array([0.5, 10.2 / LEVELS]))
    assert flagged.tolist() == [[True, False]]


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+x", "-y", "@z", "a=b", 3)] == ["'=1+1", "'+x", "'-y", "'@z", "a=b", 3]


def test_scanning_for_label_issues_leaves_the_evaluation_unchanged() -> None:
    """The same pass: predictions, per-image confusions and metrics equal a plain evaluate_split's."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from segstudio.core.evaluation.scoring import evaluate_split
    from segstudio.core.inference.predictor import Predictor
    from segstudio.core.model.loading import LoadedModel, LoadReport, new_processor
    from segstudio.core.review.label_issues import scan_split

    dataset = make_demo(train=0, validation=3, test=0, size=48)
    label_map = dataset.label_map
    config = SegformerConfig(hidden_sizes=[8, 16, 32, 64], decoder_hidden_size=32, depths=[1, 1, 1, 1],
                             id2label=dict(label_map.id2label), label2id=label_map.label2id)
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(config).eval()
    predictor = Predictor(LoadedModel(model, new_processor(32), label_map, dataset.convention, LoadReport("tiny"),
                                      "tiny"), device="cpu", batch_size=2)
    plain = evaluate_split(dataset, "validation", predictor)
    scanned, report = scan_split(dataset, "validation", predictor, keep_predictions=True)
    assert scanned.metrics.keys() == plain.metrics.keys()
    np.testing.assert_array_equal(scanned.matrix, plain.matrix)
    for a, b in zip(plain.images, scanned.images, strict=True):
        np.testing.assert_array_equal(a.prediction, b.prediction)
    assert sorted(image.index for image in report.images) == [0, 1, 2]
    assert all(image.labelled > 0 for image in report.images)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "ADEChallengeData2016"
    write_ade_folder(make_demo(train=2, validation=4, test=0), out)
    return out


@needs_demo_model
def test_cli_ranks_every_image_writes_json_and_csv_and_names_a_broken_one(small_demo, tmp_path, capsys) -> None:
    broken = small_demo / "images" / "validation" / "zz_broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (small_demo / "annotations" / "validation" / "zz_broken.png").write_bytes(b"not a png")
    try:
        code = main(["label-issues", "--dataset", str(small_demo), "--model", "demo", "--json",
                     str(tmp_path / "issues.json"), "--csv", str(tmp_path / "issues.csv")])
    finally:
        broken.unlink()
        (small_demo / "annotations" / "validation" / "zz_broken.png").unlink()
    captured = capsys.readouterr()
    assert code == 1 and "zz_broken" in captured.err and "Traceback" not in captured.err
    document = json.loads((tmp_path / "issues.json").read_text())
    scores = [image["score"] for image in document["images"]]
    assert len(scores) == 4 and scores == sorted(scores)
    assert set(document["thresholds"]) <= {"wall", "building", "sky", "floor", "tree", "road", "grass", "person",
                                           "car", "water"}
    with open(tmp_path / "issues.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file_name"] for row in rows] == [image["file_name"] for image in document["images"]]
    assert [int(row["suspected_pixels"]) for row in rows] == [i["suspected_pixels"] for i in document["images"]]


@needs_demo_model
def test_cli_usage_errors_are_one_line_with_status_2(small_demo, capsys) -> None:
    assert main(["label-issues", "--dataset", str(small_demo), "--model", "demo", "--split", "test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segstudio: error: ") and "test" in err[0]

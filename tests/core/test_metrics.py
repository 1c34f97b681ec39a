"""Metrics: the streaming confusion matrix against a faithful re-implementation of evaluate's mean_iou."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segstudio.core.metrics import confusion as metrics
from segstudio.core.metrics import pixel_counts
from segstudio.core.metrics.confusion import (
    METRIC_KEYS,
    ClassStats,
    ConfusionMatrix,
    ImageConfusion,
    class_table,
    json_safe,
    mean_iou,
    metrics_from_matrix,
    top_confusions,
)
from segstudio.core.metrics.reference import reference_areas, reference_mean_iou

DTYPES = (np.uint8, np.uint16, np.int16, np.int64)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same_metrics(ours: dict, theirs: dict) -> None:
    assert sorted(ours) == sorted(theirs) == sorted(METRIC_KEYS)
    for key in ("mean_iou", "mean_accuracy", "overall_accuracy"):
        assert isinstance(ours[key], float), key
        np.testing.assert_equal(ours[key], float(theirs[key]), err_msg=key)
    for key in ("per_category_iou", "per_category_accuracy"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


@st.composite
def mask_pairs(draw, num_labels: int | None = None, dtype=None, runs: bool | None = None):
    """(preds, labels, num_labels, dtype): small masks with ignore, out-of-range and (for signed) negative values."""
    k = num_labels or draw(st.one_of(st.integers(1, 12), st.sampled_from([254, 255, 256, 300])))
    dtype = dtype or draw(st.sampled_from(DTYPES))
    info = np.iinfo(dtype)
    values = sorted(
        {v for v in (0, 1, 2, k - 1, k, k + 1, 254, 255, 256, 300, -1, -3) if info.min <= v <= info.max}
    )
    pool = st.one_of(st.integers(0, min(k + 2, info.max)), st.sampled_from(values))
    images = draw(st.integers(1, 3))
    preds, labels = [], []
    for _ in range(images):
        h, w = draw(st.integers(0, 6)), draw(st.integers(1, 6))
        repeat = draw(st.integers(1, 8)) if runs is None else (8 if runs else 1)
        shape = (h, w)
        label = np.array(draw(st.lists(pool, min_size=h * w, max_size=h * w)), dtype=dtype).reshape(shape)
        pred = np.array(draw(st.lists(pool, min_size=h * w, max_size=h * w)), dtype=dtype).reshape(shape)
        if draw(st.booleans()):  # mostly right, as real predictions are
            pred = np.where(np.arange(h * w).reshape(shape) % 3 == 0, pred, label).astype(dtype)
        labels.append(np.repeat(label, repeat, axis=1))
        preds.append(np.repeat(pred, repeat, axis=1))
    return preds, labels, k, dtype


@SETTINGS
@given(
    data=mask_pairs(), ignore=st.sampled_from([255, 255, 0, -1, 3]), nan=st.sampled_from([None, 0.0, -1.0])
)
def test_confusion_matrix_matches_reference(data, ignore, nan) -> None:
    preds, labels, k, _dtype = data
    matrix = ConfusionMatrix(k, ignore)
    for pred, label in zip(preds, labels, strict=True):
        matrix.update(pred, label)
    assert_same_metrics(
        matrix.compute(nan_to_num=nan), reference_mean_iou(preds, labels, k, ignore, nan_to_num=nan)
    )
    assert matrix.images == len(preds)


@SETTINGS
@given(
    data=mask_pairs(),
    reduce_labels=st.booleans(),
    nan=st.sampled_from([None, 0.0]),
    mapping=st.dictionaries(st.integers(0, 6), st.one_of(st.integers(0, 8), st.just(200)), max_size=3),
)
def test_mean_iou_matches_reference_with_label_map_and_reduce_labels(
    data, reduce_labels, nan, mapping
) -> None:
    preds, labels, k, _dtype = data
    label_map = mapping or None
    kwargs = {"nan_to_num": nan, "label_map": label_map, "reduce_labels": reduce_labels}
    expected = reference_mean_iou(preds, [lbl.copy() for lbl in labels], k, 255, **kwargs)
    assert_same_metrics(mean_iou(preds, labels, k, 255, **kwargs), expected)


def reduced_as_documented(label: np.ndarray, ignore: int) -> np.ndarray:
    """The reduction ``metrics.mean_iou`` documents for reduce_labels: 0 and the ignore index -> ignore, v -> v-1."""
    v = np.asarray(label).astype(np.int64)
    return np.where((v == 0) | (v == ignore), ignore, v - 1)


@SETTINGS
@given(data=mask_pairs(), ignore=st.sampled_from([3, 100, 254, 256, 65535, -1]))
def test_reduce_labels_with_another_ignore_index_differs_from_evaluate_only_as_documented(data, ignore) -> None:
    """evaluate hard-codes 255 for label 0: ours equals its algorithm on labels reduced as documented, and on
    labels without 0, 255 or the ignore index, its own reduce_labels."""
    preds, labels, k, _dtype = data
    ours = mean_iou(preds, labels, k, ignore, reduce_labels=True)
    documented = [reduced_as_documented(lbl, ignore) for lbl in labels]
    assert_same_metrics(ours, reference_mean_iou(preds, documented, k, ignore))
    clean = [np.where(np.isin(lbl, [0, 255, ignore]), 1, lbl).astype(lbl.dtype) for lbl in labels]
    assert_same_metrics(mean_iou(preds, clean, k, ignore, reduce_labels=True),
                        reference_mean_iou(preds, [lbl.copy() for lbl in clean], k, ignore, reduce_labels=True))


def test_reduce_labels_with_ignore_100_on_label_0() -> None:
    """Dataset ids [0, 1, 2] (0 = other), predicted [0, 0, 1]: evaluate makes label 0 into 255, not into the
    ignore index 100, and still counts that pixel's prediction as class 0 (IoU 1/2); SegStudio ignores it."""
    pred, label = np.array([[0, 0, 1]], np.uint8), np.array([[0, 1, 2]], np.uint8)
    theirs = reference_mean_iou([pred], [label.copy()], 3, 100, reduce_labels=True)
    ours = mean_iou([pred], [label], 3, 100, reduce_labels=True)
    np.testing.assert_array_equal(theirs["per_category_iou"], [0.5, 1.0, np.nan])
    np.testing.assert_array_equal(ours["per_category_iou"], [1.0, 1.0, np.nan])
    assert_same_metrics(mean_iou([pred], [label], 3, 255, reduce_labels=True),
                        reference_mean_iou([pred], [label.copy()], 3, 255, reduce_labels=True))


class ReferenceMetric:
    """Stands in for ``evaluate.load("mean_iou")`` (needs the Hub): its add / compute over its algorithm."""

    def __init__(self) -> None:
        self.preds: list[np.ndarray] = []
        self.references: list[np.ndarray] = []

    def add(self, prediction, reference) -> None:
        self.preds.append(np.asarray(prediction))
        self.references.append(np.array(reference))

    def compute(self, num_labels: int, ignore_index: int, reduce_labels: bool) -> dict:
        return reference_mean_iou(self.preds, self.references, num_labels, ignore_index, reduce_labels=reduce_labels)


@pytest.mark.parametrize("ignore", [255, 100])
def test_cross_check_agrees_with_reduce_labels_and_any_ignore_index(monkeypatch, ignore) -> None:
    from segstudio.core.evaluation import evaluate_cross_check as cross_check
    from segstudio.core.evaluation.scoring import EvaluationResult, ImageResult
    from segstudio.core.labels.label_map import LabelConvention

    monkeypatch.setattr(cross_check, "load_evaluate_mean_iou", lambda: (ReferenceMetric(), ""))
    rng = np.random.default_rng(7)
    annotations = [rng.integers(0, 6, (9, 11)).astype(np.uint8) for _ in range(3)]  # 0 = other, 1..5 = classes
    convention = LabelConvention(reduce_labels=True, ignore_index=ignore)
    matrix = ConfusionMatrix(5, ignore)
    images = []
    for index, annotation in enumerate(annotations):
        pred = rng.integers(0, 5, annotation.shape).astype(np.uint8)
        confusion = matrix.update(pred, convention.to_model_ids(annotation))
        images.append(ImageResult(index, f"{index}.png", "", confusion=confusion, prediction=pred))
    result = EvaluationResult(matrix.matrix.copy(), images, [], matrix.compute(), np.zeros(5), [], matrix)
    dataset = SimpleNamespace(splits={"validation": [{"annotation": a} for a in annotations]},
                              label_map=SimpleNamespace(num_labels=5), convention=convention)
    report = cross_check.cross_check(result, dataset, "validation")
    assert "ours agree (largest difference 0.00e+00)" in report
    assert ("reduced by SegStudio" in report) == (ignore != 255)


@SETTINGS
@given(
    data=mask_pairs(),
    mapping=st.dictionaries(
        st.integers(-2, 8), st.one_of(st.integers(0, 8), st.just(255)), min_size=1, max_size=4
    ),
)
def test_label_map_in_the_matrix_reads_original_labels(data, mapping) -> None:
    preds, labels, k, _dtype = data
    matrix = ConfusionMatrix(k, label_map=mapping)
    for pred, label in zip(preds, labels, strict=True):
        matrix.update(pred, label)
    assert_same_metrics(matrix.compute(), reference_mean_iou(preds, labels, k, label_map=mapping))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_label_map_is_not_applied_in_sequence(dtype) -> None:
    label = np.array([[1, 2, 3, 0]], dtype)
    mapped = metrics.apply_label_map(label, {1: 2, 2: 3})
    np.testing.assert_array_equal(mapped, [[2, 3, 3, 0]])
    np.testing.assert_array_equal(label, [[1, 2, 3, 0]])  # the caller's mask is untouched
    pred = np.array([[2, 2, 3, 0]], dtype)
    expected_iou = [1.0, np.nan, 0.5, 0.5]  # read in sequence, label 1 would become 3: [1, nan, 0, 1/3]
    for result in (
        reference_mean_iou([pred], [label], 4, label_map={1: 2, 2: 3}),
        mean_iou([pred], [label], 4, label_map={1: 2, 2: 3}),
    ):
        np.testing.assert_allclose(result["per_category_iou"], expected_iou)


def test_evaluates_documented_example() -> None:
    """The example in evaluate's mean_iou docstring, with the numbers it prints."""
    preds = [
        np.array([[1, 2], [3, 4], [5, 255]]),
        np.array([[2, 7], [9, 2], [3, 6]]),
        np.array([[2, 2, 3], [8, 2, 4], [3, 255, 2]]),
    ]
    labels = [
        np.array([[0, 3], [5, 4], [6, 255]]),
        np.array([[1, 7], [9, 2], [3, 6]]),
        np.array([[1, 2, 2], [8, 2, 1], [3, 255, 1]]),
    ]
    for result in (reference_mean_iou(preds, labels, 10, 255), mean_iou(preds, labels, 10, 255)):
        assert result["mean_iou"] == 0.47750000000000004
        assert result["mean_accuracy"] == 0.5916666666666666
        assert result["overall_accuracy"] == 0.5263157894736842
        np.testing.assert_allclose(result["per_category_iou"], [0, 0, 0.375, 0.4, 0.5, 0, 0.5, 1, 1, 1])
        np.testing.assert_allclose(result["per_category_accuracy"], [0, 0, 0.75, 2 / 3, 1, 0, 0.5, 1, 1, 1])


@SETTINGS
@given(data=mask_pairs(), ignore=st.sampled_from([255, 0]))
def test_image_confusion_matches_reference_areas_and_dense_matrix(data, ignore) -> None:
    preds, labels, k, _dtype = data
    for pred, label in zip(preds, labels, strict=True):
        single = ConfusionMatrix(k, ignore)
        image = single.update(pred, label)
        intersect, _union, pred_area, label_area = reference_areas(pred, label, k, ignore)
        np.testing.assert_array_equal(image.intersect, intersect)
        np.testing.assert_array_equal(image.pred_area, pred_area)
        np.testing.assert_array_equal(image.label_area, label_area)
        np.testing.assert_array_equal(image.dense(), single.matrix)
        assert image.cells.dtype == np.int32 and image.counts.dtype == np.int64
        assert np.all(np.diff(image.cells) > 0)
        valid = label != ignore
        wide_pred, wide_label = pred.astype(np.int64), label.astype(np.int64)
        stray = valid & ((wide_pred < 0) | (wide_pred >= k) | (wide_label < 0) | (wide_label >= k))
        assert image.out_of_range == single.out_of_range == int(stray.sum())
        theirs = reference_mean_iou([pred], [label], k, ignore)
        np.testing.assert_equal(image.mean_iou, float(theirs["mean_iou"]))
        np.testing.assert_equal(image.pixel_accuracy, float(theirs["overall_accuracy"]))
        dense = image.dense()
        for gt, pr in [(0, 0), (k - 1, 0), (0, k - 1), (k, 0), (-1, 0)]:
            expected = int(dense[gt, pr]) if 0 <= gt < k and 0 <= pr < k else 0
            assert image.count(gt, pr) == expected


def test_image_confusion_on_a_hand_built_image() -> None:
    label = np.array([[0, 0, 1, 1], [2, 2, 255, 7]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 9, 9]], np.uint8)
    image = ConfusionMatrix(3).update(pred, label)
    np.testing.assert_array_equal(image.dense(), [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert image.count(0, 1) == 1 and image.count(2, 0) == 1 and image.count(1, 0) == 0
    assert image.out_of_range == 1  # label 7 (predicted 9); the ignored pixel predicted 9 is not counted
    assert image.pixel_accuracy == pytest.approx(4 / 6)
    assert ImageConfusion(3, np.zeros(0, np.int32), np.zeros(0, np.int64)).pixel_accuracy != 0.0
    assert math.isnan(ConfusionMatrix(3).update(pred, np.full_like(label, 255)).pixel_accuracy)


def test_both_kernel_paths_and_word_scan_agree(monkeypatch) -> None:
    rng = np.random.default_rng(7)
    blobby = np.repeat(rng.integers(0, 12, size=(40, 12)), 20, axis=1).astype(np.uint8)  # ~5% run starts
    noisy = rng.integers(0, 12, size=(40, 240)).astype(np.uint8)
    pred = np.where(rng.random(blobby.shape) < 0.02, noisy, blobby).astype(np.uint8)
    label = np.where(rng.random(blobby.shape) < 0.01, 255, blobby).astype(np.uint8)
    expected = reference_mean_iou([pred, noisy], [label, label], 10)
    for fraction in (0.25, 0.0, 1.0):
        monkeypatch.setattr(pixel_counts, "RUNS_MAX_FRACTION", fraction)
        matrix = ConfusionMatrix(10)
        matrix.update(pred, label)
        matrix.update(noisy, label)
        assert_same_metrics(matrix.compute(), expected)


def test_noisy_byte_masks_with_strays_count_every_pixel() -> None:
    rng = np.random.default_rng(11)
    values = np.array([0, 1, 2, 5, 9, 10, 11, 200, 254, 255], np.uint8)  # K = 10: 10..254 are strays, 255 ignored
    label, pred = rng.choice(values, size=(2, 48, 64))
    counter = pixel_counts.RunCounter(10, 255)
    change = np.ones(label.size, bool)
    change[:-1] = label.ravel()[1:] != label.ravel()[:-1]
    assert counter._run_ends(change) is None  # too noisy for runs: the per-pixel path
    matrix = ConfusionMatrix(10)
    image = matrix.update(pred, label)
    assert_same_metrics(matrix.compute(), reference_mean_iou([pred], [label], 10))
    np.testing.assert_array_equal(image.dense(), matrix.matrix)
    valid = label != 255
    assert image.out_of_range == int((valid & ((label >= 10) | (pred >= 10))).sum())


@pytest.mark.parametrize("dense_max", [pixel_counts.DENSE_TABLE_MAX, 0])
@pytest.mark.parametrize("runs", [1, 16])
def test_wide_values_and_many_classes(monkeypatch, dense_max, runs) -> None:
    monkeypatch.setattr(pixel_counts, "DENSE_TABLE_MAX", dense_max)  # 0: sparse counting, as for huge label sets
    rng = np.random.default_rng(3)
    label = np.repeat(rng.integers(-5, 1200, size=(30, 40)).astype(np.int32), runs, axis=1)
    pred = np.repeat(rng.integers(0, 1100, size=(30, 40)).astype(np.int64), runs, axis=1)
    label[::4] = pred[::4]
    for k in (3, 300, 1000):
        matrix = ConfusionMatrix(k, ignore_index=1000)
        matrix.update(pred, label)
        assert_same_metrics(matrix.compute(), reference_mean_iou([pred], [label], k, 1000))


@pytest.mark.parametrize("dtype", [">u2", ">i2", ">i4", "<u2"])
def test_byte_order_of_wide_masks_does_not_matter(dtype) -> None:
    rng = np.random.default_rng(5)
    label = np.repeat(rng.integers(0, 320, size=(12, 10)), 6, axis=1).astype(dtype)
    pred = np.where(rng.random(label.shape) < 0.2, rng.integers(250, 330, size=label.shape), label).astype(dtype)
    label[0, :7] = 300  # ignored
    matrix = ConfusionMatrix(310, ignore_index=300)
    matrix.update(pred, label)
    assert_same_metrics(matrix.compute(), reference_mean_iou([pred], [label], 310, 300))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_negative_ignore_index_in_signed_masks(dtype) -> None:
    label = np.array([[-1, 0, 1, -1, -3, 2, 2, 0]], dtype)
    pred = np.array([[0, 0, 1, 2, 1, -3, 2, 0]], dtype)
    matrix = ConfusionMatrix(3, ignore_index=-1)
    image = matrix.update(pred, label)
    assert_same_metrics(matrix.compute(), reference_mean_iou([pred], [label], 3, -1))
    assert image.out_of_range == 2  # the -3 label and the -3 prediction; the two -1 labels are ignored


def test_bool_masks_and_bad_inputs() -> None:
    truth = np.array([[True, False], [True, True]])
    matrix = ConfusionMatrix(2)
    matrix.update(truth, truth)
    assert matrix.compute()["mean_iou"] == 1.0
    with pytest.raises(ValueError, match=r"prediction shape \(2, 2\) differs from label shape \(2, 3\)"):
        matrix.update(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    with pytest.raises(TypeError, match="integer class ids"):
        matrix.update(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="at least 1"):
        ConfusionMatrix(0)


@SETTINGS
@given(data=mask_pairs(dtype=np.uint8), seed=st.integers(0, 2**16))
def test_image_order_does_not_matter(data, seed) -> None:
    preds, labels, k, _dtype = data
    order = np.random.default_rng(seed).permutation(len(preds))
    forward, shuffled = ConfusionMatrix(k), ConfusionMatrix(k)
    for pred, label in zip(preds, labels, strict=True):
        forward.update(pred, label)
    for i in order:
        shuffled.update(preds[i], labels[i])
    np.testing.assert_array_equal(forward.matrix, shuffled.matrix)
    assert_same_metrics(forward.compute(), shuffled.compute())


@SETTINGS
@given(data=mask_pairs(num_labels=8, dtype=np.int16), seed=st.integers(0, 2**16))
def test_relabelling_classes_permutes_per_class_results(data, seed) -> None:
    preds, labels, k, _dtype = data
    perm = np.random.default_rng(seed).permutation(k)

    def relabel(mask: np.ndarray) -> np.ndarray:
        inside = (mask >= 0) & (mask < k)
        return np.where(inside, perm[np.clip(mask, 0, k - 1)], mask).astype(mask.dtype)

    before, after = ConfusionMatrix(k), ConfusionMatrix(k)
    for pred, label in zip(preds, labels, strict=True):
        before.update(pred, label)
        after.update(relabel(pred), relabel(label))
    old, new = before.compute(), after.compute()
    for key in ("per_category_iou", "per_category_accuracy"):
        np.testing.assert_array_equal(new[key][perm], old[key])
    np.testing.assert_array_equal(after.matrix[np.ix_(perm, perm)], before.matrix)
    for key in ("mean_iou", "mean_accuracy", "overall_accuracy"):
        assert new[key] == pytest.approx(old[key], rel=1e-12, nan_ok=True)


@SETTINGS
@given(first=mask_pairs(num_labels=6), second=mask_pairs(num_labels=6))
def test_merging_equals_one_matrix_over_all_images(first, second) -> None:
    a, b, together = ConfusionMatrix(6), ConfusionMatrix(6), ConfusionMatrix(6)
    for matrix, (preds, labels, _k, _dtype) in [(a, first), (b, second)]:
        for pred, label in zip(preds, labels, strict=True):
            matrix.update(pred, label)
            together.update(pred, label)
    assert a.merge(b) is a
    np.testing.assert_array_equal(a.matrix, together.matrix)
    assert a.out_of_range == together.out_of_range and a.images == together.images
    assert_same_metrics(a.compute(), together.compute())


def test_add_regroups_stored_images_and_reset_clears() -> None:
    rng = np.random.default_rng(1)
    pairs = [(rng.integers(0, 6, (9, 9)), rng.integers(0, 7, (9, 9))) for _ in range(4)]
    whole = ConfusionMatrix(5)
    stored = [whole.update(p, lbl) for p, lbl in pairs]
    regrouped = ConfusionMatrix(5)
    for image in stored:
        regrouped.add(image)
    np.testing.assert_array_equal(regrouped.matrix, whole.matrix)
    assert regrouped.out_of_range == whole.out_of_range > 0
    assert_same_metrics(regrouped.compute(), whole.compute())
    whole.reset()
    assert whole.matrix.sum() == 0 and whole.out_of_range == 0 and whole.images == 0
    with pytest.raises(ValueError, match="5 classes"):
        ConfusionMatrix(4).add(stored[0])
    with pytest.raises(ValueError, match="cannot merge"):
        ConfusionMatrix(5, ignore_index=0).merge(regrouped)


@SETTINGS
@given(data=mask_pairs(num_labels=6), edited=mask_pairs(num_labels=6), ignore=st.sampled_from([255, 0]))
def test_replacing_an_image_equals_the_reference_on_the_edited_images(data, edited, ignore) -> None:
    """An image's confusion taken out and its edited mask's put in: evaluate's numbers on the edited set, and
    taking the edit out again gives back exactly the matrix before."""
    preds, labels, k, _dtype = data
    matrix = ConfusionMatrix(k, ignore)
    stored = [matrix.update(pred, label) for pred, label in zip(preds, labels, strict=True)]
    before = matrix.matrix.copy(), matrix.out_of_range, matrix.images
    new_label = np.resize(edited[1][0], labels[0].shape).astype(labels[0].dtype)  # any new labels, same shape
    matrix.remove(stored[0])
    new_image = ConfusionMatrix(k, ignore).update(preds[0], new_label)
    matrix.add(new_image)
    assert matrix.images == len(preds)
    assert_same_metrics(matrix.compute(), reference_mean_iou(preds, [new_label, *labels[1:]], k, ignore))
    matrix.remove(new_image)
    matrix.add(stored[0])
    np.testing.assert_array_equal(matrix.matrix, before[0])
    assert (matrix.out_of_range, matrix.images) == before[1:]


def test_removing_an_image_the_matrix_does_not_hold_is_refused() -> None:
    matrix = ConfusionMatrix(3)
    image = ConfusionMatrix(3).update(np.array([[0, 1]]), np.array([[0, 2]]))
    with pytest.raises(ValueError, match="does not hold"):
        matrix.remove(image)
    matrix.add(image)
    matrix.remove(image)
    assert matrix.matrix.sum() == 0 and matrix.images == 0


def test_metrics_from_matrix_and_nan_to_num() -> None:
    matrix = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 4]])
    result = metrics_from_matrix(matrix)
    np.testing.assert_allclose(result["per_category_iou"], [3 / 6, 0 / 1, 4 / 6])
    np.testing.assert_allclose(result["per_category_accuracy"], [3 / 4, np.nan, 4 / 6])
    assert result["mean_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert result["overall_accuracy"] == pytest.approx(7 / 10)
    empty = metrics_from_matrix(np.zeros((2, 2), np.int64), nan_to_num=-1)
    assert empty["mean_iou"] == empty["overall_accuracy"] == -1.0
    np.testing.assert_array_equal(empty["per_category_iou"], [-1.0, -1.0])
    assert math.isnan(metrics_from_matrix(np.zeros((2, 2), np.int64))["mean_iou"])


def test_class_table_on_a_hand_built_matrix() -> None:
    matrix = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    rows = class_table(matrix, np.array([4, 2, 0]))
    assert rows[0] == ClassStats(class_id=0, iou=5 / 8, accuracy=5 / 6, gt_pixels=6, pred_pixels=7, images=4)
    assert rows[1] == ClassStats(class_id=1, iou=3 / 6, accuracy=3 / 5, gt_pixels=5, pred_pixels=4, images=2)
    assert math.isnan(rows[2].iou) and math.isnan(rows[2].accuracy) and rows[2].gt_pixels == 0
    assert class_table(matrix)[0].images is None
    with pytest.raises(ValueError, match="square"):
        class_table(np.zeros((2, 3)))


def test_class_table_from_a_matrix_counts_stray_values_like_compute() -> None:
    matrix = ConfusionMatrix(2)
    matrix.update(np.array([[0, 1, 9]]), np.array([[0, 1, 1]]))
    rows = class_table(matrix)
    assert rows[1].gt_pixels == 2 and rows[1].iou == pytest.approx(0.5)
    assert [r.iou for r in rows] == list(matrix.compute()["per_category_iou"])
    assert class_table(matrix.matrix)[1].gt_pixels == 1


def test_top_confusions_on_a_hand_built_matrix() -> None:
    matrix = np.array([[10, 4, 1], [6, 20, 0], [0, 4, 2]])
    assert top_confusions(matrix) == [
        (1, 0, 6, 6 / 26),
        (0, 1, 4, 4 / 15),
        (2, 1, 4, 4 / 6),
        (0, 2, 1, 1 / 15),
    ]
    assert top_confusions(matrix, k=2) == [(1, 0, 6, 6 / 26), (0, 1, 4, 4 / 15)]
    assert top_confusions(np.eye(3, dtype=np.int64)) == []
    first = top_confusions(matrix)[0]
    assert (first.gt, first.pred, first.pixels) == (1, 0, 6)


def test_json_safe_turns_nan_into_none_and_numpy_into_python() -> None:
    result = ConfusionMatrix(3)
    result.update(np.array([[0, 1]]), np.array([[0, 0]]))
    safe = json_safe({**result.compute(), "rows": class_table(result.matrix), 3: np.int64(7)})
    assert safe["per_category_iou"] == [0.5, 0.0, None]
    assert safe["rows"][2]["iou"] is None and safe["rows"][0]["gt_pixels"] == 2
    assert safe["3"] == 7 and type(safe["3"]) is int
    assert json_safe([np.float32(np.inf), np.nan, (1, np.bool_(True))]) == [None, None, [1, True]]
    json.dumps(safe, allow_nan=False)


def _cached_evaluate_mean_iou() -> Path | None:
    """evaluate's mean_iou.py if an earlier evaluate.load left it in the modules cache (never downloaded here).

    The paths follow evaluate's config without importing it (a slow import, only paid when the file exists).
    """
    if importlib.util.find_spec("evaluate") is None:
        return None
    hf_home = os.environ.get(
        "HF_HOME", os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    )
    modules = Path(os.environ.get("HF_MODULES_CACHE", os.path.join(hf_home, "modules"))).expanduser()
    patterns = [
        "evaluate_modules/metrics/evaluate-metric--mean_iou/*/mean_iou.py",
        "datasets_modules/metrics/mean_iou/*/mean_iou.py",
    ]
    hits = [hit for pattern in patterns for hit in sorted(modules.glob(pattern))]
    return hits[0] if hits else None


def test_against_evaluates_own_code_when_cached() -> None:
    path = _cached_evaluate_mean_iou()
    if path is None:
        pytest.skip(
            "evaluate's mean_iou metric script is not on this machine: evaluate.load('mean_iou') fetches it from "
            "the Hugging Face Hub and tests run offline; reference_mean_iou stands in for it"
        )
    spec = importlib.util.spec_from_file_location("evaluate_mean_iou", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 12, (20, 30)).astype(np.uint8) for _ in range(3)]
    preds = [np.where(rng.random(lbl.shape) < 0.3, rng.integers(0, 12, lbl.shape), lbl) for lbl in labels]
    for reduce_labels in (False, True):
        theirs = module.mean_iou(preds, [lbl.copy() for lbl in labels], 10, 255, reduce_labels=reduce_labels)
        assert_same_metrics(mean_iou(preds, labels, 10, 255, reduce_labels=reduce_labels), theirs)
    documented = [reduced_as_documented(lbl, 100) for lbl in labels]
    assert_same_metrics(mean_iou(preds, labels, 10, 100, reduce_labels=True), module.mean_iou(preds, documented, 10, 100))


@pytest.mark.skipif(importlib.util.find_spec("evaluate") is None, reason="needs evaluate")
def test_the_cross_check_never_runs_a_mean_iou_script_from_the_working_folder(tmp_path, monkeypatch) -> None:
    """evaluate.load("mean_iou") runs ./mean_iou/mean_iou.py when there is one: a script in the folder where
    segstudio runs would be the metric the numbers are checked against (and run as code)."""
    from segstudio.core.evaluation import evaluate_cross_check as cross_check

    script = tmp_path / "mean_iou" / "mean_iou.py"
    script.parent.mkdir()
    script.write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\nraise SystemExit\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    cross_check.load_evaluate_mean_iou()
    assert not (tmp_path / "ran").exists()
    assert Path.cwd() == tmp_path

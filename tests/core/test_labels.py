"""The one module that owns the mapping between dataset ids, model ids and the ignore index."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segstudio.core.labels.label_map import (
    IGNORE_INDEX,
    LabelConvention,
    LabelMap,
    LabelMapError,
    labels_json,
)


def test_reduce_labels_maps_other_to_ignore_and_shifts_classes():
    convention = LabelConvention(reduce_labels=True)
    mask = np.array([[0, 1, 2, 150, 255]], np.uint8)
    assert convention.to_model_ids(mask).tolist() == [[255, 0, 1, 149, 255]]
    assert convention.to_model_ids(mask).dtype == np.uint8


def test_no_reduction_keeps_ids():
    convention = LabelConvention(reduce_labels=False)
    mask = np.array([[0, 1, 255]], np.uint8)
    assert convention.to_model_ids(mask).tolist() == [[0, 1, 255]]
    assert convention.to_dataset_ids(mask).tolist() == [[0, 1, 255]]


@given(arrays(np.uint8, (4, 5), elements=st.integers(1, 254)))
def test_reduction_round_trips_for_every_class_id(mask):
    convention = LabelConvention(reduce_labels=True)
    assert np.array_equal(convention.to_dataset_ids(convention.to_model_ids(mask)), mask)


def test_stray_values_are_reported_not_clipped():
    convention = LabelConvention(reduce_labels=True)
    mask = np.array([[0, 1, 10, 11, 12, 255]], np.uint8)
    assert convention.stray_values(mask, num_labels=10).tolist() == [11, 12]
    assert convention.to_model_ids(mask).max() == 255  # 255 stays ignored, 12 -> 11 is kept, not clipped
    assert 11 in convention.to_model_ids(mask)


def test_ade20k_map_ships_with_150_classes_and_palette():
    ade = LabelMap.ade20k()
    assert ade.num_labels == 150
    assert ade.id2label[0] == "wall" and ade.palette.shape == (150, 3)
    assert ade.name(IGNORE_INDEX) == "ignored"


def test_from_names_uses_ade_colours_for_ade_names():
    ade = LabelMap.ade20k()
    demo = LabelMap.from_names(["sky", "car"])
    assert demo.palette[0].tolist() == ade.palette[ade.label2id["sky"]].tolist()
    assert demo.palette[1].tolist() == ade.palette[ade.label2id["car"]].tolist()


def test_label_map_json_round_trip_and_errors(tmp_path):
    label_map = LabelMap.from_names(["a", "b", "c"])
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(labels_json(label_map, LabelConvention(True))))
    again = LabelMap.from_json(path)
    assert again.id2label == label_map.id2label and again.digest() == label_map.digest()
    with pytest.raises(LabelMapError, match="not found"):
        LabelMap.from_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LabelMapError, match="cannot read"):
        LabelMap.from_json(tmp_path / "bad.json")
    with pytest.raises(LabelMapError, match="without gaps"):
        LabelMap({0: "a", 2: "c"}, np.zeros((2, 3), np.uint8))


def test_a_label_map_naming_one_id_twice_is_refused_not_collapsed(tmp_path):
    """"9" and "09" (or one key written twice) are one class id: Python's int() and json.loads would keep the last
    name without a word, so class 9 would be scored under another name."""
    names = {str(i): f"c{i}" for i in range(10)}
    (tmp_path / "padded.json").write_text(json.dumps({"id2label": {**names, "09": "car"}}))
    with pytest.raises(LabelMapError, match="'09', '9'.* same class id"):
        LabelMap.from_json(tmp_path / "padded.json")
    (tmp_path / "twice.json").write_text('{"id2label": {"0": "wall", "1": "sky", "1": "road"}}')
    with pytest.raises(LabelMapError, match="'1' appears twice"):
        LabelMap.from_json(tmp_path / "twice.json")

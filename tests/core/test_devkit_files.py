"""The ADE20K release's own devkit files (tests/fixtures/ade20k-devkit): objectInfo150.txt and .csv name the
classes as transformers' published ADE id2label does, and a matched model and release check clean."""

from __future__ import annotations

import csv
import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.data.ade_folder import read_object_info
from segstudio.core.data.sources import load_source

DEVKIT = Path(__file__).parent.parent / "fixtures" / "ade20k-devkit"
SAMPLES = [f"ADE_val_{i:08d}" for i in (1, 2, 3)]


def published_ade_names() -> list[str]:
    """transformers' / mmsegmentation's ADE20K id2label, as shipped in resources/ade20k-150.json."""
    data = json.loads(resources.files("segstudio.resources").joinpath("ade20k-150.json").read_text("utf-8"))
    return [data["id2label"][str(i)] for i in range(150)]


def csv_rows() -> list[dict[str, str]]:
    with (DEVKIT / "objectInfo150.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_txt_synonyms_are_the_csv_names():
    """The .csv joins synonyms and the words of each synonym with ";": the .txt's synonyms, split the same way,
    must give the .csv's Name column row by row (83 rows have more than one synonym)."""
    synonyms = read_object_info(DEVKIT / "objectInfo150.txt")
    rows = csv_rows()
    assert [int(row["Idx"]) for row in rows] == list(range(1, 151)) and len(synonyms) == 150
    for words, row in zip(synonyms, rows, strict=True):
        assert ";".join(part for word in words for part in word.split()) == row["Name"].strip()
    assert sum(len(words) > 1 for words in synonyms) == 83
    assert synonyms[1] == ("building", "edifice")


def test_the_release_names_are_the_published_id2label():
    names = published_ade_names()
    synonyms = read_object_info(DEVKIT / "objectInfo150.txt")
    firsts = [row["Name"].split(";")[0] for row in csv_rows()]
    for i, (name, words) in enumerate(zip(names, synonyms, strict=True)):
        assert name.strip() in words
        if i != 89:  # the published id2label names class 89 by its second synonym, "television receiver"
            assert name.strip() == words[0] and name.strip().split()[0] == firsts[i]
    assert synonyms[89][:2] == ("television", "television receiver")


@pytest.fixture
def real_ade_folder(tmp_path) -> Path:
    """ADEChallengeData2016 with the devkit's three validation samples and its objectInfo150.txt."""
    root = tmp_path / "ADEChallengeData2016"
    for kind, suffix in (("images", ".jpg"), ("annotations", ".png")):
        (root / kind / "validation").mkdir(parents=True)
        for stem in SAMPLES:
            shutil.copyfile(DEVKIT / f"{stem}{suffix}", root / kind / "validation" / f"{stem}{suffix}")
    for name in ("objectInfo150.txt", "sceneCategories.txt"):
        shutil.copyfile(DEVKIT / name, root / name)
    return root


def test_an_ade_folder_gets_the_published_names_and_colours(real_ade_folder):
    data = load_source(str(real_ade_folder))
    assert [data.label_map.id2label[i] for i in range(150)] == published_ade_names()
    palette = json.loads(resources.files("segstudio.resources").joinpath("ade20k-150.json").read_text("utf-8"))
    assert data.label_map.palette.tolist() == palette["palette"]
    assert data.scene_names("validation") == ["abbey", "access_road"]


@pytest.fixture(scope="module")
def published_ade_model(tmp_path_factory) -> Path:
    """A tiny random SegFormer with the published 150-class ADE id2label, saved as transformers saves one."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    names = published_ade_names()
    config = SegformerConfig(
        hidden_sizes=[8, 16, 16, 16], num_attention_heads=[1, 1, 1, 1], depths=[1, 1, 1, 1],
        decoder_hidden_size=16, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
    )
    folder = tmp_path_factory.mktemp("models") / "ade150"
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}, do_reduce_labels=True).save_pretrained(folder)
    return folder


def test_check_finds_no_shift_for_the_matched_release(real_ade_folder, published_ade_model, tmp_path, capsys):
    report = tmp_path / "check.json"
    code = main(["check", "--dataset", str(real_ade_folder), "--model", str(published_ade_model),
                 "--json", str(report)])
    out = capsys.readouterr().out
    findings = json.loads(report.read_text())["findings"]
    assert "shifted" not in out and [f for f in findings if f["code"] == "class_names"] == []
    assert code == 0 and not [f for f in findings if f["severity"] == "error"]


def test_a_label_map_shifted_by_one_is_refused_not_scored(real_ade_folder, published_ade_model, tmp_path, capsys):
    """A label map that puts "other" at 0 and so moves every class up one id (and loses the last): with the same
    class count as the published head, each class would be scored against its neighbour with exit 0."""
    names = published_ade_names()
    shifted = tmp_path / "labels.json"
    shifted.write_text(json.dumps({"id2label": {str(i): name for i, name in enumerate(["other", *names[:-1]])}}),
                       encoding="utf-8")
    argv = ["evaluate", "--dataset", str(real_ade_folder), "--model", str(published_ade_model),
            "--label-map", str(shifted), "--no-reduce-labels"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("segstudio: error:")]
    assert "shifted by one" in line and "model 0 'wall' is dataset 1 'wall'" in line and "Traceback" not in err
    report = tmp_path / "check.json"
    main(["check", "--dataset", str(real_ade_folder), "--model", str(published_ade_model), "--label-map",
          str(shifted), "--no-reduce-labels", "--json", str(report)])
    codes = {f["code"]: f["severity"] for f in json.loads(report.read_text())["findings"]}
    assert codes.get("class_shift") == "error" and "class_names" not in codes


def test_values_beyond_the_label_map_that_the_check_did_not_sample_are_named(real_ade_folder, published_ade_model,
                                                                             monkeypatch, capsys):
    """The label check reads a sample of the masks (200 per split); an id outside the 150 classes in a mask it did
    not read is scored as evaluate scores it, and said in one warning line instead of passing unnoticed."""
    from segstudio.core.data import label_guard

    mask_path = real_ade_folder / "annotations" / "validation" / "ADE_val_00000003.png"
    mask = np.array(Image.open(mask_path))
    mask[:4, :4] = 200  # ADE ids run 0..150
    Image.fromarray(mask).save(mask_path)
    monkeypatch.setattr(label_guard, "sample_indices", lambda count, sample: [0])  # a split larger than the sample
    assert main(["evaluate", "--dataset", str(real_ade_folder), "--model", str(published_ade_model)]) == 0
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("segstudio: warning:")]
    assert "1 mask(s) hold values beyond the label map" in line and "ADE_val_00000003" in line and "[200]" in line

"""``--corrections`` on the command line: corrected masks read instead of the originals, never written over them.

The reference is a second ADE20K folder, written here with PIL, whose mask was fixed on disk: a dataset read with
a correction must give exactly its numbers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.data import load_source
from segstudio.core.review import CorrectionsStore, apply_corrections

NAMES = ["wall", "building, edifice", "sky", "floor, flooring", "tree", "road, route", "grass", "person",
         "car, auto", "water"]
SIZE = (64, 48)  # width, height


def _write_ade(root: Path, masks: dict[str, np.ndarray]) -> Path:
    """An ADEChallengeData2016 folder as the release lays it out: JPEG images, 8-bit PNG masks (0 = other,
    class k stored as k + 1), objectInfo150.txt (tab-separated, synonyms after commas), sceneCategories.txt."""
    rng = np.random.default_rng(7)
    for folder in ("images/validation", "annotations/validation"):
        (root / folder).mkdir(parents=True)
    for stem, mask in masks.items():
        image = rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / "validation" / f"{stem}.jpg", quality=95)
        Image.fromarray(mask, "L").save(root / "annotations" / "validation" / f"{stem}.png")
    lines = ["Idx\tRatio\tTrain\tVal\tName"] + [f"{i + 1}\t0.1000\t10\t5\t{name}" for i, name in enumerate(NAMES)]
    (root / "objectInfo150.txt").write_text("\n".join(lines) + "\n")
    (root / "sceneCategories.txt").write_text("".join(f"{stem} street\n" for stem in masks))
    return root


def _masks() -> dict[str, np.ndarray]:
    masks = {}
    for i in range(3):
        mask = np.zeros((SIZE[1], SIZE[0]), np.uint8)
        mask[: 16 + 8 * i] = 3  # sky
        mask[16 + 8 * i:, : 30] = 6  # road
        mask[16 + 8 * i:, 30:] = 7  # grass
        masks[f"ADE_val_0000000{i + 1}"] = mask
    return masks


def _fixed(mask: np.ndarray) -> np.ndarray:
    fixed = mask.copy()
    fixed[30:, 10:50] = 9  # a car the annotator missed
    return fixed


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(path.relative_to(root).as_posix().encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """The dataset, the same dataset with one mask fixed on disk, and a corrections folder with that fix."""
    base = tmp_path_factory.mktemp("corrections")
    masks = _masks()
    original = _write_ade(base / "original" / "ADEChallengeData2016", masks)
    fixed_masks = {**masks, "ADE_val_00000002": _fixed(masks["ADE_val_00000002"])}
    reference = _write_ade(base / "fixed-on-disk" / "ADEChallengeData2016", fixed_masks)
    store = CorrectionsStore(base / "corrections", dataset=str(original))
    store.save("validation", "images/validation/ADE_val_00000002.jpg", fixed_masks["ADE_val_00000002"],
               masks["ADE_val_00000002"])
    return {"original": original, "reference": reference, "corrections": base / "corrections", "base": base}


def _scores(path: Path) -> dict:
    document = json.loads(path.read_text())
    return {key: document[key] for key in ("mean_iou", "overall_accuracy", "per_class", "per_category_iou")} | {
        "per_image": [{k: v for k, v in image.items() if k != "file_name"} for image in document["per_image"]]}


@pytest.mark.slow
def test_evaluate_with_corrections_gives_the_numbers_of_the_mask_fixed_on_disk(folders, tmp_path) -> None:
    before = _tree_digest(folders["original"])
    runs = {
        "plain": ["--dataset", str(folders["original"])],
        "corrected": ["--dataset", str(folders["original"]), "--corrections", str(folders["corrections"])],
        "reference": ["--dataset", str(folders["reference"])],
    }
    for name, dataset in runs.items():
        assert main(["evaluate", *dataset, "--model", "demo", "--json", str(tmp_path / name / "m.json")]) == 0
    corrected, reference = _scores(tmp_path / "corrected" / "m.json"), _scores(tmp_path / "reference" / "m.json")
    assert corrected == reference
    assert _scores(tmp_path / "plain" / "m.json") != reference  # the fix changes the numbers
    manifest = json.loads((tmp_path / "corrected" / "manifest.json").read_text())
    record = manifest["dataset"]["corrections"]
    assert record["folder"] == str(folders["corrections"].resolve()) and record["items"] == 1
    assert record["sha256"] == CorrectionsStore(folders["corrections"]).digest()
    assert json.loads((tmp_path / "plain" / "manifest.json").read_text())["dataset"]["corrections"] is None
    assert _tree_digest(folders["original"]) == before  # the dataset was only read


def test_apply_corrections_writes_a_corrected_copy_that_loads(folders) -> None:
    before = _tree_digest(folders["original"])
    output = folders["base"] / "copy"
    assert main(["apply-corrections", "--dataset", str(folders["original"]), "--corrections",
                 str(folders["corrections"]), "--output", str(output)]) == 0
    assert _tree_digest(folders["original"]) == before
    for mask in sorted((folders["reference"] / "annotations" / "validation").glob("*.png")):
        written = np.asarray(Image.open(output / "annotations" / "validation" / mask.name))
        assert np.array_equal(written, np.asarray(Image.open(mask))), mask.name
    for image in sorted((folders["original"] / "images" / "validation").glob("*.jpg")):  # JPEGs copied as they are
        assert (output / "images" / "validation" / image.name).read_bytes() == image.read_bytes()
    assert [line.split("\t")[-1] for line in (output / "objectInfo150.txt").read_text().splitlines()[1:]] == [
        name.split(",")[0] for name in NAMES]
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["dataset"]["corrections"]["sha256"] == CorrectionsStore(folders["corrections"]).digest()
    # the copy already holds the fixes: reading it with the same corrections is not refused
    again = apply_corrections(load_source(str(output)), folders["corrections"])
    assert again.corrections.items == 1


def test_apply_corrections_refuses_a_folder_that_is_not_empty(folders, tmp_path, capsys) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    code = main(["apply-corrections", "--dataset", str(folders["original"]), "--corrections",
                 str(folders["corrections"]), "--output", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not empty" in err[0]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("command", [
    ["evaluate", "--model", "demo"], ["check", "--model", "demo"], ["label-issues", "--model", "demo"],
    ["train", "--model", "demo", "--max-steps", "1", "--output", "{tmp}/run"],
    ["apply-corrections", "--output", "{tmp}/copy"],
])
def test_a_corrections_folder_of_another_dataset_is_refused(folders, tmp_path, capsys, command) -> None:
    other = _write_ade(tmp_path / "other" / "ADEChallengeData2016",
                       {f"ADE_val_0000000{i}": np.full((SIZE[1], SIZE[0]), 3, np.uint8) for i in (1, 2, 3)})
    argv = [part.replace("{tmp}", str(tmp_path)) for part in command]
    code = main([*argv, "--dataset", str(other), "--corrections", str(folders["corrections"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and "does not fit" in err[0] and str(folders["corrections"]) in err[0], err
    assert not (tmp_path / "run").exists() and not (tmp_path / "copy").exists()


def test_check_reads_the_corrected_masks(folders, tmp_path) -> None:
    """A correction that writes an id no class has is what the label check then finds."""
    stray = tmp_path / "stray"
    original = np.asarray(Image.open(folders["original"] / "annotations" / "validation" / "ADE_val_00000001.png"))
    bad = original.copy()
    bad[0, 0] = 200
    CorrectionsStore(stray).save("validation", "images/validation/ADE_val_00000001.jpg", bad, original)
    for name, extra in (("plain", []), ("corrected", ["--corrections", str(stray)])):
        main(["check", "--dataset", str(folders["original"]), "--model", "demo", *extra,
              "--json", str(tmp_path / f"{name}.json")])
    plain, corrected = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("plain", "corrected"))
    assert "200" not in plain["scanned"][0]["values"] and corrected["scanned"][0]["values"]["200"] == 1
    assert corrected["corrections"]["items"] == 1 and plain["corrections"] is None


@pytest.mark.slow
def test_label_issues_with_corrections_rank_as_the_fixed_dataset(folders, tmp_path) -> None:
    for name, dataset in (("corrected", ["--dataset", str(folders["original"]), "--corrections",
                                         str(folders["corrections"])]),
                          ("reference", ["--dataset", str(folders["reference"])])):
        assert main(["label-issues", *dataset, "--model", "demo", "--json", str(tmp_path / f"{name}.json")]) == 0
    corrected, reference = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("corrected", "reference"))
    assert corrected.pop("corrections")["items"] == 1 and reference.pop("corrections") is None
    corrected.pop("dataset"), reference.pop("dataset")
    assert corrected == reference


@pytest.mark.parametrize("inside", ["original", "corrections"])
def test_apply_corrections_refuses_an_output_inside_its_inputs(folders, capsys, inside) -> None:
    output = folders[inside] / "corrected-copy"
    code = main(["apply-corrections", "--dataset", str(folders["original"]), "--corrections",
                 str(folders["corrections"]), "--output", str(output)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "inside" in err[0]
    assert not output.exists()


@pytest.mark.parametrize("command", [
    ["evaluate", "--model", "demo"],
    ["apply-corrections", "--output", "{tmp}/copy"],
])
def test_a_folder_that_holds_no_corrections_is_refused_not_read_as_none(folders, tmp_path, capsys, command) -> None:
    """A mistyped --corrections (a folder of other files) would give the original masks' numbers as if corrected."""
    elsewhere = tmp_path / "notes"
    elsewhere.mkdir()
    (elsewhere / "todo.txt").write_text("fix the sky", encoding="utf-8")
    argv = [part.replace("{tmp}", str(tmp_path)) for part in command]
    code = main([*argv, "--dataset", str(folders["original"]), "--corrections", str(elsewhere)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "holds no corrections (no corrections.json)" in err[0], err
    assert not (tmp_path / "copy").exists() and sorted(p.name for p in elsewhere.iterdir()) == ["todo.txt"]

"""The Python API on the demo: each call gives what the core (and transformers) give for the same input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import segstudio as ss


@pytest.fixture(scope="module")
def demo():
    return ss.load_dataset("demo")


@pytest.fixture(scope="module")
def model():
    return ss.load_model("demo", device="cpu")


def test_the_api_is_the_package_face_and_import_stays_light():
    import subprocess
    import sys

    code = ("import sys, segstudio; assert 'numpy' not in sys.modules and 'torch' not in sys.modules;"
            "print(sorted(segstudio.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for name in ("load_dataset", "load_model", "predict", "evaluate", "compare", "check", "export_masks", "train"):
        assert name in out
    with pytest.raises(AttributeError):
        ss.no_such_thing  # noqa: B018


def test_predict_takes_paths_images_and_arrays_and_matches_transformers(model, tmp_path):
    import torch
    from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

    from segstudio.core.model.location import DEMO_MODEL_DIR

    rng = np.random.default_rng(1)
    array = rng.integers(0, 255, (61, 83, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "a.png")
    by_path, by_image, by_array = ss.predict(model, [tmp_path / "a.png", Image.fromarray(array), array])
    assert by_path.shape == (61, 83) and np.array_equal(by_path, by_image) and np.array_equal(by_path, by_array)
    reference = SegformerForSemanticSegmentation.from_pretrained(str(DEMO_MODEL_DIR)).eval()
    processor = SegformerImageProcessor.from_pretrained(str(DEMO_MODEL_DIR))
    with torch.no_grad():
        logits = reference(**processor(Image.fromarray(array), return_tensors="pt")).logits
    expected = processor.post_process_semantic_segmentation(
        type("Out", (), {"logits": logits})(), target_sizes=[(61, 83)])[0].numpy()
    top2 = torch.nn.functional.interpolate(logits, size=(61, 83), mode="bilinear", align_corners=False)[0]
    values = torch.topk(top2, 2, dim=0).values
    sure = (values[0] - values[1]).numpy() > 1e-3
    assert np.array_equal(by_path[sure], expected[sure])


def test_evaluate_and_check_are_the_cli_s(model, demo, tmp_path):
    import subprocess
    import sys

    result = ss.evaluate(model, demo, "validation", limit=6)
    assert set(result.metrics) >= {"mean_iou", "mean_accuracy", "overall_accuracy", "per_category_iou"}
    out = tmp_path / "metrics.json"
    subprocess.run([sys.executable, "-m", "segstudio", "evaluate", "--dataset", "demo", "--model", "demo",
                    "--limit", "6", "--device", "cpu", "--json", str(out)], check=True, capture_output=True)
    cli = json.loads(out.read_text())
    assert cli["mean_iou"] == pytest.approx(result.metrics["mean_iou"], abs=1e-9)
    report = ss.check(demo, model, ["validation"])
    assert not [f for f in report.findings if f.severity == "error"]


def test_export_masks_writes_dataset_ids_and_refuses_files_in_the_way(model, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((20, 30, 3), 120, np.uint8)).save(photos / "p.jpg")
    assert ss.export_masks(model, [photos], tmp_path / "out", formats=("index", "color")) == 1
    written = np.asarray(Image.open(tmp_path / "out" / "p.png"))
    expected = model.convention.to_dataset_ids(ss.predict(model, [photos / "p.jpg"])[0])
    assert np.array_equal(written, expected)
    assert (tmp_path / "out" / "manifest.json").is_file() and (tmp_path / "out" / "color" / "p.png").is_file()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "p.png").write_bytes(b"my own file")
    from segstudio.core.export.writers import ExportError

    with pytest.raises(ExportError):
        ss.export_masks(model, [photos], tmp_path / "mine")
    assert (tmp_path / "mine" / "p.png").read_bytes() == b"my own file"


def test_scratch_needs_a_dataset(demo):
    with pytest.raises(ValueError, match="dataset"):
        ss.load_model("scratch")
    scratch = ss.load_model("scratch", dataset=demo, device="cpu")
    assert scratch.label_map.num_labels == demo.label_map.num_labels


def test_label_issues_is_evaluation_plus_a_ranking(model, demo):
    result, issues = ss.label_issues(model, demo, "validation", limit=6)
    plain = ss.evaluate(model, demo, "validation", limit=6)
    assert result.metrics["mean_iou"] == pytest.approx(plain.metrics["mean_iou"], abs=1e-12)
    scores = [image.score for image in issues.images]
    assert len(scores) == 6 and scores == sorted(scores)  # most suspicious (lowest label quality) first


def _devkit_ade_folder(root):
    """The devkit's three validation images and annotations in the ADEChallengeData2016 layout (150 classes)."""
    import shutil
    from pathlib import Path

    devkit = Path(__file__).resolve().parents[1] / "fixtures" / "ade20k-devkit"
    for folder in ("images/validation", "annotations/validation"):
        (root / folder).mkdir(parents=True)
    for stem in ("ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003"):
        shutil.copy(devkit / f"{stem}.jpg", root / "images" / "validation")
        shutil.copy(devkit / f"{stem}.png", root / "annotations" / "validation")
    for name in ("objectInfo150.txt", "sceneCategories.txt"):
        shutil.copy(devkit / name, root)
    return root


def test_evaluate_refuses_what_the_command_line_refuses(model, demo, tmp_path):
    """A 10-class model on the 150 ADE20K classes would be scored against the wrong classes (class k of one is not
    class k of the other); an unknown split or a limit below 1 would score nothing with no word said."""
    from segstudio.core.errors import SegStudioError

    ade = ss.load_dataset(str(_devkit_ade_folder(tmp_path / "ADEChallengeData2016")))
    assert ade.label_map.num_labels == 150
    with pytest.raises(SegStudioError, match="predicts 10 classes but the dataset's label map has 150"):
        ss.evaluate(model, ade)
    with pytest.raises(SegStudioError, match="predicts 10 classes"):
        ss.label_issues(model, ade)
    with pytest.raises(SegStudioError, match="has no nope split"):
        ss.evaluate(model, demo, split="nope")
    for limit in (0, -1):
        with pytest.raises(SegStudioError, match="at least 1"):
            ss.evaluate(model, demo, limit=limit)

"""``segstudio classify`` and core.classify against transformers' own forward of a classification checkpoint."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from imagenet_checkpoint import IMAGENET_FIRST_TEN, save_classifier
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.inference.classify import NotAClassifierError, has_classification_head, load_classifier
from segstudio.core.model.location import DEMO_MODEL_DIR, ModelLoadError

HUB_ID = "nvidia/mit-b0"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_classifier(tmp_path_factory.mktemp("classifier") / "mit-tiny-imagenet10")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    """Three photos-like images of different sizes and modes (JPEG, PNG, greyscale)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    paths = []
    for name, (h, w), mode in (("a.jpg", (48, 80), "RGB"), ("b.png", (90, 60), "RGB"), ("c.png", (33, 33), "L")):
        ys, xs = np.mgrid[0:h, 0:w]
        rgb = np.stack([xs * 255 // w, ys * 255 // h, rng.integers(0, 256, (h, w))], axis=-1).astype(np.uint8)
        Image.fromarray(rgb).convert(mode).save(folder / name)
        paths.append(folder / name)
    return paths


def reference_top(folder: Path, paths: list[Path], k: int) -> list[list[tuple[int, str, float]]]:
    """The seed's forward run, in transformers' own terms: processor, model, logits, id2label."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    pictures = [Image.open(p).convert("RGB") for p in paths]
    with torch.no_grad():
        logits = model(**processor(images=pictures, return_tensors="pt")).logits
    probs = logits.softmax(-1)
    out = []
    for row, best in zip(probs, logits.argmax(-1), strict=True):
        order = torch.argsort(row, descending=True)[:k].tolist()
        assert order[0] == int(best)
        out.append([(i, model.config.id2label[i], float(row[i])) for i in order])
    return out


def test_top_k_is_transformers_forward_with_the_checkpoint_names(checkpoint, images) -> None:
    classifier = load_classifier(str(checkpoint), "cpu")
    found = classifier.top_k([Image.open(p).convert("RGB") for p in images], k=5)
    expected = reference_top(checkpoint, images, 5)
    assert [[(s.class_id, s.label) for s in row] for row in found] == [[e[:2] for e in row] for row in expected]
    for row, ref in zip(found, expected, strict=True):
        assert [s.probability for s in row] == pytest.approx([e[2] for e in ref], abs=1e-6)
        assert [s.probability for s in row] == sorted((s.probability for s in row), reverse=True)
    assert {row[0].label for row in found} <= set(IMAGENET_FIRST_TEN)


def test_top_k_beyond_the_class_count_gives_every_class(checkpoint, images) -> None:
    classifier = load_classifier(str(checkpoint), "cpu")
    (row,) = classifier.top_k([Image.open(images[0]).convert("RGB")], k=50)
    assert sorted(s.class_id for s in row) == list(range(10))
    assert sum(s.probability for s in row) == pytest.approx(1.0, abs=1e-5)


def test_cli_json_lists_top_k_per_image_and_skips_a_bad_image(checkpoint, images, tmp_path, capsys) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    code = main(["classify", "--model", str(checkpoint), *map(str, images), str(broken), "--json", "--top-k", "3",
                 "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 1
    document = json.loads(out)
    expected = reference_top(checkpoint, images, 3)
    assert [entry["path"] for entry in document["images"]] == [str(p) for p in images]
    for entry, ref in zip(document["images"], expected, strict=True):
        assert [(c["id"], c["label"]) for c in entry["classes"]] == [e[:2] for e in ref]
        assert [c["probability"] for c in entry["classes"]] == pytest.approx([e[2] for e in ref], abs=1e-6)
    assert [s["path"] for s in document["skipped"]] == [str(broken)]
    assert f"skipped {broken}" in err and "Traceback" not in err


def test_cli_text_prints_five_ranked_lines_per_image(checkpoint, images, capsys) -> None:
    assert main(["classify", "--model", str(checkpoint), str(images[1])]) == 0
    lines = capsys.readouterr().out.splitlines()
    (ref,) = reference_top(checkpoint, images[1:2], 5)
    assert lines[0] == str(images[1])
    rows = [re.fullmatch(r"\s+(\d)\.\s+(\d+\.\d)%  (.+) \((\d+)\)", line).groups() for line in lines[1:]]
    assert rows == [(str(rank), f"{100 * p:.1f}", label, str(i)) for rank, (i, label, p) in enumerate(ref, start=1)]


def one_line_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()  # what building the fixtures printed
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segstudio: error:"), err
    return err[0]


def segmentation_checkpoint(folder: Path) -> Path:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(hidden_sizes=[8, 16, 24, 40], num_attention_heads=[1, 2, 2, 4], depths=[1, 1, 1, 1],
                             decoder_hidden_size=16, id2label={0: "wall", 1: "floor"}, label2id={"wall": 0, "floor": 1})
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor().save_pretrained(folder)
    return folder


def test_a_segmentation_checkpoint_is_refused_in_one_line(tmp_path, images, capsys) -> None:
    folder = segmentation_checkpoint(tmp_path / "seg")
    line = one_line_error(capsys, ["classify", "--model", str(folder), str(images[0])])
    assert "not an image classification checkpoint" in line and "SegformerForSemanticSegmentation" in line
    assert not has_classification_head(str(folder))
    line = one_line_error(capsys, ["classify", "--model", "scratch", str(images[0])])
    assert "no classification head" in line


@pytest.mark.skipif(not (Path(str(DEMO_MODEL_DIR)) / "config.json").exists(), reason="demo model not trained yet")
def test_the_demo_segmentation_model_is_refused(images, capsys) -> None:
    line = one_line_error(capsys, ["classify", "--model", "demo", str(images[0])])
    assert "demo is not an image classification checkpoint" in line


def test_a_classification_config_without_head_weights_is_refused(tmp_path, checkpoint) -> None:
    """A config naming the classifier over weights that lack it would classify with a random head."""
    folder = segmentation_checkpoint(tmp_path / "seg")
    config = json.loads((checkpoint / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "depths": [1, 1, 1, 1]}))
    with pytest.raises(NotAClassifierError, match="lacks weights of its classification model"):
        load_classifier(str(folder), "cpu")


def test_usage_errors_are_one_line(checkpoint, images, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "--model", str(checkpoint), str(images[0]), "--top-k", "0"])
    assert exit_info.value.code == 2
    assert "argument --top-k: must be at least 1" in capsys.readouterr().err
    assert "no such file or folder" in one_line_error(
        capsys, ["classify", "--model", str(checkpoint), str(tmp_path / "nope.jpg")])
    (tmp_path / "empty").mkdir()
    assert "no images found" in one_line_error(capsys, ["classify", "--model", str(checkpoint), str(tmp_path / "empty")])
    assert "model folder not found" in one_line_error(
        capsys, ["classify", "--model", str(tmp_path / "missing"), str(images[0])])


def hub_cache(root: Path, source: Path) -> Path:
    """A huggingface_hub cache holding ``source``'s files as the main revision of HUB_ID."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + HUB_ID.replace("/", "--"))
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for path in source.iterdir():
        shutil.copy(path, repo / "snapshots" / commit / path.name)
    return root


@pytest.fixture
def offline_cache(monkeypatch, tmp_path) -> Path:
    """An empty huggingface_hub cache and no network, as on a fresh offline machine (both read at call time)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path / "hub"


def test_a_hub_id_offline_with_an_empty_cache_is_one_clear_line(offline_cache, images, capsys) -> None:
    line = one_line_error(capsys, ["classify", "--model", HUB_ID, str(images[0])])
    assert line == (f"segstudio: error: {HUB_ID} is not in the local cache and the Hugging Face Hub is "
                    "unreachable; connect once to download it, or pass a local classification checkpoint folder")


def test_a_cached_hub_id_loads_through_from_pretrained(offline_cache, checkpoint, images, capsys) -> None:
    hub_cache(offline_cache, checkpoint)
    capsys.readouterr()
    assert main(["classify", "--model", HUB_ID, "--json", *map(str, images)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["architecture"] == "SegformerForImageClassification"
    expected = reference_top(checkpoint, images, 5)
    assert [[(c["id"], c["label"]) for c in e["classes"]] for e in document["images"]] == [
        [r[:2] for r in row] for row in expected]


def test_a_local_classifier_is_recognised_without_loading_weights(checkpoint, tmp_path) -> None:
    assert has_classification_head(str(checkpoint))
    (tmp_path / "no-config").mkdir()
    with pytest.raises(ModelLoadError, match="has no config.json"):
        has_classification_head(str(tmp_path / "no-config"))


def test_a_model_that_cannot_classify_is_named_before_torch_loads(tmp_path, images) -> None:
    """Checking the config needs no torch: a wrong --model is reported at once, as predict reports one."""
    import subprocess
    import sys

    folder = tmp_path / "seg"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "segformer",
                                                    "architectures": ["SegformerForSemanticSegmentation"]}))
    code = ("import sys; from segstudio.cli import main; status = main(sys.argv[1:]); "
            "print('torch' in sys.modules); sys.exit(status)")
    for model in (str(folder), str(tmp_path / "missing")):
        done = subprocess.run([sys.executable, "-c", code, "classify", "--model", model, str(images[0])],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stdout.split() == ["False"], done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr

"""manifest.json: the CLI's predict and evaluate write one beside their outputs, with the fields that trace them."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

from segstudio import __version__
from segstudio.cli.entry import main
from segstudio.core.export import manifest as manifest_module
from segstudio.core.export.manifest import id2label_sha256, model_revision
from segstudio.core.labels.label_map import LabelConvention, LabelMap
from segstudio.core.model.loading import load_model, save_checkpoint

NAMES = ["wall", "building", "sky"]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    label_map = LabelMap.from_names(NAMES)
    loaded = load_model("scratch", label_map=label_map, reduce_labels=False, image_size=32)
    out = tmp_path_factory.mktemp("models") / "three"
    return save_checkpoint(loaded.model, loaded.processor, label_map, LabelConvention(False), out)


@pytest.fixture
def pairs(tmp_path) -> Path:
    root = tmp_path / "data"
    for kind in ("images", "masks"):
        (root / kind / "train").mkdir(parents=True)
    for i in range(3):
        rgb = np.random.default_rng(i).integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(root / "images" / "train" / f"img_{i}.png")
        Image.fromarray(np.full((24, 24), i, np.uint8)).save(root / "masks" / "train" / f"img_{i}.png")
    (root / "images" / "train" / "broken.png").write_bytes(b"not a png")
    (root / "masks" / "train" / "broken.png").write_bytes(b"not a png")
    (root / "labels.json").write_text(json.dumps({"id2label": dict(enumerate(NAMES))}), encoding="utf-8")
    return root


def _weights_sha256(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def _check_common(manifest: dict, kind: str, model_folder: Path) -> None:
    assert manifest["kind"] == kind and manifest["manifest_version"] == 1
    assert manifest["model"]["name"] == str(model_folder.resolve())
    assert manifest["model"]["revision"] == _weights_sha256(model_folder)
    assert manifest["model"]["revision_kind"] == "sha256:model.safetensors"
    label_map = LabelMap.from_names(NAMES)
    assert manifest["labels"]["id2label_sha256"] == id2label_sha256(label_map)
    assert manifest["labels"]["id2label_sha256"].startswith(label_map.digest())
    assert manifest["labels"]["reduce_labels"] is False and manifest["labels"]["ignore_index"] == 255
    assert manifest["versions"] == {"segstudio": __version__, "torch": torch.__version__,
                                    "transformers": transformers.__version__}
    assert manifest["device"] == "cpu" and manifest["precision"] == "float32"
    created = datetime.strptime(manifest["created_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 600


def test_predict_writes_a_manifest_beside_the_masks(model_folder, pairs, tmp_path):
    out = tmp_path / "pred"
    code = main(["predict", "--model", str(model_folder), str(pairs / "images"), "--output", str(out),
                 "--device", "cpu", "--format", "index", "--format", "color"])
    assert code == 1  # the broken file is named and skipped
    manifest = json.loads((out / "manifest.json").read_text())
    _check_common(manifest, "predict", model_folder)
    assert manifest["inputs"] == [str((pairs / "images").resolve())] and manifest["dataset"] is None
    assert manifest["counts"] == {"images": 4, "written": 3, "skipped": 1}
    assert manifest["formats"] == ["index", "color"]
    assert len(list(out.rglob("*.png"))) == 6 and not list(out.rglob("*.tmp"))


def test_evaluate_writes_a_manifest_beside_each_metrics_file(model_folder, pairs, tmp_path):
    metrics, table = tmp_path / "json" / "m.json", tmp_path / "csv" / "m.csv"
    code = main(["evaluate", "--dataset", str(pairs), "--split", "train", "--model", str(model_folder),
                 "--device", "cpu", "--json", str(metrics), "--csv", str(table)])
    assert code == 1  # one broken image
    first = json.loads((metrics.parent / "manifest.json").read_text())
    second = json.loads((table.parent / "manifest.json").read_text())
    assert first == second
    _check_common(first, "evaluate", model_folder)
    assert first["dataset"] == {"source": str(pairs.resolve()), "split": "train", "corrections": None}
    assert first["counts"] == {"images": 4, "written": 3, "skipped": 1}
    assert first["metrics"] == [str(metrics), str(table)]


def test_evaluate_without_output_files_writes_no_manifest(model_folder, pairs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["evaluate", "--dataset", str(pairs), "--split", "train", "--model", str(model_folder), "--device", "cpu"])
    assert not list(tmp_path.rglob("manifest.json"))


def test_model_revisions(monkeypatch, tmp_path):
    assert model_revision("demo") == {"name": "demo", "revision": "demo", "revision_kind": "demo"}
    assert model_revision("scratch")["revision"] == "scratch"
    assert model_revision("someone/not-cached-model") == {"name": "someone/not-cached-model", "revision": None,
                                                          "revision_kind": "unknown"}
    commit = "0123456789abcdef0123456789abcdef01234567"
    cached = tmp_path / "models--nvidia--mit-b0" / "snapshots" / commit / "config.json"
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda repo, name: str(cached))
    assert model_revision("nvidia/mit-b0") == {"name": "nvidia/mit-b0", "revision": commit,
                                               "revision_kind": "hub-commit"}
    empty = tmp_path / "empty-model"
    empty.mkdir()
    assert model_revision(str(empty))["revision_kind"] == "unknown"


def test_weights_hash_follows_the_file(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"one")
    first = model_revision(str(folder))["revision"]
    (folder / "model.safetensors").write_bytes(b"two!")
    assert model_revision(str(folder))["revision"] == hashlib.sha256(b"two!").hexdigest() != first
    assert manifest_module.file_sha256(folder / "model.safetensors") == hashlib.sha256(b"two!").hexdigest()

"""The shipped demo checkpoint: what it claims in its README, measured on the demo validation split."""

from __future__ import annotations

import json
from pathlib import Path

from segstudio.core.data.sources import load_source
from segstudio.core.evaluation.scoring import evaluate_split
from segstudio.core.inference.predictor import Predictor
from segstudio.core.model.loading import load_model
from segstudio.core.model.location import DEMO_MODEL_DIR

DEMO_DIR = Path(str(DEMO_MODEL_DIR))


def test_demo_checkpoint_files_are_small_float32_safetensors():
    files = {p.name for p in DEMO_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
    assert sum(p.stat().st_size for p in DEMO_DIR.iterdir()) <= 16 * 1024 * 1024
    preprocessor = json.loads((DEMO_DIR / "preprocessor_config.json").read_text())
    assert preprocessor["do_reduce_labels"] is True


def test_demo_model_scores_on_the_demo_validation_split():
    dataset = load_source("demo")
    loaded = load_model("demo")
    assert loaded.label_map.id2label == dataset.label_map.id2label
    assert loaded.convention.reduce_labels is True
    result = evaluate_split(dataset, "validation", Predictor(loaded, device="cpu"), keep_predictions=False)
    assert len(result.images) == 48 and not result.skipped
    assert result.metrics["mean_iou"] >= 0.85

"""What the core tests share besides fixtures: the mark of tests that need the shipped demo model, a scratch model
for the tiny demo split (``conftest.tiny_demo``) and the error lines of a command's stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from segstudio.core.data.schema import SegDataset
from segstudio.core.model.loading import load_model
from segstudio.core.model.location import DEMO_MODEL_DIR

needs_demo_model = pytest.mark.skipif(
    not (Path(str(DEMO_MODEL_DIR)) / "config.json").exists(), reason="demo model not trained yet"
)


def scratch_model(dataset: SegDataset, image_size: int):
    """A SegFormer with random weights for the dataset's classes (the ADE20K convention)."""
    return load_model("scratch", label_map=dataset.label_map, reduce_labels=True, image_size=image_size)


def error_lines(err: str) -> list[str]:
    """The error lines of a command's stderr (which also carries the model report and the progress bar); a
    traceback there fails the test."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("segstudio: error:")]

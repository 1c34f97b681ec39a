"""Where a model spec points (the demo, a local folder or a Hub id), checked without importing torch or
transformers, so a mistyped path is reported at once."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from segstudio.core.errors import SegStudioError

DEMO_MODEL_DIR = resources.files("segstudio.resources") / "models" / "segformer-b0-demo"
TRY_INSTEAD = "use demo, scratch or a local model folder as the model"  # words for the window and the CLI
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelLoadError(SegStudioError):
    """A model cannot be loaded; the message is one line a person can act on."""


def locate_model(spec: str) -> str:
    """The folder or Hub id to load ``spec`` from, or a ModelLoadError for paths that cannot be a model."""
    if spec == "demo":
        folder = Path(str(DEMO_MODEL_DIR))
        if not (folder / "config.json").is_file():
            raise ModelLoadError(
                f"the demo model is not installed (expected in {folder}); use --model scratch"
            )
        return str(folder)
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelLoadError(f"{spec} is a file: a model folder (written by save_pretrained) is expected")
    if spec.startswith((".", "/", "~")) or "\\" in spec or not _HUB_ID.match(spec):
        raise ModelLoadError(f"model folder not found: {spec}")
    return spec

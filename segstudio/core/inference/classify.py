"""Image classification with a checkpoint that has a classification head (such as ``nvidia/mit-b0``, the
ImageNet-1k encoder SegFormer fine-tunes from): transformers' own forward, top-k classes from its ``id2label``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from segstudio.core.model.location import ModelLoadError, locate_model

if TYPE_CHECKING:  # imported where used: a mistyped model path is reported before torch loads (~1.5 s)
    import torch

DEFAULT_TOP_K = 5
_HEAD_SUFFIX = "ForImageClassification"
_OFFLINE_FIX = "connect once to download it, or pass a local classification checkpoint folder"


class NotAClassifierError(ModelLoadError):
    """The checkpoint has no image classification head (a segmentation model, say)."""


@dataclass(frozen=True)
class ClassScore:
    """One of an image's top classes: its id, name and softmax probability."""

    class_id: int
    label: str
    probability: float

    def to_json_dict(self) -> dict[str, Any]:
        return {"id": self.class_id, "label": self.label, "probability": self.probability}


@dataclass
class Classifier:
    """A classification model with its image processor, on one device."""

    model: Any
    processor: Any
    spec: str
    device: torch.device

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self.model.config.id2label.items()}

    @property
    def architecture(self) -> str:
        return type(self.model).__name__

    def logits(self, images: Sequence[Image.Image | np.ndarray]) -> torch.Tensor:
        """(N, num_labels) float32 logits: the checkpoint's processor, then the model's forward."""
        import torch

        inputs = self.processor(images=list(images), return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device, dtype=torch.float32)
        with torch.inference_mode():
            return self.model(pixel_values=pixel_values).logits.float().cpu()

    def top_k(self, images: Sequence[Image.Image | np.ndarray], k: int = DEFAULT_TOP_K) -> list[list[ClassScore]]:
        """Each image's ``k`` most probable classes, most probable first (at most num_labels of them)."""
        if not images:
            return []
        probs = self.logits(images).softmax(dim=-1)
        values, ids = probs.topk(min(k, probs.shape[-1]), dim=-1)
        names = self.id2label
        return [[ClassScore(i, names.get(i, str(i)), p) for p, i in zip(row_p, row_i, strict=True)]
                for row_p, row_i in zip(values.tolist(), ids.tolist(), strict=True)]


def _config_path(spec: str, location: str) -> Path:
    """config.json of a local folder, or of a Hub model (found or fetched as transformers would)."""
    if Path(location).is_dir():
        path = Path(location) / "config.json"
        if not path.is_file():
            raise ModelLoadError(f"{spec} has no config.json: not a saved model folder")
        return path
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(location, "config.json"))
    except LocalEntryNotFoundError:  # not cached, and the Hub unreachable or offline
        raise ModelLoadError(
            f"{spec} is not in the local cache and the Hugging Face Hub is unreachable; {_OFFLINE_FIX}") from None
    except (OSError, ValueError):
        raise ModelLoadError(f"no model {spec!r} on the Hugging Face Hub and no such local folder; check the name"
                             ) from None


def read_config(spec: str) -> tuple[str, dict]:
    """(where to load ``spec`` from, its config.json as a dict), without loading weights."""
    spec = str(spec).strip()
    if spec == "scratch":
        raise NotAClassifierError("scratch is a new segmentation model: it has no classification head")
    location = locate_model(spec)
    path = _config_path(spec, location)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"the config.json of {spec} cannot be read ({exc})") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"the config.json of {spec} is not a JSON object")
    return location, config


def check_classification_head(spec: str, config: dict) -> None:
    """NotAClassifierError unless the config names a ``...ForImageClassification`` architecture."""
    architectures = [str(a) for a in config.get("architectures") or []]
    if any(a.endswith(_HEAD_SUFFIX) for a in architectures):
        return
    held = " or ".join(architectures) or f"a {config.get('model_type', 'model')} without a recorded architecture"
    raise NotAClassifierError(
        f"{spec} is not an image classification checkpoint (it holds {held}); use one with a classification "
        "head, such as nvidia/mit-b0")


def has_classification_head(spec: str) -> bool:
    """True when ``spec``'s config names a classification architecture (reads config.json only)."""
    try:
        check_classification_head(spec, read_config(spec)[1])
    except NotAClassifierError:
        return False
    return True


def load_classifier(spec: str, device: str = "auto") -> Classifier:
    """``AutoModelForImageClassification`` and ``AutoImageProcessor`` from ``spec``, float32, on ``device``."""
    spec = str(spec).strip()
    location, config = read_config(spec)
    check_classification_head(spec, config)
    if not config.get("id2label"):
        raise ModelLoadError(f"{spec} has no id2label (class names) in config.json")
    from segstudio.core.model.loading import resolve_device

    target = resolve_device(device)
    model = _load_model(spec, location)
    processor = _load_processor(spec, location)
    return Classifier(model.to(target).eval(), processor, spec, target)


def _load_model(spec: str, location: str) -> Any:
    import torch
    from transformers import AutoModelForImageClassification

    from segstudio.core.model.loading import transformers_bars_off

    try:
        with transformers_bars_off():
            model, info = AutoModelForImageClassification.from_pretrained(
                location, dtype=torch.float32, output_loading_info=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise ModelLoadError(f"cannot load {spec} as an image classifier: {text}") from None
    missing = sorted(info.get("missing_keys", ()))
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise NotAClassifierError(f"{spec} lacks weights of its classification model ({shown}): its head would be "
                                  "random; use a checkpoint saved with a classification head, such as nvidia/mit-b0")
    return model


def _load_processor(spec: str, location: str) -> Any:
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(location)
    except (OSError, ValueError, KeyError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise ModelLoadError(f"{spec} has no usable preprocessor_config.json (image processor): {text}") from None

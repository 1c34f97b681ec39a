"""A model folder's JSON settings: read safely, held to sane bounds, and legacy processor keys read as transformers
4.x read them. No torch, no transformers: both loaders (``model`` and ``segformer_light``) call it first.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from segstudio.core.model.location import ModelLoadError

MAX_NUM_LABELS = 65535
MAX_IMAGE_SIZE = 4096
MAX_JSON_BYTES = 64 * 2**20  # a 65535-class id2label takes ~2 MB
MAX_JSON_DEPTH = 32  # config.json nests 3 levels deep
# Upper bounds of SegFormer's architecture numbers (mit-b5 uses at most 512, depth 40, 8 heads).
_ARCHITECTURE_BOUNDS = {
    "num_encoder_blocks": 8, "depths": 128, "hidden_sizes": 8192, "decoder_hidden_size": 8192,
    "num_attention_heads": 256, "sr_ratios": 64, "patch_sizes": 64, "strides": 64, "mlp_ratios": 16,
}
# transformers' class defaults for the keys a SegFormer preprocessor_config.json may leave out.
PROCESSOR_DEFAULTS: dict[str, Any] = {
    "do_resize": True, "size": {"height": 512, "width": 512}, "resample": 2, "do_rescale": True,
    "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225], "do_reduce_labels": False,
}


def read_json_object(path: Path, name: str) -> dict:
    """The JSON object in ``path``, refusing what is not a plain file, too big, too deep, or not an object."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path.name} of {name}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelLoadError(
            f"{path.name} of {name} is not a regular file; replace it with the file save_pretrained writes"
        )
    if info.st_size > MAX_JSON_BYTES:
        raise ModelLoadError(
            f"{path.name} of {name} is {info.st_size} bytes, over the {MAX_JSON_BYTES} bytes "
            "model settings may take"
        )
    try:
        with open(path, "rb", opener=_open_regular) as handle:
            value = json.loads(handle.read(MAX_JSON_BYTES + 1).decode("utf-8"))
    except RecursionError:
        raise too_deep(path.name, name) from None
    except (OSError, ValueError):
        raise ModelLoadError(f"the {path.name} of {name} is not valid JSON") from None
    return check_json_object(value, path.name, name)


def check_json_object(value: Any, file_name: str, name: str) -> dict:
    """``value`` (parsed from ``file_name``) if it is a JSON object of sane depth, else a ModelLoadError."""
    if _depth_over(value, MAX_JSON_DEPTH):
        raise too_deep(file_name, name)
    if not isinstance(value, dict):
        raise ModelLoadError(
            f"{file_name} of {name} holds a JSON {type(value).__name__}, not an object; write it with save_pretrained"
        )
    return value


def too_deep(file_name: str, name: str) -> ModelLoadError:
    """The error for JSON nested deeper than model settings ever are."""
    return ModelLoadError(f"{file_name} of {name} nests more than {MAX_JSON_DEPTH} levels deep: not model settings")


def _open_regular(path: str, flags: int) -> int:
    """Open without blocking (a FIFO swapped in after the check must not hang), then block as usual."""
    descriptor = os.open(path, flags | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError("not a regular file")
    os.set_blocking(descriptor, True)
    return descriptor


def _depth_over(value: Any, limit: int) -> bool:
    """True when ``value`` nests containers more than ``limit`` levels deep (checked without recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def check_config(raw: dict, name: str) -> None:
    """ModelLoadError when config.json asks for what no SegFormer SegStudio can run has (bounds in the text)."""
    id2label = raw.get("id2label")
    if id2label is not None and not isinstance(id2label, dict):
        raise ModelLoadError(
            f'id2label in the config.json of {name} is a JSON {type(id2label).__name__}; it must map ids to '
            'class names ({"0": "wall", ...})'
        )
    count = len(id2label) if id2label is not None else raw.get("num_labels")
    if count is not None and not (_is_int(count) and 1 <= count <= MAX_NUM_LABELS):
        raise ModelLoadError(
            f"the config.json of {name} asks for {count!r} classes; SegStudio loads 1 to {MAX_NUM_LABELS} "
            "(fix num_labels or id2label)"
        )
    channels = raw.get("num_channels", 3)
    if channels != 3 or isinstance(channels, bool):
        raise ModelLoadError(
            f"the config.json of {name} sets num_channels to {channels!r}; SegStudio feeds RGB images (3 channels)"
        )
    for key, bound in _ARCHITECTURE_BOUNDS.items():
        values = raw.get(key, [])
        values = values if isinstance(values, list) else [values]
        if len(values) > _ARCHITECTURE_BOUNDS["num_encoder_blocks"] or not all(_in_range(v, bound) for v in values):
            raise ModelLoadError(
                f"the config.json of {name} has {key} = {raw[key]!r}: expected up to "
                f"{_ARCHITECTURE_BOUNDS['num_encoder_blocks']} numbers from 1 to {bound}"
            )


def processor_dict(raw: dict, name: str) -> dict:
    """preprocessor_config.json with legacy keys read as transformers 4.x read them, checked against bounds.

    ``reduce_labels`` becomes ``do_reduce_labels`` (4.x ``SegformerImageProcessor.from_dict``), an int or
    (height, width) ``size`` a height/width dict (``get_size_dict(default_to_square=True)``), and the old
    ``feature_extractor_type`` an ``image_processor_type`` (``AutoImageProcessor``'s reading).
    """
    settings = dict(raw)
    if "reduce_labels" in settings:
        settings["do_reduce_labels"] = settings.pop("reduce_labels")
    legacy_type = settings.pop("feature_extractor_type", None)
    if "image_processor_type" not in settings and isinstance(legacy_type, str):
        settings["image_processor_type"] = legacy_type.replace("FeatureExtractor", "ImageProcessor")
    size = settings.get("size")
    if _is_int(size):
        settings["size"] = {"height": size, "width": size}
    elif isinstance(size, list) and len(size) == 2:
        settings["size"] = {"height": size[0], "width": size[1]}
    _check_processor(settings, name)
    return settings


def _check_processor(settings: dict, name: str) -> None:
    size = settings.get("size", PROCESSOR_DEFAULTS["size"])
    edges = [v for v in size.values() if v is not None] if isinstance(size, dict) else [size]
    if not edges or not all(_is_int(v) and 1 <= v <= MAX_IMAGE_SIZE for v in edges):
        raise ModelLoadError(
            f"the preprocessor_config.json of {name} has size {size!r}: "
            f"edges from 1 to {MAX_IMAGE_SIZE} pixels expected"
        )
    from PIL import Image

    filters = sorted(code.value for code in Image.Resampling)
    resample = settings.get("resample", PROCESSOR_DEFAULTS["resample"])
    if not (_is_int(resample) and resample in filters):
        raise ModelLoadError(
            f"the preprocessor_config.json of {name} has resample {resample!r}: expected one of PIL's filters "
            f"{filters[0]} to {filters[-1]} (2 = bilinear)"
        )
    for key in ("image_mean", "image_std"):
        value = settings.get(key, PROCESSOR_DEFAULTS[key])
        values = value if isinstance(value, list) else [value]
        if len(values) not in (1, 3) or not all(_is_number(v) for v in values) or (
            key == "image_std" and 0 in values
        ):
            raise ModelLoadError(
                f"the preprocessor_config.json of {name} has {key} {value!r}: expected 3 numbers (RGB) or one"
                + (", none zero" if key == "image_std" else "")
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _in_range(value: Any, bound: float) -> bool:
    return _is_number(value) and 0 < value <= bound

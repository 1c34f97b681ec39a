"""The one switch between the fast CPU path and transformers for prediction: :func:`load_for_inference`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from segstudio.core.inference.fast.segformer_light import load_light
from segstudio.core.model.loading import (
    LoadedModel,
    hub_unreachable,
    load_model,
    loaded_without_transformers,
    resolve_device,
)
from segstudio.core.model.location import locate_model

FAST_PATH_OFF = "SEGSTUDIO_NO_FAST_PATH"  # set to 1 to load every model through transformers (0 / false: the default)
# What segformer_light reads. A Hub model without one of them (only pytorch_model.bin, say) loads through
# transformers, which also gives the error message when a file cannot be had.
LIGHT_FILES = ("config.json", "preprocessor_config.json", "model.safetensors")
_log = logging.getLogger(__name__)
_declined_once: list[str] = []


def load_for_inference(spec: str, device: str = "auto") -> LoadedModel:
    """``load_model(spec)`` for prediction only. On the CPU, a local folder or a Hub model holding a plain
    SegFormer loads without importing transformers (``fast.segformer_light``: the same weights and numbers,
    2.5-3 s sooner); anything that module does not mirror exactly, and every other device, loads through
    :func:`load_model` (logged once per process)."""
    spec = str(spec).strip()
    if spec != "scratch" and resolve_device(device).type == "cpu" and not fast_path_off():
        location = locate_model(spec)
        folder = location if Path(location).is_dir() else _hub_snapshot(location)
        found = load_light(folder, spec) if folder is not None else None
        if found is not None:
            return loaded_without_transformers(spec, location, *found)
        _note_declined(spec)
    return load_model(spec)


def fast_path_off() -> bool:
    """``SEGSTUDIO_NO_FAST_PATH`` set to anything but empty, 0, false, no or off."""
    return os.environ.get(FAST_PATH_OFF, "").strip().lower() not in ("", "0", "false", "no", "off")


def _note_declined(spec: str) -> None:
    if not _declined_once:
        _declined_once.append(spec)
        _log.info("the fast CPU path does not cover %s; loading it through transformers", spec)


def _hub_snapshot(repo_id: str) -> str | None:
    """The local snapshot folder holding a Hub model's current ``LIGHT_FILES``, checked or fetched as
    transformers does (huggingface_hub's cache; no request when offline), or None if any cannot be had."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    folders = set()
    for name in LIGHT_FILES:
        try:
            folders.add(Path(hf_hub_download(repo_id, name)).parent)
        except LocalEntryNotFoundError:
            if name == "config.json":  # every model has one: not cached, and the Hub unreachable or offline
                raise hub_unreachable(repo_id) from None  # now: transformers would only retry (measured 26 s more)
            return None
        except (OSError, ValueError, EntryNotFoundError):  # no such file or repo, ...: load_model says what
            return None
    return str(folders.pop()) if len(folders) == 1 else None

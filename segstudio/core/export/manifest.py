"""``manifest.json``: what made an export (model and revision, labels, dataset, counts, versions, device, time).

Written beside every set of exported masks and metrics, so a result can be traced and reproduced.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from segstudio import __version__
from segstudio.core.export.writers import atomic_write_text, to_jsonable
from segstudio.core.labels.label_map import LabelMap

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_CHUNK = 1 << 20


def id2label_sha256(label_map: LabelMap) -> str:
    """sha256 of the canonical id2label JSON (``LabelMap.digest()`` is its first 16 hex digits)."""
    text = json.dumps({str(k): v for k, v in sorted(label_map.id2label.items())}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=4096)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, cached while its size and modification time stay the same."""
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def _hub_commit(repo_id: str) -> str | None:
    """The commit of a Hub model's cached snapshot, without the network."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - an unusual cache layout only loses the revision
        return None
    if isinstance(found, str) and Path(found).parent.parent.name == "snapshots":
        return Path(found).parent.name
    return None


def model_revision(spec: str) -> dict[str, str | None]:
    """``{"name", "revision", "revision_kind"}``: "demo", "scratch", a local folder's weights sha256, or a Hub commit."""
    spec = str(spec)
    if spec in ("demo", "scratch"):
        return {"name": spec, "revision": spec, "revision_kind": spec}
    folder = Path(spec).expanduser()
    if folder.is_dir():
        for name in WEIGHT_FILES:
            if (folder / name).is_file():
                return {"name": str(folder.resolve()), "revision": file_sha256(folder / name),
                        "revision_kind": f"sha256:{name}"}
        return {"name": str(folder.resolve()), "revision": None, "revision_kind": "unknown"}
    commit = _hub_commit(spec)
    return {"name": spec, "revision": commit, "revision_kind": "hub-commit" if commit else "unknown"}


def precision_name(predictor: Any) -> str:
    """float32, or the autocast dtype the predictor runs in (float16, bfloat16)."""
    dtype = getattr(predictor, "autocast_dtype", None)
    return "float32" if dtype is None else str(dtype).replace("torch.", "")


def build_manifest(
    kind: str,
    loaded: Any,
    predictor: Any,
    *,
    label_map: LabelMap | None = None,
    convention: Any = None,
    dataset: str | None = None,
    split: str | None = None,
    corrections: dict | None = None,
    inputs: list[str] | None = None,
    images: int = 0,
    written: int = 0,
    skipped: int = 0,
    extra: dict | None = None,
) -> dict[str, Any]:
    """The manifest of one export; ``label_map`` / ``convention`` default to the model's (those of the masks).

    ``corrections``: the corrections folder the dataset was read with, its sha256 and item count."""
    import torch

    label_map = label_map or loaded.label_map
    convention = convention or loaded.convention
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "kind": kind,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {**model_revision(loaded.source), "num_labels": loaded.label_map.num_labels,
                  "id2label_sha256": id2label_sha256(loaded.label_map)},
        "labels": {"id2label_sha256": id2label_sha256(label_map), "digest": label_map.digest(),
                   "reduce_labels": bool(convention.reduce_labels), "ignore_index": int(convention.ignore_index)},
        "dataset": ({"source": dataset, "split": split, "corrections": corrections} if dataset is not None
                    else None),
        "inputs": inputs,
        "counts": {"images": int(images), "written": int(written), "skipped": int(skipped)},
        "versions": {"segstudio": __version__, "torch": torch.__version__, "transformers": _version("transformers")},
        "device": str(getattr(predictor, "device", "cpu")),
        "precision": precision_name(predictor),
    }
    if extra:
        manifest.update(extra)
    return manifest


def _version(package: str) -> str | None:
    """An installed package's version, read from its metadata (importing transformers takes seconds)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def write_manifest(output_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """``OUTPUT/manifest.json``, written atomically."""
    path = Path(output_dir) / MANIFEST_NAME
    atomic_write_text(path, json.dumps(to_jsonable(manifest), indent=2, allow_nan=False) + "\n")
    return path

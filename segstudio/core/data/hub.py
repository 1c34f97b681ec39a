"""Hub datasets: ``scene_parse_150`` from its Parquet conversion, and any dataset with image + mask columns.

datasets 5 refuses loading scripts, and scene_parse_150 is a script dataset, so it is read from the Parquet
files that the Hub converted it to: repository ``zhoubolei/scene_parse_150`` (the old id ``scene_parse_150``
redirects there), revision ``refs/convert/parquet``, folder ``scene_parsing`` (the converter writes one folder
per config, ``CONFIG/SPLIT/NNNN.parquet``; datasets 5 does not map those folders to configs itself, so the config
is passed as ``data_dir``).
"""

from __future__ import annotations

import os

import datasets

from segstudio.core.data.columns import has_scene_parse_features, normalise_splits
from segstudio.core.data.schema import DataSourceError, SourceParts, first_line
from segstudio.core.labels.label_map import LabelMap

SCENE_PARSE_IDS = {"scene_parse_150", "zhoubolei/scene_parse_150"}
SCENE_PARSE_REPO = "zhoubolei/scene_parse_150"
SCENE_PARSE_CONFIG = "scene_parsing"
PARQUET_REVISION = "refs/convert/parquet"
_OFFLINE_NAMES = ("Offline", "Connect", "Timeout", "NetworkError", "TransportError")


def hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _network_failure(exc: BaseException) -> bool:
    """The error, or one it was raised from, says the Hub could not be reached."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ConnectionError | TimeoutError) or any(n in type(seen).__name__ for n in _OFFLINE_NAMES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _unreachable(name: str) -> DataSourceError:
    return DataSourceError(
        f"dataset '{name}' is not in the local Hugging Face cache and the Hub is unreachable (offline); "
        "open 'demo' or a local folder instead (ADE20K layout, Parquet files, image/mask pairs or save_to_disk)"
    )


def _load(name: str, repo: str, config: str | None, revision: str | None) -> datasets.DatasetDict:
    from datasets.exceptions import DatasetNotFoundError

    try:
        if revision == PARQUET_REVISION and config:
            return datasets.load_dataset(repo, data_dir=config, revision=revision)
        return datasets.load_dataset(repo, config, revision=revision)
    except DatasetNotFoundError as exc:
        if hub_offline() or _network_failure(exc):
            raise _unreachable(name) from None
        raise DataSourceError(f"dataset '{name}' was not found on the Hugging Face Hub (or it is private)") from None
    except Exception as exc:  # datasets wraps network, config and format problems in many types
        if _network_failure(exc):
            raise _unreachable(name) from None
        raise DataSourceError(f"cannot load '{name}' from the Hub: {first_line(exc)}") from None


def _hub_label_map(repo: str, revision: str | None) -> LabelMap | None:
    """The dataset repository's ``id2label.json`` (a common convention), when there is one and it is reachable."""
    if hub_offline():
        return None
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(repo, "id2label.json", repo_type="dataset", revision=revision)
        return LabelMap.from_json(path)
    except Exception:  # absent, unreachable or malformed: the caller falls back to ADE20K
        return None


def load_hub(name: str, config: str | None, revision: str | None, image_column: str | None,
             mask_column: str | None) -> SourceParts:
    """(splits, label map, default reduce_labels): True for scene_parse_150 and datasets with its features (a
    copy of it), False for the rest."""
    if name in SCENE_PARSE_IDS:
        loaded = _load(name, SCENE_PARSE_REPO, config or SCENE_PARSE_CONFIG, revision or PARQUET_REVISION)
        return normalise_splits(loaded, image_column, mask_column, name), LabelMap.ade20k(), True
    loaded = _load(name, name, config, revision)
    if not isinstance(loaded, datasets.DatasetDict):
        raise DataSourceError(f"'{name}' did not load as a dataset with splits")
    splits = normalise_splits(loaded, image_column, mask_column, name)
    return splits, _hub_label_map(name, revision) or LabelMap.ade20k(), has_scene_parse_features(loaded)

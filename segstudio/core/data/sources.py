"""One entry point for every dataset: ``load_source(spec, options) -> SegDataset``.

``spec`` chooses the source:

* ``demo``: the built-in synthetic dataset (10 ADE20K classes; reduce_labels=True), cached after the first use.
* a local folder (``./demo`` for a folder called demo), recognised in this order:
  a ``save_to_disk`` folder (``dataset_dict.json`` / ``state.json``), a folder of Parquet files (at most three
  levels deep: ``data/{split}-NNNNN-of-NNNNN.parquet``, ``CONFIG/{split}/NNNN.parquet`` ...; both
  reduce_labels=False unless a labels.json says otherwise or the data is scene_parse_150's), an
  ``ADEChallengeData2016`` layout (``images/training`` ...; reduce_labels=True) or a folder of image/mask pairs
  (reduce_labels=False).
* anything else (or ``hub:NAME``) is a Hub dataset: ``scene_parse_150`` (reduce_labels=True) or any dataset with
  image and mask columns (reduce_labels=False).

scene_parse_150's data is recognised by its features (image, annotation, a ``scene_category`` of 1,055 scenes),
whatever the source: it is read with the ADE20K convention (reduce_labels=True) and ``SegDataset.notice`` says so.

``options`` override the source's defaults: ``reduce_labels``, ``ignore_index`` and ``label_map_path``; the
label convention is built here, once.
"""

from __future__ import annotations

from pathlib import Path

from segstudio.core.data.ade_folder import is_ade_folder, load_ade_folder, resolve_ade_root, write_ade_folder
from segstudio.core.data.columns import has_scene_parse_features
from segstudio.core.data.local_folders import (
    MASK_DIRS,
    find_pairs,
    folder_labels,
    is_saved_dataset,
    load_pairs,
    load_parquet,
    load_saved,
    parquet_files,
)
from segstudio.core.data.schema import (
    SPLITS,
    DataSourceError,
    SegDataset,
    SourceOptions,
    SourceParts,
    scan_annotation_values,
)
from segstudio.core.labels.label_map import LabelConvention, LabelMap, LabelMapError

__all__ = [
    "SPLITS",
    "DataSourceError",
    "SegDataset",
    "SourceOptions",
    "load_source",
    "scan_annotation_values",
    "write_ade_folder",
]

OTHER_MASK_DIRS = tuple(name for name in MASK_DIRS if name != "annotations")


def _looks_like_path(spec: str) -> bool:
    """A spec that can only mean a local path (Hub ids are NAME or OWNER/NAME)."""
    return spec.startswith(("/", ".", "~")) or "\\" in spec or spec.count("/") > 1 or spec.endswith("/")


def _load_folder(root: Path, options: SourceOptions) -> SourceParts:
    if not root.is_dir():
        raise DataSourceError(f"{root} is a file; a dataset is a folder (or 'demo', or a Hub dataset id)")
    if is_saved_dataset(root):
        return load_saved(root, options.image_column, options.mask_column)
    if parquet_files(root):
        return load_parquet(root, options.image_column, options.mask_column)
    ade_root = resolve_ade_root(root)
    if is_ade_folder(ade_root) and not _has_other_mask_folder(ade_root):
        splits, label_map = load_ade_folder(ade_root)
        custom, reduce = folder_labels(ade_root)
        return splits, custom or label_map, True if reduce is None else reduce
    layout = find_pairs(root)
    if layout is None:
        raise DataSourceError(
            f"{root} is not a dataset folder: expected an ADE20K layout (images/training, annotations/training), "
            "image/mask pairs (images/ and masks/), Parquet files or a save_to_disk folder"
        )
    return load_pairs(root, layout)


def _has_other_mask_folder(root: Path) -> bool:
    """images/training next to masks/ (not annotations/) is a pairs folder that happens to use ADE split names."""
    return any(p.is_dir() and p.name.lower() in OTHER_MASK_DIRS for p in root.iterdir())


def _load_raw(spec: str, options: SourceOptions) -> tuple[SourceParts, str, Path | None]:
    if spec.lower() == "demo":
        from segstudio.core.data.demo_dataset import load_demo

        demo = load_demo()
        return (demo.splits, demo.label_map, demo.convention.reduce_labels), "demo", None
    if spec.startswith("hub:"):
        return _load_hub(spec[4:], options), f"hub:{spec[4:]}", None
    path = Path(spec).expanduser()
    if path.exists():
        root = path.resolve()
        parts = _load_folder(root, options)
        root = resolve_ade_root(root)
        return parts, str(root), root
    if _looks_like_path(spec):
        raise DataSourceError(f"dataset folder not found: {spec}")
    return _load_hub(spec, options), f"hub:{spec}", None


def _load_hub(name: str, options: SourceOptions) -> SourceParts:
    from segstudio.core.data.hub import load_hub

    if not name:
        raise DataSourceError("no Hub dataset id after 'hub:'")
    return load_hub(name, options.config, options.revision, options.image_column, options.mask_column)


def convention_notice(splits, root: Path | None, default: bool, chosen: bool | None) -> str | None:
    """One line on the label convention of scene_parse_150's data (outside the ADE layout), else None."""
    if not has_scene_parse_features(splits) or (root is not None and is_ade_folder(root)):
        return None
    ade = "reduce_labels=True: 0 'other' ignored, id k is class k-1"
    if chosen is not None:
        flag = "--reduce-labels" if chosen else "--no-reduce-labels"
        return (f"label convention: reduce_labels={chosen}, as {flag} asks (scene_parse_150's data, recognised by "
                f"its 1,055-scene scene_category, would default to the ADE20K convention, {ade})")
    if default:
        return (f"label convention: ADE20K ({ade}), since the data is scene_parse_150's (image, annotation, a "
                "scene_category of 1,055 scenes); pass --no-reduce-labels to read the ids as they are")
    return ("label convention: reduce_labels=False, as the folder's labels.json says, although the data is "
            "scene_parse_150's (which uses reduce_labels=True); pass --reduce-labels to change it")


def load_source(spec: str, options: SourceOptions | None = None) -> SegDataset:
    """Open a dataset; every user-caused problem raises :class:`DataSourceError` with a one-line message."""
    options = options or SourceOptions()
    spec = str(spec).strip()
    if not spec:
        raise DataSourceError("no dataset given: use 'demo', a local folder or a Hub dataset id")
    if not isinstance(options.ignore_index, int) or not 0 <= options.ignore_index <= 65535:
        raise DataSourceError(f"ignore index must be an integer in 0..65535, got {options.ignore_index!r}")
    (splits, label_map, reduce), source, root = _load_raw(spec, options)
    if options.label_map_path:
        try:
            label_map = LabelMap.from_json(options.label_map_path)
        except LabelMapError as exc:
            raise DataSourceError(str(exc)) from None
    notice = convention_notice(splits, root, bool(reduce), options.reduce_labels)
    if options.reduce_labels is not None:
        reduce = options.reduce_labels
    convention = LabelConvention(reduce_labels=bool(reduce), ignore_index=options.ignore_index)
    return SegDataset(splits=splits, label_map=label_map, convention=convention, source=source, root=root,
                      notice=notice)

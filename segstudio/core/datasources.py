"""One entry point for every dataset: ``load_source(spec, options) -> SegDataset``.

``spec`` chooses the source:

* ``demo``: the built-in synthetic dataset (10 ADE20K classes; reduce_labels=True), cached after the first use.
* a local folder (``./demo`` for a folder called demo), recognised in this order:
  a ``save_to_disk`` folder (``dataset_dict.json`` / ``state.json``; reduce_labels=False unless its
  labels.json says otherwise or it was saved from scene_parse_150), an ``ADEChallengeData2016`` layout
  (``images/training`` ...; reduce_labels=True) or a folder of image/mask pairs (reduce_labels=False).
* anything else (or ``hub:NAME``) is a Hub dataset: ``scene_parse_150`` (reduce_labels=True) or any dataset with
  image and mask columns (reduce_labels=False).

``options`` override the source's defaults: ``reduce_labels``, ``ignore_index`` and ``label_map_path``; the
label convention is built here, once.
"""

from __future__ import annotations

from pathlib import Path

from segstudio.core.ade_folder import is_ade_folder, load_ade_folder, resolve_ade_root, write_ade_folder
from segstudio.core.labels import LabelConvention, LabelMap, LabelMapError
from segstudio.core.local_sources import (
    MASK_DIRS,
    find_pairs,
    folder_labels,
    is_saved_dataset,
    load_pairs,
    load_saved,
)
from segstudio.core.seg_dataset import (
    SPLITS,
    DataSourceError,
    SegDataset,
    SourceOptions,
    SourceParts,
    scan_annotation_values,
)

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
    ade_root = resolve_ade_root(root)
    if is_ade_folder(ade_root) and not _has_other_mask_folder(ade_root):
        splits, label_map = load_ade_folder(ade_root)
        custom, reduce = folder_labels(ade_root)
        return splits, custom or label_map, True if reduce is None else reduce
    layout = find_pairs(root)
    if layout is None:
        raise DataSourceError(
            f"{root} is not a dataset folder: expected an ADE20K layout (images/training, annotations/training), "
            "image/mask pairs (images/ and masks/) or a save_to_disk folder"
        )
    return load_pairs(root, layout)


def _has_other_mask_folder(root: Path) -> bool:
    """images/training next to masks/ (not annotations/) is a pairs folder that happens to use ADE split names."""
    return any(p.is_dir() and p.name.lower() in OTHER_MASK_DIRS for p in root.iterdir())


def _load_raw(spec: str, options: SourceOptions) -> tuple[SourceParts, str, Path | None]:
    if spec.lower() == "demo":
        from segstudio.core.demo_data import load_demo

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
    from segstudio.core.hub_source import load_hub

    if not name:
        raise DataSourceError("no Hub dataset id after 'hub:'")
    return load_hub(name, options.config, options.revision, options.image_column, options.mask_column)


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
    if options.reduce_labels is not None:
        reduce = options.reduce_labels
    convention = LabelConvention(reduce_labels=bool(reduce), ignore_index=options.ignore_index)
    return SegDataset(splits=splits, label_map=label_map, convention=convention, source=source, root=root)

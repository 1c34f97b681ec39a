"""Datasets in one schema (scene_parse_150's): sources, the image and mask reader, the ADE20K layout, the demo,
and the label-convention guard (do a dataset's masks fit a model's labels)."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "AppliedCorrections": "schema",
    "blocking_errors": "label_guard",
    "check_labels": "label_guard",
    "DATA_ERRORS": "label_guard",
    "DataSourceError": "schema",
    "demo_label_map": "demo_dataset",
    "find_images": "imageio",
    "IgnoredBatchGuard": "label_guard",
    "ImageReadError": "imageio",
    "LabelConventionError": "label_guard",
    "load_source": "sources",
    "make_demo": "demo_dataset",
    "mask_values": "schema",
    "read_image": "imageio",
    "read_mask": "imageio",
    "read_pair": "imageio",
    "read_thumbnail": "imageio",
    "refusal_message": "label_guard",
    "refuse_double_reduction": "label_guard",
    "SegDataset": "schema",
    "SourceOptions": "schema",
    "stored_cells": "imageio",
    "write_ade_folder": "ade_folder",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

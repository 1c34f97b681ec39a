"""Annotation review: where the annotation itself is probably wrong, editing it, the corrections kept beside a
dataset and the record of each image's review."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "apply_corrections": "corrected_data",
    "BRUSH_TOOLS": "edit_session",
    "collect_split": "label_issues",
    "CorrectionItem": "corrections",
    "CorrectionsError": "corrections",
    "CorrectionsStore": "corrections",
    "default_corrections_folder": "corrected_data",
    "file_names": "label_issues",
    "ImageScore": "edit_session",
    "LabelIssueCollector": "label_issues",
    "mask_sha256": "corrections",
    "MaskChange": "mask_edit",
    "MaskEditSession": "edit_session",
    "merge_collectors": "label_issues",
    "open_corrections": "corrected_data",
    "parse_tags": "record",
    "Region": "mask_edit",
    "ReviewRecord": "record",
    "ReviewRecordError": "record",
    "scan_split": "label_issues",
    "STATUSES": "record",
    "suspected_map": "label_issues",
    "tags_text": "record",
    "without_corrections": "corrected_data",
    "write_corrected_copy": "corrected_data",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

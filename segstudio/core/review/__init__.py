"""Annotation review: where the annotation itself is probably wrong, editing it, and the corrections kept beside a
dataset."""

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
    "Region": "mask_edit",
    "scan_split": "label_issues",
    "suspected_map": "label_issues",
    "without_corrections": "corrected_data",
    "write_corrected_copy": "corrected_data",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

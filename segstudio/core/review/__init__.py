"""Annotation review: where the annotation itself is probably wrong, and the corrections kept beside a dataset."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "apply_corrections": "corrected_data",
    "collect_split": "label_issues",
    "CorrectionItem": "corrections",
    "CorrectionsError": "corrections",
    "CorrectionsStore": "corrections",
    "default_corrections_folder": "corrected_data",
    "file_names": "label_issues",
    "LabelIssueCollector": "label_issues",
    "mask_sha256": "corrections",
    "merge_collectors": "label_issues",
    "open_corrections": "corrected_data",
    "scan_split": "label_issues",
    "suspected_map": "label_issues",
    "without_corrections": "corrected_data",
    "write_corrected_copy": "corrected_data",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

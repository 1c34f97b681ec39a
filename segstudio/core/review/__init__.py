"""Annotation review: where the annotation itself is probably wrong, and the corrections kept beside a dataset."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "apply_corrections": "corrected_data",
    "CorrectionItem": "corrections",
    "CorrectionsError": "corrections",
    "CorrectionsStore": "corrections",
    "default_corrections_folder": "corrected_data",
    "mask_sha256": "corrections",
    "open_corrections": "corrected_data",
    "without_corrections": "corrected_data",
    "write_corrected_copy": "corrected_data",
    "LabelIssueCollector": "label_issues",
    "scan_split": "label_issues",
    "suspected_map": "label_issues",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

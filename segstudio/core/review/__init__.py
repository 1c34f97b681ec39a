"""Annotation review: where the annotation itself is probably wrong."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "LabelIssueCollector": "label_issues",
    "scan_split": "label_issues",
    "suspected_map": "label_issues",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

"""Scoring a split (totals, per image, per class, per scene), the A/B comparison of two checkpoints, and the
cross-check with Hugging Face evaluate's mean_iou."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "by_delta": "compare",
    "compare_split": "compare",
    "cross_check": "evaluate_cross_check",
    "evaluate_b": "compare",
    "evaluate_split": "scoring",
    "EvaluationCancelled": "scoring",
    "EvaluationResult": "scoring",
    "flip_counts": "compare",
    "flip_map": "compare",
    "ImageResult": "scoring",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

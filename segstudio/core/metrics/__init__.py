"""Segmentation metrics from a streaming confusion matrix, with the keys and numbers of evaluate's mean_iou."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "class_table": "confusion",
    "ClassStats": "confusion",
    "ConfusionMatrix": "confusion",
    "ImageConfusion": "confusion",
    "json_safe": "confusion",
    "mean_iou": "confusion",
    "metrics_from_matrix": "confusion",
    "top_confusions": "confusion",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

"""The one inference path (input as the image processor makes it, SegFormer, upsample, argmax), predicting
files, and image classification."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "check_predict": "file_prediction",
    "FAST_PATH_OFF": "loading",
    "has_classification_head": "classify",
    "InferenceError": "predictor",
    "load_classifier": "classify",
    "load_for_inference": "loading",
    "NotAClassifierError": "classify",
    "predict_files": "file_prediction",
    "Predictor": "predictor",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

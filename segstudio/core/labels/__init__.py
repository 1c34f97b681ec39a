"""Label maps, the one mapping between dataset ids and model ids, and colour rendering of masks."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "colorize": "render",
    "error_codes": "render",
    "high_contrast_palette": "contrast",
    "ERROR_RGB": "render",
    "IGNORE_INDEX": "label_map",
    "LabelConvention": "label_map",
    "LabelMap": "label_map",
    "LabelMapError": "label_map",
    "labels_json": "label_map",
    "min_delta_e": "contrast",
    "overlay": "render",
    "PALETTES": "contrast",
    "present_classes": "contrast",
    "separated_colours": "contrast",
    "srgb_to_lab": "contrast",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

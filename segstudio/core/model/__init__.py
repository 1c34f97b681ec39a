"""Loading and saving SegFormer checkpoints (demo, scratch, local folder, Hub id), and picking a device."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "check_config": "checkpoint_files",
    "load_model": "loading",
    "LoadedModel": "loading",
    "LoadReport": "loading",
    "locate_model": "location",
    "ModelLoadError": "location",
    "PROCESSOR_DEFAULTS": "checkpoint_files",
    "processor_dict": "checkpoint_files",
    "read_json_object": "checkpoint_files",
    "resolve_device": "loading",
    "transformers_bars_off": "loading",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

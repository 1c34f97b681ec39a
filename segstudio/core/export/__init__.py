"""Writing masks, metrics and reports: atomic writers, whole staged exports, the folder lock, the manifest."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "atomic_write_text": "writers",
    "build_manifest": "manifest",
    "check_export": "folder",
    "check_report_path": "folder",
    "ExportError": "writers",
    "MANIFEST_NAME": "manifest",
    "plan_names": "writers",
    "plan_outputs": "writers",
    "staged_export": "folder",
    "staged_report": "folder",
    "write_labels_json": "writers",
    "write_manifest": "manifest",
    "write_metrics_csv": "writers",
    "write_metrics_json": "writers",
    "write_prediction": "writers",
    "write_report_json": "folder",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

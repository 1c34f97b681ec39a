"""Fine-tuning on Hugging Face Trainer: settings, transforms, progress and cancel, the output folder, resuming."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "check_output": "run_folder",
    "checkpoint_to_resume": "trainer",
    "collate_batch": "transforms",
    "ProgressCallback": "events",
    "RunFolderError": "run_folder",
    "SegmentationTransform": "transforms",
    "settings_for": "trainer",
    "train": "trainer",
    "TrainingCancelled": "events",
    "TrainingError": "trainer",
    "TrainingListener": "events",
    "TrainSettings": "trainer",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)

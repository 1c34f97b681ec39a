"""Fine-tuning on Hugging Face Trainer: settings, transforms, progress and cancel, the output folder, resuming."""

from segstudio.core._face import lazy_face

_PUBLIC = {
    "AUGMENTATIONS": "options",
    "check_options": "options",
    "describe_options": "options",
    "model_to_train": "trainer",
    "OptionError": "options",
    "OPTIONS_FILE": "options",
    "read_options_file": "options",
    "read_training_options": "options",
    "REPORT_TO": "options",
    "SCHEDULERS": "options",
    "write_options_file": "options",
    "check_output": "run_folder",
    "checkpoint_caption": "checkpoints",
    "checkpoint_to_resume": "trainer",
    "collate_batch": "transforms",
    "completion_info": "checkpoints",
    "evaluate_final": "trainer",
    "ProgressCallback": "events",
    "RunFolderError": "run_folder",
    "RunScore": "trainer",
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

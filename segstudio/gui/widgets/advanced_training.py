"""The training panel's "Advanced" group: the options HF users know from run_semantic_segmentation.py, under the
names ``segstudio train`` and its config files use."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QSpinBox, QWidget

from segstudio.core.training import AUGMENTATIONS, REPORT_TO, SCHEDULERS


def _spin(low: int, high: int, value: int, special: str | None = None) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    if special:
        box.setSpecialValueText(special)
    return box


def _combo(items: tuple[str, ...], value: str) -> QComboBox:
    box = QComboBox()
    box.addItems(list(items))
    box.setCurrentText(value)
    return box


class AdvancedTrainingOptions(QGroupBox):
    """Gradient accumulation, warm-up, schedule, weight decay, augmentation, seed, workers, saving, reporting."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Advanced", parent)
        self.gradient_accumulation_steps = _spin(1, 1024, 1)
        self.gradient_accumulation_steps.setToolTip("Batches per optimizer step (a larger effective batch)")
        self.warmup_steps = QDoubleSpinBox()
        self.warmup_steps.setRange(0.0, 1_000_000.0)
        self.warmup_steps.setDecimals(2)
        self.warmup_steps.setToolTip("Linear warm-up: a number of steps, or a fraction of the run below 1")
        self.lr_scheduler_type = _combo(SCHEDULERS, "linear")
        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setRange(0.0, 10.0)
        self.weight_decay.setDecimals(4)
        self.weight_decay.setSingleStep(0.01)
        self.weight_decay.setValue(0.01)
        self.augmentation = _combo(AUGMENTATIONS, "flip-crop")
        self.augmentation.setToolTip("flip-crop: horizontal flip and a random scale crop; flip-crop-color also "
                                     "varies brightness, contrast and saturation")
        self.seed = _spin(0, 2**31 - 1, 0)
        self.dataloader_num_workers = _spin(0, 64, 0)
        self.dataloader_num_workers.setToolTip("Processes that read and augment images (0: the training thread)")
        self.save_steps = _spin(0, 1_000_000, 0, "with evaluation")
        self.report_to = _combo(REPORT_TO, "none")
        self.report_to.setToolTip("tensorboard: Trainer's own TensorBoard logs in the run folder's runs/ "
                                  "(needs pip install 'segstudio[tensorboard]')")
        form = QFormLayout(self)
        form.addRow("Gradient accumulation", self.gradient_accumulation_steps)
        form.addRow("Warm-up steps", self.warmup_steps)
        form.addRow("LR schedule", self.lr_scheduler_type)
        form.addRow("Weight decay", self.weight_decay)
        form.addRow("Augmentation", self.augmentation)
        form.addRow("Seed", self.seed)
        form.addRow("Data workers", self.dataloader_num_workers)
        form.addRow("Save every", self.save_steps)
        form.addRow("Report to", self.report_to)

    def options(self) -> dict[str, Any]:
        warmup = self.warmup_steps.value()
        return {
            "gradient_accumulation_steps": self.gradient_accumulation_steps.value(),
            "warmup_steps": int(warmup) if warmup >= 1 else warmup,
            "lr_scheduler_type": self.lr_scheduler_type.currentText(),
            "weight_decay": self.weight_decay.value(),
            "augmentation": self.augmentation.currentText(),
            "seed": self.seed.value(),
            "dataloader_num_workers": self.dataloader_num_workers.value(),
            "save_steps": self.save_steps.value() or None,
            "report_to": self.report_to.currentText(),
        }

    def set_options(self, options: dict[str, Any]) -> None:
        """Show the options given (checked ones, as ``check_options`` returns them); others stay as they are."""
        for name in ("gradient_accumulation_steps", "seed", "dataloader_num_workers", "save_steps"):
            if name in options:
                getattr(self, name).setValue(options[name] or 0)
        for name in ("warmup_steps", "weight_decay"):
            if name in options:
                getattr(self, name).setValue(float(options[name]))
        for name in ("lr_scheduler_type", "augmentation", "report_to"):
            if name in options:
                getattr(self, name).setCurrentText(options[name])

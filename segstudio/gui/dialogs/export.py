"""The export dialog: what to write (current image or the whole split; masks and metrics) and where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLineEdit,
    QRadioButton,
    QWidget,
)

from segstudio.gui.dialogs.messages import lay_out_form, path_row


@dataclass
class ExportChoice:
    whole_split: bool
    formats: list[str]
    metrics: bool
    output_dir: Path
    listed_only: bool = False  # the images the list shows (a filter is on), not the whole split


class ExportDialog(QDialog):
    """Collects an :class:`ExportChoice`; the window runs it in a worker."""

    def __init__(self, parent: QWidget | None, folder: str, can_split: bool, has_metrics: bool,
                 listed: int | None = None, total: int | None = None, formats: list[str] | None = None,
                 metrics: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export predictions")
        self.current = QRadioButton("Current image", self)
        filtered = listed is not None and total is not None and listed < total
        self.listed = QRadioButton(f"The {listed} images the list shows (filtered)" if filtered
                                   else "The images the list shows", self)
        self.listed.setEnabled(can_split and filtered)
        self.split = QRadioButton(f"Whole split ({total} images)" if total is not None else "Whole split", self)
        self.split.setEnabled(can_split)
        (self.listed if self.listed.isEnabled() else self.split if can_split else self.current).setChecked(True)
        chosen = formats if formats is not None else ["index"]
        self.index = QCheckBox("Index PNG (class ids in the dataset's convention)", self)
        self.color = QCheckBox("Colour PNG (in color/)", self)
        self.overlay = QCheckBox("Overlay PNG (image with colours blended in, in overlay/)", self)
        for name, box in (("index", self.index), ("color", self.color), ("overlay", self.overlay)):
            box.setChecked(name in chosen)
        self.metrics = QCheckBox("Metrics (metrics.json and per_class.csv)", self)
        self.metrics.setEnabled(has_metrics)
        self.metrics.setChecked(has_metrics and metrics)
        self.folder = QLineEdit(folder, self)
        row = path_row(self.folder, self._browse, "…")
        form = QFormLayout()
        form.addRow("Images", self.current)
        form.addRow("", self.listed)
        form.addRow("", self.split)
        form.addRow("Masks", self.index)
        form.addRow("", self.color)
        form.addRow("", self.overlay)
        form.addRow("Scores", self.metrics)
        form.addRow("Folder", row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        lay_out_form(self, form, buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def choice(self) -> ExportChoice:
        formats = [name for name, box in (("index", self.index), ("color", self.color), ("overlay", self.overlay))
                   if box.isChecked()]
        return ExportChoice(self.split.isChecked() or self.listed.isChecked(), formats,
                            self.metrics.isChecked() and self.metrics.isEnabled(), Path(self.folder.text()).expanduser(),
                            listed_only=self.listed.isChecked())

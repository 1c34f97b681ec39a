"""File > Open Dataset with Options…: what `segstudio --dataset` takes on the command line, as a form.

Hub datasets often need a configuration, a revision and the names of their image and mask columns; any source may
need the label convention spelled out (reduce_labels, ignore index) or a label map file.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from segstudio.core.labels import IGNORE_INDEX
from segstudio.gui.dialogs.messages import lay_out_form, path_row

REDUCE_CHOICES = {"auto": None, "yes: id 0 is 'other', k+1 is class k (ADE20K)": True, "no: id k is class k": False}


class DatasetOptionsDialog(QDialog):
    """A source spec plus SourceOptions; ``spec()`` and ``options()`` after it is accepted."""

    def __init__(self, spec: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open Dataset with Options")
        self.source = QLineEdit(spec, self)
        self.source.setPlaceholderText("demo, a folder, or a Hub dataset id such as zhoubolei/scene_parse_150")
        self.config = self._optional("Hub configuration, for datasets that have several")
        self.revision = self._optional("branch, tag or commit")
        self.image_column = self._optional("guessed when empty (image, img, pixel_values…)")
        self.mask_column = self._optional("guessed when empty (annotation, label, mask…)")
        self.reduce_labels = QComboBox(self)
        self.reduce_labels.addItems(list(REDUCE_CHOICES))
        self.ignore_index = QSpinBox(self)
        self.ignore_index.setRange(0, 65535)
        self.ignore_index.setValue(IGNORE_INDEX)
        self.label_map = self._optional("a JSON file with id2label (and palette); empty: from the source")
        form = QFormLayout()
        form.addRow("Source", self.source)
        form.addRow("Configuration", self.config)
        form.addRow("Revision", self.revision)
        form.addRow("Image column", self.image_column)
        form.addRow("Mask column", self.mask_column)
        form.addRow("Reduce labels", self.reduce_labels)
        form.addRow("Ignore index", self.ignore_index)
        form.addRow("Label map", path_row(self.label_map, self._browse_label_map))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel,
                                   parent=self)
        lay_out_form(self, form, buttons)
        self.open_button = buttons.button(QDialogButtonBox.StandardButton.Open)
        self.source.textChanged.connect(lambda text: self.open_button.setEnabled(bool(text.strip())))
        self.open_button.setEnabled(bool(spec.strip()))
        self.resize(620, self.sizeHint().height())

    def _optional(self, hint: str) -> QLineEdit:
        field = QLineEdit(self)
        field.setPlaceholderText(hint)
        return field

    def _browse_label_map(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Label map", "", "JSON (*.json);;All files (*)")
        if path:
            self.label_map.setText(path)

    def spec(self) -> str:
        return self.source.text().strip()

    def options(self):
        """The form as the core's ``SourceOptions`` (imported here: the core's data module loads ``datasets``)."""
        from segstudio.core.data import SourceOptions

        def text(field: QLineEdit) -> str | None:
            return field.text().strip() or None

        return SourceOptions(
            config=text(self.config), revision=text(self.revision), image_column=text(self.image_column),
            mask_column=text(self.mask_column), reduce_labels=REDUCE_CHOICES[self.reduce_labels.currentText()],
            ignore_index=self.ignore_index.value(), label_map_path=text(self.label_map),
        )

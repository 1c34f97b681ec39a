"""File > Open Dataset with Options: the form becomes the core's SourceOptions and the dataset opens with them."""

from __future__ import annotations

import json

from segstudio.core.data.schema import SourceOptions
from segstudio.gui.dialogs.open_dataset import DatasetOptionsDialog


def test_the_form_becomes_source_options(qtbot):
    dialog = DatasetOptionsDialog("")
    qtbot.addWidget(dialog)
    assert not dialog.open_button.isEnabled()
    dialog.source.setText(" zhoubolei/scene_parse_150 ")
    assert dialog.open_button.isEnabled()
    dialog.config.setText("scene_parsing")
    dialog.revision.setText("refs/convert/parquet")
    dialog.image_column.setText("img")
    dialog.reduce_labels.setCurrentIndex(1)
    dialog.ignore_index.setValue(0)
    assert dialog.spec() == "zhoubolei/scene_parse_150"
    assert dialog.options() == SourceOptions(config="scene_parsing", revision="refs/convert/parquet",
                                             image_column="img", mask_column=None, reduce_labels=True,
                                             ignore_index=0, label_map_path=None)


def test_the_window_opens_a_dataset_with_the_options(make_window, qtbot, tmp_path, monkeypatch):
    names = [f"thing {i}" for i in range(10)]
    label_map = tmp_path / "names.json"
    label_map.write_text(json.dumps({"id2label": {str(i): name for i, name in enumerate(names)}}))

    def fill_and_accept(dialog):
        dialog.source.setText("demo")
        dialog.ignore_index.setValue(254)
        dialog.label_map.setText(str(label_map))
        return DatasetOptionsDialog.DialogCode.Accepted

    monkeypatch.setattr(DatasetOptionsDialog, "exec", fill_and_accept)
    window = make_window()
    with qtbot.waitSignal(window.review.dataset_opened, timeout=120_000):
        window.actions.open_dataset_options.trigger()
    dataset = window.review.dataset
    assert [dataset.label_map.name(i) for i in range(10)] == names
    assert dataset.convention.ignore_index == 254 and dataset.convention.reduce_labels  # the demo's own default
    assert window.actions.open_dataset_options.shortcut().toString() == "Ctrl+Alt+O"

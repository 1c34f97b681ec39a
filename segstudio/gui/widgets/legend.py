"""The legend: classes present in the current image, with colour swatch and pixel share; click to highlight."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from segstudio.gui.widgets.qimages import swatch_icon

CLASS_ROLE = Qt.ItemDataRole.UserRole


def class_shares(ids: np.ndarray | None, num_labels: int) -> np.ndarray | None:
    """Fraction of the image's (non-ignored) pixels per class, or None without a mask."""
    if ids is None:
        return None
    counts = np.bincount(np.asarray(ids).ravel(), minlength=num_labels)[:num_labels].astype(np.float64)
    total = counts.sum()
    return counts / total if total else counts


def format_share(share: float) -> str:
    """A share as a percentage with one decimal; a class present on a few pixels reads "<0.1", not "0.0"."""
    return "<0.1" if 0 < share < 0.0005 else f"{100 * share:.1f}"


class LegendWidget(QWidget):
    """Emits ``class_selected(id)`` when a class is clicked and ``class_selected(-1)`` when clicked again."""

    class_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Class", "GT %", "Pred %"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSortingEnabled(False)
        self.tree.itemClicked.connect(self._on_clicked)
        header = self.tree.header()  # the name takes the room; the two shares stay side by side at the right
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.hint = QLabel("Click a class to show only it.")
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree)
        layout.addWidget(self.hint)
        self.selected: int | None = None

    def set_image_classes(self, label_map, ground_truth: np.ndarray | None, prediction: np.ndarray | None,
                          palette: np.ndarray | None = None) -> None:
        """List the classes in either mask, largest ground-truth share first; swatches from ``palette`` (the
        colours the viewer shows) or the label map's."""
        self.tree.clear()
        if label_map is None:
            return
        k = label_map.num_labels
        gt, pred = class_shares(ground_truth, k), class_shares(prediction, k)
        present = np.zeros(k, dtype=bool)
        for share in (gt, pred):
            if share is not None:
                present |= share > 0
        key = (gt if gt is not None else pred if pred is not None else np.zeros(k))
        order = [int(i) for i in np.flatnonzero(present)]
        order.sort(key=lambda i: -float(key[i]))
        for class_id in order:
            item = QTreeWidgetItem([
                str(label_map.name(class_id)).strip(),
                "" if gt is None else format_share(gt[class_id]),
                "" if pred is None else format_share(pred[class_id]),
            ])
            item.setIcon(0, swatch_icon((label_map.palette if palette is None else palette)[class_id]))
            item.setData(0, CLASS_ROLE, class_id)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
            self.tree.addTopLevelItem(item)
            if class_id == self.selected:
                item.setSelected(True)
        for column in (1, 2):
            self.tree.resizeColumnToContents(column)

    def class_ids(self) -> list[int]:
        return [self.tree.topLevelItem(i).data(0, CLASS_ROLE) for i in range(self.tree.topLevelItemCount())]

    def item_for(self, class_id: int) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, CLASS_ROLE) == class_id:
                return item
        return None

    def clear_selection(self) -> None:
        self.selected = None
        self.tree.clearSelection()

    def _on_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        class_id = int(item.data(0, CLASS_ROLE))
        if class_id == self.selected:
            self.clear_selection()
            self.class_selected.emit(-1)
        else:
            self.selected = class_id
            self.class_selected.emit(class_id)

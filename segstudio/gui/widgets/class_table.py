"""The per-class table of a split (model/view, sortable) with mean IoU / accuracy totals above it."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import (
    QItemSelection,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from segstudio.gui.widgets.qimages import swatch_icon
from segstudio.gui.widgets.table_base import RowsTableModel

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
CLASS_ROLE = Qt.ItemDataRole.UserRole + 2
_Index = QModelIndex | QPersistentModelIndex


def _pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def _signed_pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:+.1f}"


class ClassTableModel(RowsTableModel):
    """Rows: the core's ``ClassStats`` (class_id, iou, accuracy, gt_pixels, pred_pixels, images); with an A/B
    comparison two more columns, checkpoint B's IoU and its change (B - A), and the IoU column is A's."""

    HEADERS = ("Class", "IoU %", "Acc %", "GT px", "Pred px", "Images")
    FIELDS = ("class_id", "iou", "accuracy", "gt_pixels", "pred_pixels", "images")
    COMPARE_HEADERS = ("IoU B %", "Δ IoU")
    COL_IOU_B, COL_DELTA = len(HEADERS), len(HEADERS) + 1

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.label_map = None
        self.iou_b: dict[int, float] | None = None  # class id -> checkpoint B's IoU, during a comparison

    def headers(self) -> tuple[str, ...]:
        if self.iou_b is None:
            return self.HEADERS
        return ("Class", "IoU A %", *self.HEADERS[2:], *self.COMPARE_HEADERS)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.headers())

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers()[section]
        return None

    def set_comparison(self, iou_b: dict[int, float] | None) -> None:
        """Show checkpoint B's IoU per class and the change (None: back to one model)."""
        if (iou_b is None) != (self.iou_b is None):
            self.beginResetModel()
            self.iou_b = None if iou_b is None else dict(iou_b)
            self.endResetModel()
            return
        self.iou_b = None if iou_b is None else dict(iou_b)
        if self.rows and iou_b is not None:
            self.dataChanged.emit(self.index(0, self.COL_IOU_B), self.index(len(self.rows) - 1, self.COL_DELTA))

    def delta(self, class_id: int, iou_a: float) -> float:
        """B's IoU minus A's (NaN when either is undefined or there is no comparison)."""
        if self.iou_b is None:
            return math.nan
        return self.iou_b.get(class_id, math.nan) - iou_a

    def _compare_value(self, row: Any, column: int) -> float:
        if column == self.COL_IOU_B:
            return self.iou_b.get(int(row.class_id), math.nan)
        return self.delta(int(row.class_id), row.iou)

    def set_rows(self, rows: list[Any], label_map) -> None:
        """New rows; a same-length update keeps the view's selection (dataChanged, not a reset)."""
        if len(rows) == len(self.rows) and label_map is self.label_map and rows:
            self.rows = list(rows)
            self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, self.columnCount() - 1))
            return
        self.beginResetModel()
        self.rows, self.label_map = list(rows), label_map
        self.endResetModel()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        compared = column >= len(self.FIELDS)
        value = self._compare_value(row, column) if compared else getattr(row, self.FIELDS[column])
        if role == CLASS_ROLE:
            return int(row.class_id)
        if role == SORT_ROLE:
            if column == 0:
                return self.name(row.class_id).lower()
            return -math.inf if isinstance(value, float) and math.isnan(value) else value
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return self.name(row.class_id)
            if column == self.COL_DELTA:
                return _signed_pct(value)
            if column in (1, 2) or compared:
                return _pct(value)
            return f"{int(value):,}"
        if role == Qt.ItemDataRole.DecorationRole and column == 0 and self.label_map is not None:
            return swatch_icon(self.label_map.palette[row.class_id])
        if role == Qt.ItemDataRole.TextAlignmentRole and column > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def name(self, class_id: int) -> str:
        return str(self.label_map.name(class_id)).strip() if self.label_map is not None else str(class_id)


class _PresentFilter(QSortFilterProxyModel):
    """Hides classes that appear in neither ground truth nor prediction (unless asked to show all)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.show_all = False
        self.setSortRole(SORT_ROLE)

    def set_show_all(self, value: bool) -> None:
        self.beginFilterChange()
        self.show_all = value
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:  # noqa: N802
        if self.show_all:
            return True
        stats = self.sourceModel().rows[row]
        return stats.gt_pixels > 0 or stats.pred_pixels > 0


class ClassTable(QWidget):
    """Totals, then the table; ``class_selected(id)`` on selection, ``class_selected(-1)`` when cleared."""

    class_selected = Signal(int)
    rank_images = Signal(str)  # "improved" / "regressed": rank the image list by checkpoint B's flips
    end_comparison = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.totals = QLabel("No results yet.")
        self.totals.setObjectName("class-totals")
        self.totals.setTextFormat(Qt.TextFormat.RichText)
        self.totals.setWordWrap(True)
        self.model = ClassTableModel(self)
        self.proxy = _PresentFilter(self)
        self.proxy.setSourceModel(self.model)
        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(1, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(20)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)  # numbers share what the names leave
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(44)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.show_all = QCheckBox("Show classes absent from this split")
        self.show_all.toggled.connect(self.proxy.set_show_all)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.compare_bar = self._build_compare_bar()
        layout.addWidget(self.totals)
        layout.addWidget(self.compare_bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.show_all)
        self._emitting = True

    def _build_compare_bar(self) -> QWidget:
        """The A/B summary with buttons that rank the images by B's improvement or regression."""
        bar = QWidget(self)
        self.compare_note = QLabel("", bar)
        self.compare_note.setObjectName("compare-note")
        self.compare_note.setWordWrap(True)
        buttons = QHBoxLayout()
        # Short labels (the tooltips say it all): three long buttons made the dock too wide for a 1280-px screen
        for text, key, tip in (("B improved", "improved", "Rank the images by the pixels checkpoint B fixed"),
                               ("B regressed", "regressed", "Rank the images by the pixels checkpoint B broke")):
            button = QPushButton(text, bar)
            button.setToolTip(tip)
            button.setObjectName(f"rank-{key}")
            button.clicked.connect(lambda _=False, k=key: self.rank_images.emit(k))
            buttons.addWidget(button)
        end = QPushButton("End A/B", bar)
        end.setToolTip("End the comparison with checkpoint B")
        end.setObjectName("end-comparison")
        end.clicked.connect(self.end_comparison)
        buttons.addWidget(end)
        column = QVBoxLayout(bar)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.compare_note)
        column.addLayout(buttons)
        bar.setVisible(False)
        return bar

    def set_results(self, rows: list[Any], metrics: dict | None, label_map, scored: int, total: int) -> None:
        self._emitting = False
        try:
            self.model.set_rows(rows, label_map)
        finally:
            self._emitting = True
        if not metrics or scored == 0:
            self.totals.setText("No scored images yet." if total else "No results yet.")
            return
        progress = "" if scored >= total else f" (so far: {scored} of {total} images)"
        self.totals.setText(
            f"<b>mean IoU {_pct(metrics['mean_iou'])}%</b> &nbsp; mean accuracy {_pct(metrics['mean_accuracy'])}%"
            f" &nbsp; overall accuracy {_pct(metrics['overall_accuracy'])}%{progress}"
        )

    def set_comparison(self, iou_b: dict[int, float] | None, title: str = "") -> None:
        """Add checkpoint B's IoU and the change per class (None removes them)."""
        self.model.set_comparison(iou_b)
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for column in (2, 3, 4):  # accuracy and pixel totals make room for B's columns
            self.view.setColumnHidden(column, iou_b is not None)
        self.compare_note.setText(title)
        self.compare_bar.setVisible(iou_b is not None)
        if iou_b is None and self.view.horizontalHeader().sortIndicatorSection() >= len(ClassTableModel.FIELDS):
            self.view.sortByColumn(1, Qt.SortOrder.AscendingOrder)  # B's columns are gone: lowest IoU first again

    def sort_by_delta(self, regressions_first: bool = True) -> None:
        """Sort by B's change (largest loss first, or largest gain first)."""
        if self.model.iou_b is not None:
            order = Qt.SortOrder.AscendingOrder if regressions_first else Qt.SortOrder.DescendingOrder
            self.view.sortByColumn(ClassTableModel.COL_DELTA, order)

    def clear(self, message: str = "No results yet.") -> None:
        self.model.set_rows([], None)
        self.totals.setText(message)

    def selected_class(self) -> int | None:
        rows = self.view.selectionModel().selectedRows()
        return int(rows[0].data(CLASS_ROLE)) if rows else None

    def select_class(self, class_id: int | None, quiet: bool = False) -> None:
        """Select a class's row (None clears); emits ``class_selected`` like a click unless ``quiet``."""
        self._emitting = not quiet
        try:
            self._select(class_id)
        finally:
            self._emitting = True

    def _select(self, class_id: int | None) -> None:
        if class_id is None:
            self.view.clearSelection()
            return
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(CLASS_ROLE) == class_id:
                self.view.selectRow(row)
                self.view.scrollTo(index)
                return

    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        if self._emitting:
            class_id = self.selected_class()
            self.class_selected.emit(-1 if class_id is None else class_id)

"""Confusions: the most confused class pairs (from the core's ``top_confusions``) and a heatmap of the matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from segstudio.gui.widgets.qimages import to_qimage
from segstudio.gui.widgets.table_base import RowsTableModel

PAIR_ROLE = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


class PairsModel(RowsTableModel):
    """Rows (gt, pred, pixels, share of the ground-truth class's pixels)."""

    HEADERS = ("Ground truth", "Predicted as", "Pixels", "Share %")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.label_map = None

    def set_pairs(self, pairs: list[tuple[int, int, int, float]], label_map) -> None:
        self.beginResetModel()
        self.rows, self.label_map = list(pairs), label_map
        self.endResetModel()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        gt, pred, pixels, share = self.rows[index.row()]
        if role == PAIR_ROLE:
            return (int(gt), int(pred))
        if role == Qt.ItemDataRole.DisplayRole:
            return (self._name(gt), self._name(pred), f"{int(pixels):,}", f"{100 * share:.1f}")[index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _name(self, class_id: int) -> str:
        return str(self.label_map.name(int(class_id))).strip() if self.label_map is not None else str(class_id)


def heat_colours(fractions: np.ndarray) -> np.ndarray:
    """(K, K, 3) uint8: white (0) to dark blue (1) for off-diagonal cells, green for the diagonal."""
    f = np.clip(np.sqrt(fractions), 0.0, 1.0)[..., None]  # sqrt: small confusions stay visible
    white, blue, green = np.array([255, 255, 255.0]), np.array([20, 40, 140.0]), np.array([30, 130, 60.0])
    out = white * (1 - f) + blue * f
    diagonal = np.eye(len(fractions), dtype=bool)
    out[diagonal] = (white * (1 - f) + green * f)[diagonal]
    return out.astype(np.uint8)


class Heatmap(QWidget):
    """The confusion matrix, rows = ground truth, normalised per row; click a cell to pick a pair."""

    cell_clicked = Signal(int, int)
    MARGIN = 4
    CAPTION = 14  # "predicted →" above, "ground truth ↓" on the left
    STRIP = 8  # a colour swatch per class along both axes

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 160)
        self.classes: np.ndarray = np.zeros(0, dtype=int)
        self.fractions = np.zeros((0, 0))
        self.counts = np.zeros((0, 0), dtype=np.int64)
        self.label_map = None
        self._image = None
        self.selected: tuple[int, int] | None = None  # the pair outlined, (gt, pred)

    def set_selected(self, pair: tuple[int, int] | None) -> None:
        self.selected = None if pair is None else (int(pair[0]), int(pair[1]))
        self.update()

    def set_matrix(self, matrix: np.ndarray | None, label_map) -> None:
        """Show the classes present in ground truth or prediction; rows sum to 1."""
        self.label_map = label_map
        if matrix is None or not np.asarray(matrix).any():
            self.classes, self.fractions, self._image = np.zeros(0, dtype=int), np.zeros((0, 0)), None
            self.update()
            return
        matrix = np.asarray(matrix)
        self.classes = np.flatnonzero(matrix.sum(axis=0) + matrix.sum(axis=1))
        self.counts = matrix[np.ix_(self.classes, self.classes)]
        totals = self.counts.sum(axis=1, keepdims=True)
        self.fractions = np.divide(self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)
        self._image = to_qimage(heat_colours(self.fractions))
        self.update()

    def _grid(self) -> QRect:
        offset = self.MARGIN + self.CAPTION + self.STRIP + 1
        side = min(self.width(), self.height()) - offset - self.MARGIN
        return QRect(offset, offset, max(side, 1), max(side, 1))

    def cell_at(self, point: QPoint) -> tuple[int, int] | None:
        """(gt, pred) model ids of the cell under ``point``."""
        k = len(self.classes)
        grid = self._grid()
        if not k or not grid.contains(point):
            return None
        col = min(k - 1, (point.x() - grid.x()) * k // grid.width())
        row = min(k - 1, (point.y() - grid.y()) * k // grid.height())
        return int(self.classes[row]), int(self.classes[col])

    def cell_rect(self, gt: int, pred: int) -> QRect | None:
        """Where the cell (ground truth ``gt``, predicted ``pred``) is drawn; None if either class is not shown."""
        k = len(self.classes)
        if gt not in self.classes or pred not in self.classes:
            return None
        row, col = int(np.searchsorted(self.classes, gt)), int(np.searchsorted(self.classes, pred))
        grid = self._grid()
        left, right = grid.x() + col * grid.width() // k, grid.x() + (col + 1) * grid.width() // k
        top, bottom = grid.y() + row * grid.height() // k, grid.y() + (row + 1) * grid.height() // k
        return QRect(left, top, max(1, right - left), max(1, bottom - top))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        if self._image is None:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No confusion matrix yet")
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        grid = self._grid()
        painter.drawImage(grid, self._image)
        painter.setPen(QColor(120, 120, 120))
        painter.drawRect(grid.adjusted(0, 0, -1, -1))
        self._paint_axes(painter, grid)
        cell = self.cell_rect(*self.selected) if self.selected is not None else None
        if cell is not None:
            painter.setPen(QPen(QColor(255, 140, 0), 3))
            painter.drawRect(cell.adjusted(1, 1, -2, -2))

    def _paint_axes(self, painter: QPainter, grid: QRect) -> None:
        """Class colours along both axes (rows: ground truth, columns: prediction) and the axis captions."""
        palette = getattr(self.label_map, "palette", None)
        if palette is not None:
            for class_id in self.classes:
                cell = self.cell_rect(int(class_id), int(class_id))
                colour = QColor(*(int(v) for v in palette[int(class_id)][:3]))
                painter.fillRect(QRect(cell.x(), grid.y() - self.STRIP - 1, cell.width(), self.STRIP), colour)
                painter.fillRect(QRect(grid.x() - self.STRIP - 1, cell.y(), self.STRIP, cell.height()), colour)
        painter.setPen(self.palette().windowText().color())
        top = QRect(grid.x(), self.MARGIN, grid.width(), self.CAPTION)
        painter.drawText(top, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "predicted →")
        painter.save()
        painter.translate(self.MARGIN, grid.y() + grid.height())
        painter.rotate(-90)
        painter.drawText(QRect(0, 0, grid.height(), self.CAPTION),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "← ground truth")
        painter.restore()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        cell = self.cell_at(event.position().toPoint())
        if cell is None or self.label_map is None:
            QToolTip.hideText()
            return
        gt, pred = cell
        row = int(np.searchsorted(self.classes, gt))
        col = int(np.searchsorted(self.classes, pred))
        text = (f"ground truth {self.label_map.name(gt).strip()} → predicted {self.label_map.name(pred).strip()}: "
                f"{int(self.counts[row, col]):,} px ({100 * self.fractions[row, col]:.1f}% of the class)")
        QToolTip.showText(event.globalPosition().toPoint(), text, self)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        cell = self.cell_at(event.position().toPoint())
        if cell is not None:
            self.cell_clicked.emit(*cell)


class ConfusionsPanel(QWidget):
    """Top pairs above the heatmap; ``pair_selected(gt, pred)``, or (-1, -1) when cleared."""

    pair_selected = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = PairsModel(self)
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(20)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.heatmap = Heatmap(self)
        self.heatmap.cell_clicked.connect(self.select_pair)
        caption = QLabel("Confusion matrix: rows ground truth, columns predicted, each row sums to 100% "
                         "(green diagonal: correct). Hover for numbers, click to list the images.", self)
        caption.setWordWrap(True)
        lower = QWidget(self)
        column = QVBoxLayout(lower)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(caption)
        column.addWidget(self.heatmap, 1)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.view)
        splitter.addWidget(lower)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(splitter)
        self._quiet = False

    def set_results(self, pairs: list[tuple[int, int, int, float]], matrix: np.ndarray | None, label_map) -> None:
        current = self.selected_pair()
        self._quiet = True
        try:
            self.model.set_pairs(pairs, label_map)
            self.heatmap.set_matrix(matrix, label_map)
            if current is not None:
                self._select_row(current)
        finally:
            self._quiet = False

    def clear_selection(self) -> None:
        """Unselect without emitting (a new image source is shown)."""
        self._quiet = True
        self.view.clearSelection()
        self._quiet = False
        self.heatmap.set_selected(None)

    def selected_pair(self) -> tuple[int, int] | None:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].data(PAIR_ROLE) if rows else None

    def select_pair(self, gt: int, pred: int) -> None:
        """Select the pair's row if listed; a pair not in the top list still filters the images."""
        if not self._select_row((gt, pred)):
            self._quiet = True
            self.view.clearSelection()
            self._quiet = False
            self.heatmap.set_selected((gt, pred))
            self.pair_selected.emit(gt, pred)

    def _select_row(self, pair: tuple[int, int]) -> bool:
        for row in range(self.model.rowCount()):
            if self.model.index(row, 0).data(PAIR_ROLE) == tuple(pair):
                self.view.selectRow(row)
                return True
        return False

    def _on_selection(self, *_args) -> None:
        if self._quiet:
            return
        pair = self.selected_pair()
        self.heatmap.set_selected(pair)
        self.pair_selected.emit(*(pair if pair is not None else (-1, -1)))

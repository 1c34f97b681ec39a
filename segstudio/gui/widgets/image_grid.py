"""The image list as a grid of thumbnails, each with its mean IoU (or rank) as a badge; same model, same selection."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from segstudio.gui.widgets.image_list import (
    COL_MIOU,
    COL_NAME,
    COL_RANK,
    CORRECTED_COLOUR,
    CORRECTED_MARK,
    CORRECTED_ROLE,
    STATUS_COLOURS,
    STATUS_ROLE,
)

CELL = QSize(112, 100)
# The review status as a mark in the thumbnail's top-left corner (unreviewed: none)
STATUS_MARKS = {status: (mark, STATUS_COLOURS[status]) for status, mark in
                (("accepted", "✓"), ("needs_fix", "fix"), ("fixed", "fixed"))}
_Index = QModelIndex | QPersistentModelIndex


def badge_colour(text: str) -> QColor:
    """Red for a low mean IoU, amber in between, green for a high one; grey when there is no score yet."""
    try:
        value = float(text)
    except ValueError:
        return QColor(110, 110, 110)
    return QColor(200, 50, 40) if value < 0.5 else QColor(215, 140, 0) if value < 0.8 else QColor(40, 150, 60)


class ThumbnailDelegate(QStyledItemDelegate):
    """Thumbnail, file name below it, the score as a badge in the top-right corner and the review status in the
    top-left one, followed by a pencil when the mask has a saved correction."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:  # noqa: N802 - Qt override
        return CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        painter.save()
        rect = option.rect.adjusted(3, 3, -3, -3)
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        thumb = index.data(Qt.ItemDataRole.DecorationRole)
        picture = rect.adjusted(0, 0, 0, -18)
        if isinstance(thumb, QPixmap) and not thumb.isNull():
            scaled = thumb.scaled(picture.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                  Qt.TransformationMode.SmoothTransformation)
            x = picture.x() + (picture.width() - scaled.width()) // 2
            painter.drawPixmap(x, picture.y(), scaled)
        name = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        text_rect = QRect(rect.x(), rect.bottom() - 16, rect.width(), 16)
        colour = option.palette.highlightedText() if option.state & QStyle.StateFlag.State_Selected \
            else option.palette.text()
        painter.setPen(colour.color())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter,
                         option.fontMetrics.elidedText(name, Qt.TextElideMode.ElideMiddle, text_rect.width()))
        badge = self.badge_text(index)
        if badge:
            width = option.fontMetrics.horizontalAdvance(badge) + 8
            box = QRect(picture.right() - width, picture.y(), width, 16)
            painter.fillRect(box, self.badge_fill(index, badge))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, badge)
        marks = [STATUS_MARKS.get(index.data(STATUS_ROLE))]
        if index.data(CORRECTED_ROLE):
            marks.append((CORRECTED_MARK, CORRECTED_COLOUR))
        x = picture.x()
        for text, fill in filter(None, marks):
            box = QRect(x, picture.y(), option.fontMetrics.horizontalAdvance(text) + 8, 16)
            painter.fillRect(box, fill)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
            x = box.right() + 3
        painter.restore()

    @staticmethod
    def badge_text(index: _Index) -> str:
        """The rank while ranking (errors of the chosen class or pair), else the image's mean IoU."""
        model = index.model()
        rank_shown = model.sourceModel().rank is not None if hasattr(model, "sourceModel") else False
        column = COL_RANK if rank_shown else COL_MIOU
        return str(index.sibling(index.row(), column).data(Qt.ItemDataRole.DisplayRole) or "")

    @staticmethod
    def badge_fill(index: _Index, badge: str) -> QColor:
        model = index.model()
        ranking = hasattr(model, "sourceModel") and model.sourceModel().rank is not None
        return QColor(60, 90, 160) if ranking else badge_colour(badge)


def make_grid(parent: QWidget) -> QListView:
    """A QListView in icon mode over the image list's proxy (set the model and selection model after)."""
    grid = QListView(parent)
    grid.setObjectName("image-grid")
    grid.setViewMode(QListView.ViewMode.IconMode)
    grid.setResizeMode(QListView.ResizeMode.Adjust)
    grid.setMovement(QListView.Movement.Static)
    grid.setUniformItemSizes(True)  # layout without asking every row for its size
    grid.setGridSize(CELL + QSize(4, 4))
    grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    grid.setItemDelegate(ThumbnailDelegate(grid))
    grid.setModelColumn(COL_NAME)
    grid.setSpacing(2)
    return grid

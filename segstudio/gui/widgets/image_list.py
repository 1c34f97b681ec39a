"""The image list: a table model over an image source and its results, and a filter proxy.

Thumbnails are asked for only when the view paints a row (``DecorationRole``), decoded on the loader's pool
and cached, so a 2,000-image split opens at once and scrolls smoothly. Sorting is done by the model with one
NumPy argsort (QSortFilterProxyModel calls back into Python for every comparison: seconds for 5,000 rows);
the proxy only filters and forwards header clicks to the model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor

from segstudio.gui.controllers.results import SplitResults
from segstudio.gui.workers.loaders import AsyncLoader

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 2
STATUS_ROLE = Qt.ItemDataRole.UserRole + 3  # the review status ("unreviewed", "accepted", "needs_fix", "fixed")
CORRECTED_ROLE = Qt.ItemDataRole.UserRole + 4  # True when the row's mask has a saved correction
COL_NAME, COL_SCENE, COL_MIOU, COL_RANK, COL_STATUS = range(5)
STATUS_TEXT = {"unreviewed": "", "accepted": "accepted", "needs_fix": "needs fix", "fixed": "fixed"}
RANK_HEADERS = {"class": "Errors", "pair": "Pixels", "improved": "Net fixed", "regressed": "Net broken",
                "suspects": "Suspected"}  # short: the rank column is narrow (its tooltip has the whole title)
REVIEW_ORDER = ("unreviewed", "needs_fix", "fixed", "accepted")  # sorting by status: what needs work first
STATUS_COLOURS = {"accepted": QColor(40, 150, 60), "needs_fix": QColor(180, 40, 160), "fixed": QColor(30, 120, 170)}
CORRECTED = "corrected"  # the status filter's choice of rows with a saved correction (not a review status)
CORRECTED_MARK, CORRECTED_COLOUR = "✎", QColor(200, 110, 20)
_Index = QModelIndex | QPersistentModelIndex


class ImageListModel(QAbstractTableModel):
    """Rows are the source's entries in the current order; the rank column is the selected class's (or
    pair's) error per image, or with an A/B comparison the pixels checkpoint B fixed (or broke) net. The status
    column is each image's review (the core's ReviewEntry: status, tags, note), with a pencil when its mask has a
    saved correction (the core's CorrectionItem)."""

    HEADERS = ("Image", "Scene", "mIoU", "Rank", "Status")

    def __init__(self, loader: AsyncLoader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.source: Any | None = None
        self.results: SplitResults | None = None
        self.rank: tuple | None = None  # ("class", id), ("pair", gt, pred), ("improved",) or ("regressed",)
        self.flips: dict[int, tuple[int, int]] = {}  # entry index -> (fixed, broken) by checkpoint B
        self.suspects: dict[int, tuple[int, int]] = {}  # entry index -> (place by label-quality score, pixels)
        self.reviews: dict[int, Any] = {}  # entry index -> ReviewEntry (absent: unreviewed)
        self.corrections: dict[int, Any] = {}  # entry index -> CorrectionItem of its saved correction
        self.rank_title = "Rank"
        self._order_held = False  # the pointer is over the list: rows stay where they are
        self._resort_pending = False
        self.order = np.zeros(0, dtype=np.int64)  # model row -> entry index
        self.position = np.zeros(0, dtype=np.int64)  # entry index -> model row
        self.sort_column, self.sort_order = COL_NAME, Qt.SortOrder.AscendingOrder
        loader.thumbnail_ready.connect(self._on_thumbnail)

    def set_source(self, source: Any | None, results: SplitResults | None) -> None:
        self.beginResetModel()
        self.source, self.results = source, results
        count = len(source.entries) if source is not None else 0
        self.order = self._sorted_order(count)
        self.position = np.argsort(self.order)
        self.endResetModel()

    def set_results(self, results: SplitResults | None) -> None:
        self.results = results
        self.refresh_scores()

    def hold_order(self, held: bool) -> None:
        """While held, new scores do not move rows (a click must land on the row under the pointer); the
        re-sort they asked for happens on release."""
        self._order_held = held
        if not held and self._resort_pending:
            self._resort_pending = False
            self.sort(self.sort_column, self.sort_order)

    def set_rank(self, rank: tuple | None, title: str = "Rank") -> None:
        self.rank, self.rank_title = rank, title
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, COL_RANK, COL_RANK)
        self.refresh_scores()

    def set_flips(self, flips: dict[int, tuple[int, int]] | None) -> None:
        """Per-image (fixed, broken) pixels of an A/B comparison (None or {}: no comparison)."""
        self.flips = dict(flips or {})
        self.refresh_scores()

    def set_label_issues(self, report: Any | None) -> None:
        """The core's LabelIssueReport of the split shown (None: not computed): the "suspects" ranking."""
        images = report.images if report is not None else []
        self.suspects = {image.index: (place, image.suspected) for place, image in enumerate(images)}
        self.refresh_scores()

    def set_reviews(self, reviews: dict[int, Any]) -> None:
        """Every image's review in the source shown (entry index -> ReviewEntry; absent: unreviewed)."""
        self.reviews = dict(reviews)
        if self.rowCount():
            self.dataChanged.emit(self.index(0, COL_STATUS), self.index(self.rowCount() - 1, COL_STATUS))
        if self.sort_column == COL_STATUS:
            self.sort(self.sort_column, self.sort_order)

    def set_review(self, entry_index: int, review: Any) -> None:
        """One image's review changed (its row keeps its place until the list is sorted again)."""
        self.reviews[entry_index] = review
        row = self.row_of(entry_index)
        self.dataChanged.emit(self.index(row, COL_NAME), self.index(row, COL_STATUS))

    def set_corrections(self, corrections: dict[int, Any]) -> None:
        """The saved corrections of the source shown (entry index -> CorrectionItem; absent: none)."""
        self.corrections = dict(corrections)
        if self.rowCount():
            self.dataChanged.emit(self.index(0, COL_NAME), self.index(self.rowCount() - 1, COL_STATUS))

    def set_correction(self, entry_index: int, item: Any) -> None:
        """One image's correction was saved."""
        self.corrections[entry_index] = item
        row = self.row_of(entry_index)
        self.dataChanged.emit(self.index(row, COL_NAME), self.index(row, COL_STATUS))

    def corrected(self, entry_index: int) -> bool:
        return entry_index in self.corrections

    def status(self, entry_index: int) -> str:
        review = self.reviews.get(entry_index)
        return review.status if review is not None else "unreviewed"

    def refresh_scores(self) -> None:
        """Scores changed (results streamed in): repaint the score columns and re-sort if sorted by them."""
        if self.rowCount() == 0:
            return
        self.dataChanged.emit(self.index(0, COL_MIOU), self.index(self.rowCount() - 1, COL_RANK),
                              [Qt.ItemDataRole.DisplayRole])
        if self.sort_column in (COL_MIOU, COL_RANK):
            if self._order_held:
                self._resort_pending = True
            else:
                self.sort(self.sort_column, self.sort_order)

    def entry(self, row: int) -> int:
        return int(self.order[row])

    def row_of(self, entry: int) -> int:
        return int(self.position[entry])

    # --- sorting --------------------------------------------------------------------------------------------

    def sort_keys(self, column: int) -> np.ndarray:
        """One float per entry; NaN (unscored, absent) always sorts last."""
        count = len(self.source.entries) if self.source is not None else 0
        keys = np.full(count, np.nan)
        if column == COL_NAME:
            return np.arange(count, dtype=np.float64)
        if column == COL_SCENE:
            names = sorted({e.scene for e in self.source.entries})
            rank = {name: i for i, name in enumerate(names)}
            return np.array([rank[e.scene] for e in self.source.entries], dtype=np.float64)
        if column == COL_STATUS:
            return np.array([REVIEW_ORDER.index(self.status(i)) for i in range(count)], dtype=np.float64)
        if column == COL_RANK and self.rank == ("suspects",):  # the label-quality order, most suspicious first
            for index, (place, _pixels) in self.suspects.items():
                if index < count:
                    keys[index] = count - place
            return keys
        if self.results is None:
            return keys
        for index in list(self.results.outcomes):
            value = self.rank_key(index) if column == COL_RANK else self.results.outcomes[index].mean_iou
            keys[index] = np.nan if value is None else value
        return keys

    def _sorted_order(self, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        keys = self.sort_keys(self.sort_column)
        descending = self.sort_order == Qt.SortOrder.DescendingOrder
        valid = ~np.isnan(keys)
        signed = np.where(valid, -keys if descending else keys, np.inf)
        return np.lexsort((np.arange(count), signed)).astype(np.int64)  # stable: ties keep dataset order

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:  # noqa: N802
        self.sort_column, self.sort_order = column, order
        self._resort_pending = False
        if self.source is None:
            return
        self.layoutAboutToBeChanged.emit()
        old_persistent = self.persistentIndexList()
        old_entries = [(self.entry(i.row()), i.column()) for i in old_persistent]
        self.order = self._sorted_order(len(self.source.entries))
        self.position = np.argsort(self.order)
        new = [self.index(self.row_of(entry), column) for entry, column in old_entries]
        self.changePersistentIndexList(old_persistent, new)
        self.layoutChanged.emit()

    # --- Qt model interface ----------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt signature
        return 0 if parent.isValid() or self.source is None else len(self.source.entries)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.rank_header() if section == COL_RANK else self.HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.rank_title if section == COL_RANK else self.HEADERS[section]  # a narrow column: full tip
        return None

    def rank_header(self) -> str:
        """A header short enough for its narrow column; the tooltip has the whole title."""
        kind = self.rank[0] if self.rank is not None else None
        return RANK_HEADERS.get(kind, "Rank")

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.source is None:
            return None
        entry_index = self.entry(index.row())
        column = index.column()
        if role == ENTRY_ROLE:
            return entry_index
        if role == STATUS_ROLE:
            return self.status(entry_index)
        if role == CORRECTED_ROLE:
            return self.corrected(entry_index)
        if role == Qt.ItemDataRole.ToolTipRole and column == COL_STATUS:
            return self._review_tip(entry_index)
        if role == Qt.ItemDataRole.ForegroundRole and column == COL_STATUS:
            return STATUS_COLOURS.get(self.status(entry_index))
        if role == Qt.ItemDataRole.DecorationRole and column == COL_NAME:
            return self.loader.thumbnail(self.source, entry_index)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(entry_index, column)
        if role == Qt.ItemDataRole.ToolTipRole and column == COL_NAME:
            entry = self.source.entries[entry_index]
            outcome = self.results.get(entry_index) if self.results else None
            return entry.file_name + (f"\n{outcome.error}" if outcome is not None and outcome.error else "")
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (COL_MIOU, COL_RANK):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, entry_index: int, column: int) -> str:
        entry = self.source.entries[entry_index]
        if column == COL_NAME:
            return entry.file_name.rsplit("/", 1)[-1]
        if column == COL_SCENE:
            return entry.scene
        if column == COL_STATUS:
            text = STATUS_TEXT[self.status(entry_index)]
            return f"{CORRECTED_MARK} {text}".strip() if self.corrected(entry_index) else text
        outcome = self.results.get(entry_index) if self.results is not None else None
        if column == COL_MIOU:
            if outcome is not None and outcome.error:
                return "error"
            value = outcome.mean_iou if outcome is not None else math.nan
            return "" if math.isnan(value) else f"{value:.3f}"
        value = self.rank_key(entry_index)
        return "" if value is None else f"{value:,}"

    def _review_tip(self, entry_index: int) -> str:
        review, item = self.reviews.get(entry_index), self.corrections.get(entry_index)
        corrected = "" if item is None else \
            f"corrected: {item.changed_pixels:,} px differ from the original (saved {item.time.replace('T', ' ')})"
        if review is None or not (review.reviewed or review.tags or review.note):
            return "\n".join(t for t in ("Not reviewed yet", corrected) if t)
        tags = ", ".join(sorted(review.tags))
        return "\n".join(t for t in (STATUS_TEXT[review.status] or "not reviewed", corrected,
                                      tags and f"tags: {tags}", review.note) if t)

    def rank_key(self, entry_index: int) -> int | None:
        """What the rank column shows and sorts by: ``rank_value``, or with an A/B ranking the net pixels B
        fixed ("improved") or broke ("regressed"), which may be negative; None when there is nothing."""
        if self.rank is not None and self.rank[0] in ("improved", "regressed"):
            if entry_index not in self.flips:
                return None
            fixed, broken = self.flips[entry_index]
            return fixed - broken if self.rank[0] == "improved" else broken - fixed
        if self.rank == ("suspects",):
            return self.suspects[entry_index][1] if entry_index in self.suspects else None
        value = self.rank_value(entry_index)
        return None if value < 0 else value

    def rank_value(self, entry_index: int) -> int:
        """Pixels of the ranked class's or pair's error in an image (-1: not ranking such, not predicted, or
        the class / pair is absent)."""
        outcome = self.results.get(entry_index) if self.results is not None else None
        if outcome is None or self.rank is None or self.rank[0] not in ("class", "pair"):
            return -1
        if self.rank[0] == "class":
            return outcome.class_errors(self.rank[1])
        pixels = outcome.pair_pixels(self.rank[1], self.rank[2])
        return pixels if pixels > 0 else -1

    def _on_thumbnail(self, token: str, entry_index: int) -> None:
        if self.source is not None and token == self.source.token and entry_index < self.rowCount():
            index = self.index(self.row_of(entry_index), COL_NAME)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ImageFilterProxy(QSortFilterProxyModel):
    """Filters by scene, by a class present (ground truth, else prediction), by review status (or a saved
    correction) and by review tag; with a pair ranking, only the images where that confusion happens. Sorting is
    forwarded to the model (see the module docstring)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scene: str | None = None
        self.present_class: int | None = None
        self.status: str | None = None
        self.tag: str | None = None
        self.kept: int | None = None  # an entry the review filters keep while it is on screen (being corrected)
        self.setDynamicSortFilter(False)

    def image_model(self) -> ImageListModel:
        return self.sourceModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:  # noqa: N802
        self.image_model().sort(column, order)

    def set_scene(self, scene: str | None) -> None:
        if (scene or None) != self.scene:
            self.beginFilterChange()
            self.scene = scene or None
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_present_class(self, class_id: int | None) -> None:
        if class_id != self.present_class:
            self.beginFilterChange()
            self.present_class = class_id
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_review_filter(self, status: str | None, tag: str | None) -> None:
        """Only images with this review status (None: any) and this tag (None: any)."""
        if (status, tag) != (self.status, self.tag):
            self.beginFilterChange()
            self.status, self.tag = status, tag
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def keep(self, entry: int | None) -> None:
        """Keep this entry through the review filters until another is kept (None: none); a row whose status a
        saved correction changed stays under the person's eyes until they move on."""
        if entry != self.kept:
            self.kept = entry
            self.refilter(reviews=True)

    def refilter(self, reviews: bool = False) -> None:
        """Results (or with ``reviews`` the reviews) changed: re-run the filter if one depends on them."""
        if self.scene is not None or self.present_class is not None or self._pair_ranking() or (
                reviews and (self.status is not None or self.tag is not None)):
            self.beginFilterChange()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def _pair_ranking(self) -> bool:
        rank = self.image_model().rank
        return rank is not None and rank[0] == "pair"

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:  # noqa: N802
        if (self.scene is None and self.present_class is None and self.status is None and self.tag is None
                and not self._pair_ranking()):
            return True  # the common case, called once per row on every reset and re-sort
        model = self.image_model()
        if model.source is None:
            return False
        entry_index = model.entry(row)
        if self.scene is not None and model.source.entries[entry_index].scene != self.scene:
            return False
        if entry_index != self.kept and not self._review_accepts(model, entry_index):
            return False
        if self._pair_ranking() and model.rank_value(entry_index) <= 0:
            return False
        if self.present_class is not None:
            outcome = model.results.get(entry_index) if model.results is not None else None
            if outcome is None or not outcome.has_class(self.present_class):
                return False
        return True

    def _review_accepts(self, model: ImageListModel, entry_index: int) -> bool:
        if self.status == CORRECTED:
            if not model.corrected(entry_index):
                return False
        elif self.status is not None and model.status(entry_index) != self.status:
            return False
        return self.tag is None or self.tag in getattr(model.reviews.get(entry_index), "tags", ())

    def entry_at(self, proxy_row: int) -> int:
        return self.image_model().entry(self.mapToSource(self.index(proxy_row, 0)).row())

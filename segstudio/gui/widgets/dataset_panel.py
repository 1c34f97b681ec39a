"""The dataset browser: open a dataset, choose a split, filter and sort the image list."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QCompleter,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from segstudio.gui.widgets.compact_combo import CompactComboBox
from segstudio.gui.widgets.image_grid import make_grid
from segstudio.gui.widgets.image_list import (
    COL_MIOU,
    COL_NAME,
    COL_RANK,
    COL_SCENE,
    COL_STATUS,
    CORRECTED,
    RANK_HEADERS,
    ImageFilterProxy,
    ImageListModel,
)
from segstudio.gui.workers.loaders import THUMB_SIZE

ORDERS = {
    "Dataset order": (COL_NAME, Qt.SortOrder.AscendingOrder),
    "Worst first": (COL_MIOU, Qt.SortOrder.AscendingOrder),
    "Best first": (COL_MIOU, Qt.SortOrder.DescendingOrder),
    "Ranked (most errors first)": (COL_RANK, Qt.SortOrder.DescendingOrder),
    "Suspected label errors first": (COL_RANK, Qt.SortOrder.DescendingOrder),
}
RANKED = "Ranked (most errors first)"
REVIEW_FILTERS = {"Any status": None, "Unreviewed": "unreviewed", "Accepted": "accepted", "Needs fix": "needs_fix",
                  "Fixed": "fixed", "Corrected": CORRECTED}
SUSPECTS = "Suspected label errors first"
SHORT_ORDERS = {RANKED: "Most errors", SUSPECTS: "Label errors"}  # the closed box's text (the list says all)


class DatasetPanel(QWidget):
    """Emits ``open_requested(spec)``, ``split_chosen(key)`` and ``row_chosen(entry)`` (the dataset row)."""

    open_requested = Signal(str)
    split_chosen = Signal(str)
    row_chosen = Signal(int)
    order_chosen = Signal(str)  # a name of ORDERS

    def __init__(self, model: ImageListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = ImageFilterProxy(self)
        self.proxy.setSourceModel(model)
        self.spec = QComboBox(self)
        self.spec.setEditable(True)
        self.spec.addItem("demo")
        self.spec.setToolTip("demo, a local folder (ADE20K layout, save_to_disk, image/mask pairs) or a Hub dataset")
        self.spec.lineEdit().returnPressed.connect(self._request)
        browse = QPushButton("Folder…", self)
        browse.clicked.connect(self.browse)
        self.open_button = QPushButton("Open", self)
        self.open_button.clicked.connect(self._request)
        self.split = CompactComboBox(self)
        self.split.setObjectName("split")
        self.split.activated.connect(self._on_split)
        self.scene = QComboBox(self)
        self.scene.currentIndexChanged.connect(self._on_scene)
        self.present = QComboBox(self)
        self.present.currentIndexChanged.connect(self._on_present)
        self.order = CompactComboBox(self)
        for name in ORDERS:  # the longest would set the whole dock's width: the closed box shows a short name
            self.order.add_item(name, short=SHORT_ORDERS.get(name))
        self.order.currentTextChanged.connect(self.apply_order)
        self._enable_ranked(False)
        self.view = self._make_view()
        self.grid = make_grid(self)
        self.grid.setModel(self.proxy)
        self.grid.setSelectionModel(self.view.selectionModel())  # one selection for both views
        self.grid.viewport().installEventFilter(self)
        self.views = QStackedWidget(self)
        self.views.addWidget(self.view)
        self.views.addWidget(self.grid)
        self.view_mode = QComboBox(self)
        self.view_mode.setObjectName("view-mode")
        self.view_mode.addItems(["List", "Grid"])
        self.view_mode.setToolTip("A table with scene and score columns, or a grid of thumbnails with score badges")
        self.view_mode.currentIndexChanged.connect(self.show_view)
        self._make_present_searchable()
        self.review_status = QComboBox(self)
        self.review_status.setObjectName("review-status")
        for text, status in REVIEW_FILTERS.items():
            self.review_status.addItem(text, status)
        self.review_status.setToolTip("Only the images with this review status (Corrected: those whose mask has a "
                                      "saved correction)")
        self.review_status.currentIndexChanged.connect(self._on_review_filter)
        self.review_tag = QComboBox(self)
        self.review_tag.setObjectName("review-tag")
        self.review_tag.setToolTip("Only the images with this review tag")
        self.review_tag.currentIndexChanged.connect(self._on_review_filter)
        self.count = QLabel("", self)
        self.review_progress = QLabel("", self)
        self.review_progress.setObjectName("review-progress")
        self._split_reviewed = False  # the split shown has reviews: the Status column is worth its room
        self._build_layout(browse)
        self.set_filters([], None)

    def _make_view(self) -> QTableView:
        view = QTableView(self)
        view.setModel(self.proxy)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        view.verticalHeader().setVisible(False)
        view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        view.verticalHeader().setDefaultSectionSize(THUMB_SIZE + 4)
        header = view.horizontalHeader()  # fixed widths: ResizeToContents would read every row
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        # the rank column's longest header and the sort arrow beside it stay whole
        rank_width = max(80, header.fontMetrics().horizontalAdvance(max(RANK_HEADERS.values(), key=len)) + 30)
        for column, width in ((COL_SCENE, 64), (COL_MIOU, 52), (COL_RANK, rank_width), (COL_STATUS, 80)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        view.setSortingEnabled(True)
        view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.setWordWrap(False)
        view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # file names differ at the end: keep it visible
        view.setColumnHidden(COL_RANK, True)
        view.setColumnHidden(COL_STATUS, True)
        view.sortByColumn(COL_NAME, Qt.SortOrder.AscendingOrder)
        view.selectionModel().currentRowChanged.connect(self._on_current)
        view.viewport().installEventFilter(self)
        return view

    def _make_present_searchable(self) -> None:
        """The class filter takes typing: any part of a name, in any case, among 150 ADE20K classes."""
        self.present.setEditable(True)
        self.present.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.present.lineEdit().setPlaceholderText("Any class (type to search)")
        completer = self.present.completer()
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        completer.activated[str].connect(self._on_class_typed)
        self.present.lineEdit().editingFinished.connect(lambda: self._on_class_typed(self.present.currentText()))

    def _on_class_typed(self, text: str) -> None:
        index = self.present.findText(text.strip(), Qt.MatchFlag.MatchFixedString)
        if index < 0:  # not a class: show the filter as it is
            index = self.present.currentIndex()
        self.present.setCurrentIndex(index)
        self.present.setEditText(self.present.itemText(index))

    def show_view(self, mode: int | str) -> None:
        """0 / "List": the table; 1 / "Grid": thumbnails with badges. Both keep the selection and order."""
        index = mode if isinstance(mode, int) else ["List", "Grid"].index(mode)
        self.views.setCurrentIndex(index)
        self.view_mode.setCurrentIndex(index)
        current = self.view.currentIndex()
        if current.isValid():
            (self.grid if index == 1 else self.view).scrollTo(current)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Rows hold still while the pointer is over the list (scores streaming in would move them)."""
        viewports = (self.view.viewport(), self.grid.viewport())
        if watched in viewports and event.type() in (QEvent.Type.Enter, QEvent.Type.Leave):
            self.model.hold_order(event.type() == QEvent.Type.Enter)
        return super().eventFilter(watched, event)

    def _build_layout(self, browse: QPushButton) -> None:
        top = QHBoxLayout()
        top.addWidget(self.spec, 1)
        top.addWidget(browse)
        top.addWidget(self.open_button)
        grid = QGridLayout()
        grid.addWidget(QLabel("Split"), 0, 0)
        grid.addWidget(self.split, 0, 1)
        grid.addWidget(QLabel("Order"), 0, 2)
        grid.addWidget(self.order, 0, 3)
        grid.addWidget(QLabel("Scene"), 1, 0)
        grid.addWidget(self.scene, 1, 1)
        grid.addWidget(QLabel("Class"), 1, 2)
        grid.addWidget(self.present, 1, 3)
        grid.addWidget(QLabel("Review"), 2, 0)
        grid.addWidget(self.review_status, 2, 1)
        grid.addWidget(QLabel("Tag"), 2, 2)
        grid.addWidget(self.review_tag, 2, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addWidget(self.views, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count)
        bottom.addWidget(self.review_progress, 1)
        bottom.addWidget(self.view_mode)
        layout.addLayout(bottom)

    # --- dataset and split ---------------------------------------------------------------------------------

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a dataset folder")
        if folder:
            self.spec.setEditText(folder)
            self._request()

    def _request(self) -> None:
        spec = self.spec.currentText().strip()
        if spec:
            self.open_requested.emit(spec)

    def set_recent(self, specs: list[str]) -> None:
        current = self.spec.currentText()
        self.spec.clear()
        self.spec.addItems(list(dict.fromkeys(["demo", *specs])))
        self.spec.setEditText(current)

    def set_splits(self, items: list[tuple[str, str]], current: str | None) -> None:
        """``items``: (key, label) such as ("validation", "validation (48)"); the closed box shows the key."""
        self.split.blockSignals(True)
        self.split.clear()
        for key, label in items:
            self.split.add_item(label, key, short=key)
        if current is not None:
            self.split.setCurrentIndex(max(0, self.split.findData(current)))
        self.split.blockSignals(False)

    def _on_split(self, index: int) -> None:
        key = self.split.itemData(index)
        if key:
            self.split_chosen.emit(key)

    # --- filters and order ---------------------------------------------------------------------------------

    def set_filters(self, scenes: list[str], label_map) -> None:
        for combo in (self.scene, self.present):
            combo.blockSignals(True)
            combo.clear()
        self.scene.addItem("All scenes", None)
        for name in scenes:
            self.scene.addItem(name, name)
        self.present.addItem("Any class", None)
        if label_map is not None:
            for class_id in range(label_map.num_labels):
                self.present.addItem(str(label_map.name(class_id)).strip(), class_id)
        for combo in (self.scene, self.present):
            combo.blockSignals(False)
        self.proxy.set_scene(None)
        self.proxy.set_present_class(None)

    def set_review_tags(self, tags: list[str]) -> None:
        """The tags the Tag filter offers (those used in the record); a chosen tag still in use stays chosen."""
        current = self.review_tag.currentData()
        self.review_tag.blockSignals(True)
        self.review_tag.clear()
        self.review_tag.addItem("Any tag", None)
        for tag in tags:
            self.review_tag.addItem(tag, tag)
        self.review_tag.setCurrentIndex(max(0, self.review_tag.findData(current)))
        self.review_tag.blockSignals(False)
        self._on_review_filter()

    def set_review_status(self, status: str | None) -> None:
        """Show only the images with this review status (None: any)."""
        self.review_status.setCurrentIndex(max(0, self.review_status.findData(status)))

    def _on_review_filter(self, _index: int = 0) -> None:
        self.proxy.set_review_filter(self.review_status.currentData(), self.review_tag.currentData())
        self.update_count()

    def set_review_progress(self, reviewed: int, total: int) -> None:
        """``312 of 2,000 reviewed`` (empty while there is nothing to review)."""
        self.review_progress.setText(f"· {reviewed:,} of {total:,} reviewed" if total else "")

    def _on_scene(self, index: int) -> None:
        self.proxy.set_scene(self.scene.itemData(index))
        self.update_count()

    def _on_present(self, index: int) -> None:
        self.proxy.set_present_class(self.present.itemData(index))
        self.update_count()

    def set_present_class(self, class_id: int | None) -> None:
        self.present.setCurrentIndex(max(0, self.present.findData(class_id)))

    def set_scene(self, scene: str | None) -> None:
        self.scene.setCurrentIndex(max(0, self.scene.findData(scene)))

    def apply_order(self, name: str) -> None:
        self.order_chosen.emit(name)  # "Suspected label errors first" ranks the list before it sorts
        column, order = ORDERS[name]
        self.view.sortByColumn(column, order)

    def set_ranking(self, title: str | None) -> None:
        """Show the rank column and sort by it (a class or pair was selected); None goes back to worst first.
        The scene column gives way meanwhile (the Scene filter stays), so file names keep their room."""
        self.view.setColumnHidden(COL_RANK, title is None)
        self.view.setColumnHidden(COL_SCENE, title is not None)
        self._enable_ranked(title is not None)
        self.order.setCurrentText(RANKED if title is not None else "Worst first")
        self.apply_order(self.order.currentText())
        self.update_count()
        self.show_status_column()

    def show_status_column(self, split_reviewed: bool | None = None) -> None:
        """Once the split has reviews the Status column takes the Scene column's room (the Scene filter stays), so
        file names keep theirs; a rank column takes precedence over both."""
        if split_reviewed is not None:
            self._split_reviewed = split_reviewed
        ranked = not self.view.isColumnHidden(COL_RANK)
        self.view.setColumnHidden(COL_STATUS, ranked or not self._split_reviewed)
        self.view.setColumnHidden(COL_SCENE, ranked or self._split_reviewed)

    def _enable_ranked(self, enabled: bool) -> None:
        """"Ranked" needs a class, confusion or comparison to rank by: offered only while one is selected."""
        item = self.order.model().item(self.order.findText(RANKED))
        item.setEnabled(enabled)
        item.setToolTip("" if enabled else "Pick a class, a confusion or run a comparison to rank by")

    def update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        self.count.setText(f"{shown} of {total} images" if shown != total else f"{total} images")

    # --- current row ---------------------------------------------------------------------------------------

    def current_entry(self) -> int | None:
        """The dataset row index of the selected image."""
        index = self.view.currentIndex()
        return self.model.entry(self.proxy.mapToSource(index).row()) if index.isValid() else None

    def select_entry(self, entry: int) -> bool:
        proxy_index = self.proxy.mapFromSource(self.model.index(self.model.row_of(entry), 0))
        if not proxy_index.isValid():
            return False
        self.select_proxy_row(proxy_index.row())
        return True

    def select_proxy_row(self, row: int) -> None:
        if 0 <= row < self.proxy.rowCount():
            index = self.proxy.index(row, 0)
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            self.view.selectionModel().setCurrentIndex(index, flags)
            (self.grid if self.views.currentIndex() == 1 else self.view).scrollTo(index)

    def step(self, delta: int) -> None:
        """Next (+1) / previous (-1) image in the list's current order."""
        current = self.view.currentIndex()
        row = current.row() + delta if current.isValid() else 0
        self.select_proxy_row(min(max(row, 0), self.proxy.rowCount() - 1))

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            entry = self.model.entry(self.proxy.mapToSource(current).row())
            self.row_chosen.emit(entry)
            if self.proxy.kept not in (None, entry):  # moved on: the row kept on screen goes if filtered out
                QTimer.singleShot(0, self, lambda: self.proxy.keep(None))

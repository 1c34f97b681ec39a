"""Table models fed with NumPy: image list (lazy thumbnails, sort, filters, ranking), class table, confusions."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView

from segstudio.core.labels.label_map import LabelMap
from segstudio.core.metrics.confusion import ConfusionMatrix
from segstudio.gui.controllers.results import ResultsCache, SplitResults, outcome_from
from segstudio.gui.controllers.sources import Entry, PackedMask
from segstudio.gui.widgets.class_table import CLASS_ROLE, ClassTable
from segstudio.gui.widgets.confusions import ConfusionsPanel
from segstudio.gui.widgets.dataset_panel import DatasetPanel
from segstudio.gui.widgets.image_list import COL_MIOU, COL_RANK, ENTRY_ROLE, ImageListModel
from segstudio.gui.workers.loaders import AsyncLoader

NAMES = LabelMap.from_names(["sky", "tree", "road"])


class FakeSource:
    """``count`` synthetic entries; counts the thumbnails asked for (from the loader's pool threads)."""

    def __init__(self, count: int, token: str = "fake") -> None:
        self.token = token
        self.split = "validation"
        self.entries = [Entry(i, f"images/img_{i:05d}.jpg", ("park", "street")[i % 2]) for i in range(count)]
        self.thumbnails: list[int] = []
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.entries)

    def thumbnail(self, index: int, size: int) -> np.ndarray:
        with self.lock:
            self.thumbnails.append(index)
        return np.full((size, size, 3), index % 255, np.uint8)


def scored(count: int, wrong_tree: dict[int, int]) -> SplitResults:
    """Results where image i has ground truth sky|road and the model says tree on ``wrong_tree[i]`` road pixels."""
    results = SplitResults(3, 255, count)
    matrix = ConfusionMatrix(3)
    for i in range(count):
        gt = np.zeros((10, 20), np.uint8)
        gt[5:] = 2
        pred = gt.copy()
        flat = pred[5:].reshape(-1)
        flat[: wrong_tree.get(i, 0)] = 1
        results.add(outcome_from(i, pred, matrix.update(pred, gt), None, 3))
    return results


@pytest.fixture
def loader():
    pool = AsyncLoader()
    yield pool
    assert pool.shutdown()


def test_thumbnails_are_decoded_only_for_rows_on_screen(qtbot, loader):
    source = FakeSource(3000)
    model = ImageListModel(loader)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(400, 300)
    view.verticalHeader().setDefaultSectionSize(60)
    started = time.perf_counter()
    model.set_source(source, None)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: len(source.thumbnails) > 0)
    assert time.perf_counter() - started < 2.0
    assert loader.wait_idle()
    qtbot.wait(50)
    assert 0 < len(set(source.thumbnails)) < 30  # a screenful, not 3,000
    assert model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole) is not None  # cached after the first ask
    view.scrollToBottom()
    qtbot.waitUntil(lambda: max(source.thumbnails) > 2900)
    assert loader.wait_idle()
    assert len(set(source.thumbnails)) < 60


def test_sort_worst_first_and_by_class_errors(qtbot, loader):
    source = FakeSource(6)
    results = scored(6, {1: 60, 3: 10, 4: 30})
    model = ImageListModel(loader)
    model.set_source(source, results)
    model.sort(COL_MIOU, Qt.SortOrder.AscendingOrder)
    entries = [model.data(model.index(r, 0), ENTRY_ROLE) for r in range(6)]
    assert entries[:3] == [1, 4, 3] and sorted(entries[3:]) == [0, 2, 5]
    model.set_rank(("class", 2), "road errors (px)")  # the road pixels called tree
    model.sort(COL_RANK, Qt.SortOrder.DescendingOrder)
    assert [model.entry(r) for r in range(3)] == [1, 4, 3]
    assert model.data(model.index(0, COL_RANK)) == "60"
    assert model.headerData(COL_RANK, Qt.Orientation.Horizontal) == "Errors"  # short: the column is narrow
    assert model.headerData(COL_RANK, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole) == "road errors (px)"
    model.set_rank(("class", 1), "tree errors (px)")  # tree is absent from the ground truth: false positives only
    assert [model.rank_value(i) for i in range(6)] == [-1, 60, -1, 10, 30, -1]
    assert [model.entry(r) for r in range(3)] == [1, 4, 3]  # re-sorted by the new ranking at once


def test_unscored_rows_sort_last_and_a_stream_resorts(qtbot, loader):
    source = FakeSource(4)
    results = SplitResults(3, 255, 4)
    model = ImageListModel(loader)
    model.set_source(source, results)
    model.sort(COL_MIOU, Qt.SortOrder.AscendingOrder)
    full = scored(4, {2: 40})
    results.add(full.get(0))
    results.add(full.get(2))
    model.refresh_scores()
    assert [model.entry(r) for r in range(4)] == [2, 0, 1, 3]
    assert model.data(model.index(2, COL_MIOU)) == ""


def test_panel_filters_by_scene_class_and_pair(qtbot, loader):
    source = FakeSource(6)
    results = scored(6, {1: 60, 3: 10, 4: 30})
    model = ImageListModel(loader)
    panel = DatasetPanel(model)
    qtbot.addWidget(panel)
    model.set_source(source, results)
    panel.set_filters(["park", "street"], NAMES)
    panel.set_scene("street")
    assert sorted(panel.proxy.entry_at(r) for r in range(panel.proxy.rowCount())) == [1, 3, 5]
    assert panel.count.text() == "3 of 6 images"
    panel.set_scene(None)
    panel.set_present_class(1)  # no ground truth has tree
    assert panel.proxy.rowCount() == 0
    panel.set_present_class(2)
    assert panel.proxy.rowCount() == 6
    panel.set_present_class(None)
    model.set_rank(("pair", 2, 1), "road → tree (px)")
    panel.proxy.refilter()
    panel.set_ranking("road → tree (px)")
    assert [panel.proxy.entry_at(r) for r in range(panel.proxy.rowCount())] == [1, 4, 3]
    assert not panel.view.isColumnHidden(COL_RANK)


def test_arrow_step_follows_the_list_order(qtbot, loader):
    source = FakeSource(5)
    model = ImageListModel(loader)
    panel = DatasetPanel(model)
    qtbot.addWidget(panel)
    model.set_source(source, scored(5, {3: 50, 1: 20}))
    panel.apply_order("Worst first")
    chosen = []
    panel.row_chosen.connect(chosen.append)
    panel.select_proxy_row(0)
    panel.step(1)
    panel.step(1)
    panel.step(-1)
    assert chosen == [3, 1, 0, 1]
    assert panel.select_entry(4) and panel.current_entry() == 4


def test_class_table_totals_sorting_and_selection(qtbot):
    table = ClassTable()
    qtbot.addWidget(table)
    results = scored(4, {0: 50})
    table.set_results(results.class_rows(), results.metrics(), NAMES, results.scored, 4)
    assert "mean IoU" in table.totals.text()
    rows = table.proxy.rowCount()
    assert rows == 3  # sky, tree (predicted only), road
    names = [table.proxy.index(r, 0).data() for r in range(rows)]
    assert names[0] == "tree"  # sorted by IoU, lowest first
    picked = []
    table.class_selected.connect(picked.append)
    table.select_class(2)
    assert picked == [2] and table.selected_class() == 2
    table.view.sortByColumn(3, Qt.SortOrder.DescendingOrder)  # ground-truth pixels
    assert table.proxy.index(0, 0).data(CLASS_ROLE) == 2
    table.set_results(results.class_rows(), results.metrics(), NAMES, 2, 4)  # a streamed update keeps selection
    assert table.selected_class() == 2
    assert "so far: 2 of 4" in table.totals.text()


def test_ending_a_comparison_sorted_by_its_change_sorts_by_iou_again(qtbot):
    table = ClassTable()
    qtbot.addWidget(table)
    results = scored(4, {0: 50})
    table.set_results(results.class_rows(), results.metrics(), NAMES, results.scored, 4)
    table.set_comparison({0: 1.0, 1: 0.0, 2: 1.0}, "A/B")  # tree gains nothing, the others most
    table.sort_by_delta(regressions_first=False)
    assert table.proxy.index(0, 0).data() != "tree"
    table.set_comparison(None)  # End A/B: the column sorted by is gone
    names = [table.proxy.index(r, 0).data() for r in range(table.proxy.rowCount())]
    assert names[0] == "tree" and table.view.horizontalHeader().sortIndicatorSection() == 1


def test_confusions_list_pairs_and_heatmap_click(qtbot):
    panel = ConfusionsPanel()
    qtbot.addWidget(panel)
    panel.resize(300, 500)
    panel.show()
    qtbot.waitExposed(panel)
    results = scored(3, {0: 40, 1: 10})
    panel.set_results(results.top_confusions(5), results.matrix, NAMES)
    assert panel.model.rowCount() == 1
    assert [panel.model.index(0, c).data() for c in range(4)] == ["road", "tree", "50", "16.7"]
    picked = []
    panel.pair_selected.connect(lambda gt, pred: picked.append((gt, pred)))
    panel.view.selectRow(0)
    assert picked == [(2, 1)]
    heat = panel.heatmap
    assert list(heat.classes) == [0, 1, 2]
    grid = heat._grid()
    cell = grid.width() // 3
    point = grid.topLeft() + type(grid.topLeft())(cell // 2, 2 * cell + cell // 2)  # row road, column sky
    assert heat.cell_at(point) == (2, 0)
    qtbot.mouseClick(heat, Qt.MouseButton.LeftButton, pos=point)
    assert picked[-1] == (2, 0)  # not in the top list: still emitted, so images can be filtered by it


def test_packed_masks_round_trip_and_are_small():
    mask = np.zeros((512, 683), np.uint8)
    mask[100:300, 50:400] = 7
    packed = PackedMask.pack(mask)
    assert np.array_equal(packed.unpack(), mask)
    assert packed.nbytes < mask.nbytes / 50


def test_results_cache_lets_the_least_recently_shown_pair_go_first() -> None:
    cache = ResultsCache(capacity=3)
    made = {name: SplitResults(3, 255, 1) for name in "abcd"}
    for name in "abc":
        cache.put("model", name, made[name])
    assert cache.get("model", "a") is made["a"]  # "a" is now the most recent; "b" the oldest
    cache.put("model", "d", made["d"])
    assert len(cache) == 3
    assert cache.get("model", "b") is None
    assert [cache.get("model", name) for name in "acd"] == [made["a"], made["c"], made["d"]]
    cache.put("model", "a", made["a"])  # putting a kept pair again does not grow the cache
    assert len(cache) == 3

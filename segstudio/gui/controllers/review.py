"""Review wiring: which dataset, split and model are open, their cached results, and what the views show.

It starts the loading / prediction jobs, files streamed results into the cache, and refreshes the image list,
class table, confusions, viewer and legend (throttled, so streaming never floods the GUI thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from segstudio.core.labels import PALETTES, high_contrast_palette, present_classes
from segstudio.gui.controllers.results import ResultsCache, SplitResults, scored_against
from segstudio.gui.controllers.sources import DROPPED, FileSource, SplitSource
from segstudio.gui.widgets.class_table import ClassTable
from segstudio.gui.widgets.confusions import ConfusionsPanel
from segstudio.gui.widgets.dataset_panel import SUSPECTS, DatasetPanel
from segstudio.gui.widgets.image_list import COL_RANK, COL_SCENE, ImageListModel
from segstudio.gui.widgets.legend import LegendWidget
from segstudio.gui.widgets.viewer import ImageViewer, ViewContent
from segstudio.gui.workers import jobs
from segstudio.gui.workers.loaders import AsyncLoader
from segstudio.gui.workers.worker import ErrorInfo, JobRunner

AUTO_EVALUATE_MAX = 2500  # larger splits are evaluated on request (Run > Evaluate Split)
REFRESH_MS = 200


class _NoLabels:
    """Stands in for a label map while no model is loaded (dropped images are shown before prediction)."""

    num_labels = 0
    palette = np.zeros((0, 3), dtype=np.uint8)

    def name(self, class_id: int) -> str:
        return str(class_id)


class ReviewController(QObject):
    """Owns the review state; the main window creates the widgets and hands them over."""

    status = Signal(str)
    error = Signal(object)  # ErrorInfo
    progress = Signal(int, int, object, str)  # done, total, eta seconds, label
    progress_done = Signal(str)
    dataset_opened = Signal(str)
    model_loaded = Signal(str)
    dataset_changed = Signal()  # set_dataset showed another dataset

    def __init__(self, jobs_runner: JobRunner, loader: AsyncLoader, image_model: ImageListModel,
                 dataset_panel: DatasetPanel, viewer: ImageViewer, legend: LegendWidget, class_table: ClassTable,
                 confusions: ConfusionsPanel, model_panel: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs, self.loader, self.image_model = jobs_runner, loader, image_model
        self.panel, self.viewer, self.legend = dataset_panel, viewer, legend
        self.class_table, self.confusions, self.model_panel = class_table, confusions, model_panel
        self.dataset: Any = None
        self.sources: dict[str, Any] = {}
        self.source: Any = None
        self.bundle: jobs.ModelBundle | None = None
        self.dataset_spec = ""  # what the dataset box should read: the dataset shown
        self._loading_model = ""
        self.cache = ResultsCache()
        self.row: int | None = None
        self._decoded: tuple[int, Any, Any] | None = None  # (row, rgb, gt) of the row on screen
        self.mask_override: Callable[[int], Any] | None = None  # the mask editor's edited ground truth of a row
        self.edited_mask: Callable[[str, int], Any] | None = None  # (source token, row) -> a mask edited here
        self.auto_evaluate = True
        self.palette = "ade20k"  # how the shown image's classes are coloured (View > Palette)
        self.gate: Callable[[str, bool], bool] | None = None  # the label guard's say on starting a run
        self.prepare_dataset: Callable[[Any], Any] | None = None  # a worker's last step on a loaded dataset
        self._model_after_dataset = False
        self._auto_row: int | None = None
        self._shown_issues: Any = None  # the LabelIssueReport the image list ranks by
        self._refresh = QTimer(self, singleShot=True, interval=REFRESH_MS, timeout=self.refresh_results)
        loader.image_ready.connect(self._on_image)
        loader.image_failed.connect(self._on_image_failed)
        dataset_panel.split_chosen.connect(self.show_source)
        dataset_panel.row_chosen.connect(self.show_row)
        dataset_panel.open_requested.connect(self.open_dataset)
        dataset_panel.order_chosen.connect(self._on_order)
        model_panel.load_requested.connect(self.open_model)
        class_table.class_selected.connect(self.rank_by_class)
        confusions.pair_selected.connect(self.rank_by_pair)
        legend.class_selected.connect(self._on_legend)

    # --- datasets -------------------------------------------------------------------------------------------

    def open_dataset(self, spec: str, options: Any = None) -> None:
        """Load a dataset in a worker; ``options`` is the core's SourceOptions (None: the source's defaults)."""
        self.panel.spec.setEditText(spec)
        self.status.emit(f"Opening dataset {spec}…")
        if self.viewer.content is None:  # blank panes say what is happening, not nothing
            hint = (" The demo is drawn on the first launch (about 10 seconds) and read from the cache after that."
                    if spec == "demo" else "")
            self.viewer.set_notice(f"Opening dataset {spec}…{hint}")
        self.panel.open_button.setEnabled(False)
        prepare = self.prepare_dataset or (lambda dataset: dataset)
        self.jobs.submit("dataset", lambda ctx: (spec, prepare(jobs.load_dataset(spec, options))),
                         on_result=self._on_dataset, on_error=self._on_dataset_error)

    def autoload(self, spec: str = "demo") -> None:
        """Open a dataset, then the demo model: one after the other, so the image list shows within seconds
        (both first imports, datasets then torch, would otherwise compete for two CPU cores)."""
        self._model_after_dataset = True
        self.open_dataset(spec)

    def _then_model(self) -> None:
        if self._model_after_dataset:
            self._model_after_dataset = False
            self.open_default_model()

    def _on_dataset(self, value: tuple[str, Any]) -> None:
        spec, dataset = value
        self.panel.open_button.setEnabled(True)
        self.set_dataset(dataset)
        self.dataset_spec = spec
        self.dataset_opened.emit(spec)
        self._then_model()

    def _on_dataset_error(self, info: ErrorInfo) -> None:
        self.panel.open_button.setEnabled(True)
        if self.viewer.content is None:
            self.viewer.set_notice(f"Could not open the dataset: {info.message}\nFile > Open Dataset (Ctrl+O) "
                                   "takes demo, a local folder or a Hub dataset id.")
        self.panel.spec.setEditText(self.dataset_spec)  # the box names what is shown, not what failed
        self.error.emit(info)
        self._then_model()

    def set_dataset(self, dataset: Any, split: str | None = None) -> None:
        """Show a ``SegDataset`` (validation split by default)."""
        names = list(dataset.splits)
        if not names:
            self.error.emit(ErrorInfo("Open dataset", f"{dataset.source} has no splits.", "", "DataSourceError"))
            return
        self.dataset = dataset
        self.dataset_spec = str(dataset.source)
        self.sources = {k: v for k, v in self.sources.items() if k == DROPPED}
        self.cache.retain({source.token for source in self.sources.values()})  # the old dataset's go
        split = split or ("validation" if "validation" in names else names[0])
        self._update_split_combo(split)
        sizes = ", ".join(f"{k} {v}" for k, v in dataset.sizes().items())
        notice = getattr(dataset, "notice", None)
        self.status.emit(f"Dataset {dataset.source}: {sizes}" + (f"; {notice}" if notice else ""))
        self.show_source(split)
        self.dataset_changed.emit()

    def _update_split_combo(self, current: str) -> None:
        items = [(name, f"{name} ({len(split)})") for name, split in (self.dataset.splits.items()
                                                                      if self.dataset is not None else [])]
        if DROPPED in self.sources:  # named like the splits, short enough for the box
            items.append((DROPPED, f"{DROPPED} ({len(self.sources[DROPPED].entries)})"))
        self.panel.set_splits(items, current)

    def _source(self, key: str) -> Any:
        if key not in self.sources:
            self.sources[key] = SplitSource(self.dataset, key)
        return self.sources[key]

    def show_source(self, key: str) -> None:
        """Show a split (or the dropped images) with whatever results the cache has; evaluate if needed."""
        source = self._source(key)
        self.source, self.row, self._decoded = source, None, None
        self._clear_ranking()
        self.image_model.set_source(source, self.results())
        scenes = sorted({e.scene for e in source.entries if e.scene})
        self.panel.set_filters(scenes, self.label_map())
        self.panel.set_ranking(None)
        self._update_split_combo(key)
        self.viewer.set_content(None)
        self.legend.set_image_classes(None, None, None)
        self.refresh_results()
        self.panel.select_proxy_row(0)
        self._auto_row = self.row  # until the person picks another image
        self.maybe_evaluate()

    def label_map(self):
        if self.source is not None and getattr(self.source, "label_map", None) is not None:
            return self.source.label_map
        return self.bundle.loaded.label_map if self.bundle is not None else None

    def convention(self):
        """The label convention of what is shown: the dataset's, or the model's for dropped images."""
        if self.source is not None and getattr(self.source, "convention", None) is not None:
            return self.source.convention
        return self.bundle.loaded.convention if self.bundle is not None else None

    def ignore_index(self) -> int:
        from segstudio.core.labels import IGNORE_INDEX

        convention = self.convention()
        return convention.ignore_index if convention is not None else IGNORE_INDEX

    # --- models ---------------------------------------------------------------------------------------------

    def open_model(self, spec: str, device: str = "auto", image_size: int | None = None) -> None:
        self._loading_model = spec
        self.status.emit(f"Loading model {spec}…")
        self.model_panel.set_loading(spec)
        dataset = self.dataset
        self.jobs.submit("model", lambda ctx: jobs.load_model_bundle(spec, dataset, device, image_size),
                         on_result=self.set_model, on_error=self._on_model_error)

    def open_default_model(self, device: str = "auto") -> None:
        """The demo model (a scratch model with the demo's classes until the demo checkpoint is installed)."""
        self._loading_model = "demo"
        self.status.emit("Loading the demo model…")
        self.model_panel.set_loading("demo")
        self.jobs.submit("model", lambda ctx: jobs.load_default_bundle(device),
                         on_result=self.set_model, on_error=self._on_model_error)

    def _on_model_error(self, info: ErrorInfo) -> None:
        self.model_panel.set_failed(self._loading_model, info.message,
                                    self.bundle.spec if self.bundle is not None else None)
        self.error.emit(info)

    def set_model(self, bundle: jobs.ModelBundle) -> None:
        if self.jobs.is_running("evaluate"):
            self.jobs.cancel("evaluate")
        if self.bundle is not None and self.bundle.token != bundle.token:
            self.cache.drop_model(self.bundle.token)  # keep one model's predictions, not every checkpoint's
        self.bundle = bundle
        loaded = bundle.loaded
        self.model_panel.set_loaded(bundle.spec, bundle.device, loaded.label_map.num_labels,
                                    loaded.report.summary(), loaded.report.ok, bundle.training_options)
        self.status.emit(f"Model {bundle.spec} loaded on {bundle.device}")
        self.model_loaded.emit(bundle.spec)
        if self.source is not None:
            self.image_model.set_results(self.results())
            self.refresh_results()
            self.maybe_evaluate()

    def _fits(self) -> str | None:
        """Why the model cannot score this dataset (class counts differ), or None."""
        if self.bundle is None or self.dataset is None or self.source is None or self.source.split == DROPPED:
            return None
        have, want = self.bundle.loaded.label_map.num_labels, self.dataset.label_map.num_labels
        if have != want:
            return (f"the model predicts {have} classes but the dataset has {want}: fine-tune it on this dataset "
                    "(Training panel) or open a model trained with these classes")
        return None

    # --- results --------------------------------------------------------------------------------------------

    def results(self, create: bool = True, source: Any = None) -> SplitResults | None:
        """The open model's results of ``source`` (default: the one shown), made empty if ``create``."""
        source = self.source if source is None else source
        if self.bundle is None or source is None:
            return None
        found = self.cache.get(self.bundle.token, source.token)
        if found is None and create:
            loaded = self.bundle.loaded
            found = SplitResults(loaded.label_map.num_labels, self.ignore_index(), len(source))
            self.cache.put(self.bundle.token, source.token, found)
        return found

    def maybe_evaluate(self) -> None:
        results = self.results()
        if results is None or results.complete or not self.auto_evaluate:
            return
        if len(self.source) <= AUTO_EVALUATE_MAX or self.source.split == DROPPED:
            self.evaluate(explicit=False)
        else:
            self.status.emit(f"{len(self.source)} images: press F5 (Run > Evaluate Split) to predict them all.")

    def evaluate(self, explicit: bool = True) -> None:
        """Predict (and score, with ground truth) the shown split in a worker, streaming results in."""
        results = self.results()
        if results is None:
            self.status.emit("Open a dataset and a model first.")
            return
        problem = self._fits()
        if problem:
            self.class_table.clear(f"Cannot score: {problem}")
            if explicit:  # an automatic start says it in the table, not in a dialog each time
                self.error.emit(ErrorInfo("Evaluate", problem, "", "ModelMismatch"))
            return
        if results.complete:
            self.status.emit("This split is already evaluated with this model.")
            return
        if isinstance(self.source, SplitSource) and self.gate is not None and not self.gate("evaluate", explicit):
            return
        source, bundle = self.source, self.bundle
        tag = (bundle.token, source.token)
        run = jobs.predict_files if isinstance(source, FileSource) else jobs.evaluate_source
        self.progress.emit(0, len(source), None, "Predicting")
        self.jobs.submit("evaluate", lambda ctx: (tag, run(ctx, source, bundle, tag)),
                         on_progress=self._on_stream, on_result=self._on_evaluated,
                         on_error=self._on_evaluate_error)

    def _on_stream(self, update: jobs.StreamUpdate) -> None:
        results = self.cache.get(*update.tag)
        if results is None:
            return
        for outcome in update.outcomes:
            results.add(self.with_edits(update.tag[1], outcome))
        if results is self.results(create=False):
            self.progress.emit(update.done, update.total, update.eta_seconds, "Predicting")
            if self.row is not None and any(o.index == self.row for o in update.outcomes):
                self._show_decoded()
            if not self._refresh.isActive():
                self._refresh.start()

    def _on_evaluated(self, value: tuple[tuple[str, str], jobs.PredictOutcome]) -> None:
        tag, outcome = value
        results = self.cache.get(*tag)
        if results is not None and not outcome.cancelled:
            results.complete = True
            results.label_issues = outcome.label_issues
        text = "Cancelled" if outcome.cancelled else f"Predicted {outcome.done} images"
        if outcome.skipped:
            text += f"; {len(outcome.skipped)} skipped (first: {outcome.skipped[0][0]}: {outcome.skipped[0][1]})"
        if self.jobs.job("evaluate") is None:  # not replaced by a newer run (another split or model)
            self.progress_done.emit(text)
        self.refresh_results()
        if not outcome.cancelled and self.row is not None and self.row == self._auto_row:
            self.panel.select_proxy_row(0)  # nobody chose an image yet: show the worst one
            self._auto_row = self.row

    def _on_evaluate_error(self, info: ErrorInfo) -> None:
        self.progress_done.emit(f"Evaluation failed: {info.message}")
        self.error.emit(info)

    def cancel(self) -> None:
        self.jobs.cancel("evaluate")

    def with_edits(self, source_token: str, outcome: Any) -> Any:
        """A streamed outcome of a row whose mask was edited in this window, scored against the edited mask (the
        dataset, read when it was opened, still holds the old one); any other outcome as it is."""
        mask = self.edited_mask(source_token, outcome.index) if self.edited_mask is not None else None
        rescored = scored_against(outcome, mask, self.ignore_index()) if mask is not None else None
        return outcome if rescored is None else rescored

    def refresh_results(self) -> None:
        """Push the current results into the list, class table and confusions."""
        self._refresh.stop()
        results = self.results(create=False)
        label_map = self.label_map()
        if results is None or not results.scored:
            note = "Predictions only (no ground truth)." if results is not None and results.done else "No results yet."
            self.class_table.clear(note)
            self.confusions.set_results([], None, label_map)
        else:
            self.class_table.set_results(results.class_rows(), results.metrics(), label_map, results.scored,
                                         results.total)
            self.confusions.set_results(results.top_confusions(25), results.matrix, label_map)
        report = results.label_issues if results is not None else None
        if report is not self._shown_issues:
            self._shown_issues = report
            self.image_model.set_label_issues(report)
        self.image_model.refresh_scores()
        self.panel.proxy.refilter()
        self.panel.update_count()

    # --- ranking and highlight ------------------------------------------------------------------------------

    def _clear_ranking(self) -> None:
        """A new image source starts unranked, unfiltered and without a highlight."""
        self.image_model.set_rank(None)
        self.class_table.select_class(None, quiet=True)
        self.confusions.clear_selection()
        self.set_highlight(None)

    def _on_order(self, name: str) -> None:
        """"Suspected label errors first" ranks the list by label quality and shows the suspected pixels;
        another order ends that ranking."""
        suspects = name == SUSPECTS
        if suspects == (self.image_model.rank == ("suspects",)):
            return
        self.image_model.set_rank(("suspects",) if suspects else None, "Suspected label errors (px)")
        self.panel.view.setColumnHidden(COL_RANK, not suspects)
        self.panel.view.setColumnHidden(COL_SCENE, suspects)
        self.panel.show_status_column()
        if suspects:
            self.viewer.set_analysis("suspects")
            if self._shown_issues is None:
                self.status.emit("Suspected label errors are ranked once the split with ground truth is evaluated.")

    def rank_by_class(self, class_id: int) -> None:
        """Rank the image list by this class's wrong pixels (most first); -1 goes back to mean IoU."""
        if class_id < 0:
            self.image_model.set_rank(None)
            self.panel.set_ranking(None)
            self.set_highlight(None)
            return
        name = str(self.label_map().name(class_id)).strip()
        self.image_model.set_rank(("class", class_id), f"{name} errors (px)")
        self.panel.set_ranking(name)
        self.set_highlight(class_id)
        self.panel.select_proxy_row(0)

    def rank_by_pair(self, gt: int, pred: int) -> None:
        """Only the images where ``gt`` is predicted as ``pred``, most pixels first."""
        if gt < 0:
            self.rank_by_class(-1)
            return
        names = self.label_map()
        title = f"{names.name(gt).strip()} → {names.name(pred).strip()} (px)"
        self.image_model.set_rank(("pair", gt, pred), title)
        self.panel.set_ranking(title)
        self.set_highlight(gt, pred)
        self.panel.select_proxy_row(0)

    def set_highlight(self, class_id: int | None, predicted: int | None = None) -> None:
        self.viewer.set_highlight(class_id, predicted)
        self.legend.selected = class_id
        if class_id is None:
            self.legend.clear_selection()

    def _on_legend(self, class_id: int) -> None:
        self.viewer.set_highlight(None if class_id < 0 else class_id)

    # --- the image on screen --------------------------------------------------------------------------------

    def show_row(self, row: int) -> None:
        if self.source is None:
            return
        self.row = row
        if self._decoded is not None and self._decoded[0] == row:
            self._show_decoded()
            return
        self.loader.load_image(self.source, row)

    def _on_image(self, token: str, row: int, rgb: Any, gt: Any) -> None:
        if self.source is None or token != self.source.token or row != self.row:
            return
        self._decoded = (row, rgb, gt)
        self._show_decoded()

    def _on_image_failed(self, token: str, row: int, message: str) -> None:
        if self.source is not None and token == self.source.token and row == self.row:
            self.viewer.set_content(None)
            text = f"Cannot show {self.source.entries[row].file_name}: {message}"
            self.viewer.set_notice(text)  # where the person looks, not only in the status bar
            self.status.emit(text)

    def _show_decoded(self) -> None:
        if self._decoded is None or self._decoded[0] != self.row:
            return
        row, rgb, gt = self._decoded
        edited = self.mask_override(row) if self.mask_override is not None and gt is not None else None
        gt = edited if edited is not None else gt
        label_map = self.label_map() or _NoLabels()
        results = self.results(create=False)
        outcome = results.get(row) if results is not None else None
        prediction = outcome.prediction.unpack() if outcome is not None and outcome.prediction else None
        palette = label_map.palette
        if self.palette == "contrast":  # the classes of this image far apart; the split-wide tables keep ADE's
            palette = high_contrast_palette(palette, present_classes(len(palette), gt, prediction,
                                                                     ignore_index=self.ignore_index()))
        content = ViewContent(rgb, gt, prediction, palette, label_map, self.ignore_index(), row)
        self.viewer.set_content(content, keep_view=True)
        self.legend.set_image_classes(label_map, gt, prediction, palette)

    def set_palette(self, name: str) -> None:
        """Colour the shown image's classes with the label map's palette ("ade20k") or far apart ("contrast")."""
        if name not in PALETTES:
            raise ValueError(f"unknown palette {name!r}")
        self.palette = name
        self._show_decoded()

    def original_ground_truth(self) -> Any:
        """The ground truth of the row on screen as its source gave it (before any edit), or None."""
        return self._decoded[2] if self._decoded is not None and self._decoded[0] == self.row else None

    # --- dropped files --------------------------------------------------------------------------------------

    def add_dropped(self, found: list) -> None:
        """Show dropped image files as the "Dropped images" group and predict them."""
        if not found:
            self.status.emit("No images found in what was dropped.")
            return
        self.sources[DROPPED] = FileSource(found)
        self.show_source(DROPPED)
        if self.bundle is None:
            self.status.emit("Images added; they are predicted once a model is loaded.")

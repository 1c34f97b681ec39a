"""Mask editing in the viewer: edit mode, tool strokes on the panes, undo / redo, re-scoring and autosave.

The editing itself is the core's (``MaskEditSession``); this wires mouse events to it, keeps one QUndoCommand per
stroke holding only the stroke's change record, repaints only the changed rectangle, and after each stroke
re-scores the image (mean IoU against the prediction at once, the suspected-label-error count in a worker; after a
pause, the image's row in the list and the split's totals). Each saved correction is announced (``correction_saved``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QPointF, QTimer, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen, QUndoCommand, QUndoStack
from PySide6.QtWidgets import QGraphicsPathItem

from segstudio.core.review import BRUSH_TOOLS, CorrectionsError, MaskChange, MaskEditSession
from segstudio.gui.controllers.results import scored_against

AUTOSAVE_MS = 500
RETRY_SAVE_MS = 5000  # after a failed save (disk full, folder gone or read-only): try again this much later
RECOUNT_MS = 300
PAUSE_MS = 200  # after a pause in editing: the legend, the image's row and the split's totals follow the mask
CLOSE_POLYGON_PX = 8  # a click this close (on screen) to the first vertex closes the polygon
ISSUES_JOB = "edit-suspects"
SAVE_JOB = "autosave"
KEPT_SAVE_JOB = "save-kept"  # edits of rows left while their save failed, tried again in the background
TOOL_NAMES = {"brush": "Brush", "eraser": "Eraser", "fill": "Fill", "polygon": "Polygon", "adopt": "Adopt prediction",
              "adopt_region": "Adopt prediction in region"}


class MaskChangeCommand(QUndoCommand):
    """One stroke (or fill, polygon, adopted region): only its change record, already applied when pushed."""

    def __init__(self, editor: MaskEditingController, change: MaskChange, text: str) -> None:
        super().__init__(text)
        self.editor, self.change = editor, change
        self._applied = True

    def redo(self) -> None:
        if not self._applied:
            self.change.apply(self.editor.session.mask)
        self._applied = False  # later redos (after an undo) apply it again
        self.editor.changed(self.change)

    def undo(self) -> None:
        self.change.revert(self.editor.session.mask)
        self.editor.changed(self.change)


class MaskEditingController(QObject):
    """Owns the edit session of the image on screen and its undo stack."""

    status = Signal(str)
    mode_changed = Signal(bool)
    correction_saved = Signal(str, str, str, object)  # folder, split, file name, the core's CorrectionItem as saved
    rescored = Signal(object, int, object)  # image source, row, edited mask: its numbers followed the edit

    def __init__(self, viewer: Any, review: Any, panel: Any, legend: Any, jobs_runner: Any,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.review, self.panel, self.legend, self.jobs = viewer, review, panel, legend, jobs_runner
        self.stack = QUndoStack(self)
        self.session: MaskEditSession | None = None
        self.session_key: tuple | None = None
        self._session_source: Any = None  # the image source of the session's row (the list may show another)
        self.enabled = False
        self.tool = "brush"
        self.store_provider: Callable[[Any], Any] | None = None  # a dataset's corrections store, or None
        self._kept: dict[tuple, np.ndarray] = {}  # edited masks of rows left that could not be saved
        self._kept_saves: dict[tuple, tuple] = {}  # what saving each of them needs (``_pending_save``)
        self._last: tuple[float, float] | None = None
        self._polygon: list[tuple[int, int]] = []
        self._polygon_item: QGraphicsPathItem | None = None
        self._start_score: Any = None
        self._version = 0  # edits so far: a suspects count of an older mask is dropped
        self.issue_count: int | None = None
        self._dirty = False
        self.save_problem: str | None = None  # why the last save failed, until one succeeds
        self._autosave = QTimer(self, singleShot=True, interval=AUTOSAVE_MS, timeout=self._autosave_in_worker)
        self._save_lock = threading.Lock()  # one save at a time, worker or GUI thread, newest edit last
        self._saved_versions: dict[tuple, int] = {}
        self._retry_kept = QTimer(self, singleShot=True, interval=RETRY_SAVE_MS, timeout=self._save_kept_in_worker)
        self._recount = QTimer(self, singleShot=True, interval=RECOUNT_MS, timeout=self._count_issues)
        self._pause_timer = QTimer(self, singleShot=True, interval=PAUSE_MS, timeout=self._after_pause)
        for pane in viewer.panes.values():
            pane.edit_event.connect(self._on_edit_event)
        viewer.content_changed.connect(self._on_content_changed)
        review.mask_override = self.mask_for
        review.edited_mask = self.edited_mask
        panel.size.valueChanged.connect(lambda _v: self._show_brush())
        panel.picker.picked.connect(lambda v: self.status.emit(f"Painting {panel.picker.name(v)}"))
        legend.class_selected.connect(self._on_legend)

    # --- mode, tool, class ---------------------------------------------------------------------------------

    def set_enabled(self, on: bool) -> None:
        """Edit mode: the left button edits the ground truth in every pane."""
        if on == self.enabled:
            return
        self.enabled = on
        if on:
            self.refresh_classes()
        else:
            self._cancel_polygon()
            self.save_now()
        for pane in self.viewer.panes.values():
            pane.set_editing(on)
        self._show_brush()
        self.mode_changed.emit(on)

    def set_tool(self, tool: str) -> None:
        if tool not in TOOL_NAMES:
            raise ValueError(f"unknown tool {tool!r}")
        if tool != "polygon":
            self._cancel_polygon()
        self.tool = tool
        self._show_brush()
        self.set_enabled(True)

    def diameter(self) -> int:
        return int(self.panel.size.value())

    def resize_brush(self, factor: float) -> None:
        """[ and ]: a quarter smaller or larger (at least one pixel)."""
        size = self.diameter()
        new = round(size * factor)
        self.panel.size.setValue(max(1, new if new != size else size + (1 if factor > 1 else -1)))

    def refresh_classes(self) -> None:
        """The picker offers the label map of what is shown."""
        self.panel.picker.set_label_map(self.review.label_map(), self.review.ignore_index())

    def pick_ignore(self) -> None:
        self.refresh_classes()
        self.panel.picker.pick(self.review.ignore_index())

    def _on_legend(self, class_id: int) -> None:
        if self.enabled and class_id >= 0:
            self.panel.picker.pick(class_id)

    def _show_brush(self) -> None:
        size = self.diameter() if self.tool in BRUSH_TOOLS else 0
        for pane in self.viewer.panes.values():
            pane.set_brush(size)

    # --- the session of the image on screen --------------------------------------------------------------

    def _key(self, row: int | None) -> tuple | None:
        source = self.review.source
        return None if source is None or row is None else (source.token, row)

    def mask_for(self, row: int) -> np.ndarray | None:
        """The edited ground truth of a row (the review shows it instead of the dataset's), or None: the session's,
        one kept in memory, or the one saved in the corrections folder since the dataset was read."""
        key = self._key(row)
        if key is None:
            return None
        if key == self.session_key:
            return self.session.mask
        if key in self._kept:
            return self._kept[key]
        try:
            place = self._place(row)
            saved = None if place is None else place[0].load(place[1], place[2])
        except (CorrectionsError, OSError, ValueError):
            return None  # an unreadable folder: the dataset's mask is shown, saving will say why
        return None if saved is None else self.review.convention().to_model_ids(saved)

    def edited_mask(self, source_token: str, row: int) -> np.ndarray | None:
        """The mask of a row edited in this window (being edited, kept or saved since the dataset was read) while
        its source is shown; None for every other row."""
        source, key = self.review.source, (source_token, row)
        if source is None or source_token != source.token or not (
                key == self.session_key or key in self._kept or key in self._saved_versions):
            return None
        return self.mask_for(row)

    def _place(self, row: int, source: Any = None) -> tuple[Any, str, str] | None:
        """(store, split, file_name) where a row of ``source`` (default: the one shown) has its correction saved;
        None for dropped files or no store."""
        source = self.review.source if source is None else source
        dataset = getattr(source, "dataset", None)
        if self.store_provider is None or dataset is None or getattr(source, "split", None) not in dataset.splits:
            return None
        store = self.store_provider(dataset)
        return None if store is None else (store, source.split, source.entries[row].file_name)

    def _on_content_changed(self) -> None:
        content = self.viewer.content
        key = self._key(content.index) if content is not None else None
        if self.session is not None and key != self.session_key:
            self._end_session()
        if self.session is not None and content.prediction is not None and self.session.prediction is None:
            self.session.prediction = content.prediction  # streamed in after the edit began
            self._show_score()
        if self.session is None:
            self.panel.show_score("")

    def _ensure_session(self) -> MaskEditSession | None:
        content = self.viewer.content
        if content is None or content.ground_truth is None:
            self.status.emit("This image has no ground truth to edit.")
            return None
        key = self._key(content.index)
        if self.session is not None and key == self.session_key:
            return self.session
        original = self._source_original(content.index)
        if original is None:
            original = self.review.original_ground_truth()
        if original is None or original.shape != content.ground_truth.shape:
            original = content.ground_truth.copy()
        if content.ground_truth is original:  # never edit the decoded dataset mask itself
            content.ground_truth = original.copy()
        self.session = MaskEditSession(content.ground_truth, original, content.prediction, content.ignore_index)
        self.session_key, self._session_source = key, self.review.source
        self.stack.clear()
        self._start_score = self._score()
        return self.session

    def _source_original(self, row: int | None) -> np.ndarray | None:
        """The row's mask as its source has it when the dataset is read with corrections (what the eraser puts
        back), else None."""
        from segstudio.core.review import without_corrections
        from segstudio.gui.controllers.sources import SplitSource

        dataset, source = self.review.dataset, self.review.source
        if row is None or getattr(dataset, "corrections", None) is None or getattr(source, "split", None) \
                not in dataset.splits:
            return None
        return SplitSource(without_corrections(dataset), source.split).ground_truth(row)

    def _end_session(self) -> None:
        self._cancel_polygon()
        saved = self.save_now() and not self.jobs.is_running(SAVE_JOB)
        if not saved and self.session.changed_pixels():
            self._kept[self.session_key] = self.session.mask  # shown again until the folder has it
            self._keep_trying(self.session_key)
        self._recount.stop()
        if self._pause_timer.isActive():
            self._pause_timer.stop()
            self.rescore_split()  # the row keeps the edited numbers once left
        self.jobs.cancel(ISSUES_JOB)
        self.session = self.session_key = self._session_source = None
        self.issue_count = None
        self.stack.clear()

    # --- mouse -------------------------------------------------------------------------------------------------

    def _on_edit_event(self, kind: str, x: float, y: float) -> None:
        if not self.enabled:
            return
        session = self._ensure_session()
        if session is None:
            return
        try:
            if self.tool in BRUSH_TOOLS:
                self._brush(session, kind, x, y)
            elif self.tool == "polygon":
                self._polygon_event(self.sender(), kind, x, y)
            elif kind == "press":
                px, py = int(np.floor(x)), int(np.floor(y))
                if self.tool == "fill":
                    self._push(session.fill(px, py, self._value()), "Fill")
                else:
                    suspects = self.viewer.suspects
                    if suspects is not None and suspects.shape != session.mask.shape:
                        suspects = None
                    change = session.adopt_region(px, py, suspects)
                    if not change.pixels:
                        self.status.emit("Click inside a suspected label error (or a wrong pixel) to adopt the "
                                         "prediction there.")
                    self._push(change, "Adopt prediction in region")
        except ValueError as error:
            self._last = None
            session.finish_stroke()
            self.status.emit(str(error)[:1].upper() + str(error)[1:] + ".")

    def _value(self) -> int:
        value = self.panel.picker.current
        if value is None:
            raise ValueError("pick a class first: click a legend row or search the Edit panel")
        return value

    def _brush(self, session: MaskEditSession, kind: str, x: float, y: float) -> None:
        value = self._value() if self.tool == "brush" else None
        if kind == "press":
            self._last = (x, y)
        if self._last is None:
            return
        change = session.dab(self.tool, self._last, (x, y), self.diameter(), value)
        self._last = (x, y)
        if change.bounds is not None:
            self.viewer.refresh_region(*change.bounds)
        if kind == "release":
            self._last = None
            self._push(session.finish_stroke(), TOOL_NAMES[self.tool])

    def _polygon_event(self, pane: Any, kind: str, x: float, y: float) -> None:
        point = (int(np.floor(x)), int(np.floor(y)))
        if kind == "double":
            self._close_polygon()
            return
        if kind != "press":
            return
        if len(self._polygon) >= 3:
            first = pane.mapFromScene(QPointF(self._polygon[0][0] + 0.5, self._polygon[0][1] + 0.5))
            if (pane.mapFromScene(QPointF(x, y)) - first).manhattanLength() <= CLOSE_POLYGON_PX:
                self._close_polygon()
                return
        self._value()  # say at the first vertex that a class is needed
        self._polygon.append(point)
        if self._polygon_item is None:
            self._polygon_item = QGraphicsPathItem()
            pen = QPen(QColor(255, 255, 255), 1.5)
            pen.setCosmetic(True)
            self._polygon_item.setPen(pen)
            self._polygon_item.setZValue(4)
            pane.scene().addItem(self._polygon_item)
        path = QPainterPath(QPointF(self._polygon[0][0] + 0.5, self._polygon[0][1] + 0.5))
        for px, py in self._polygon[1:]:
            path.lineTo(px + 0.5, py + 0.5)
        self._polygon_item.setPath(path)

    def _close_polygon(self) -> None:
        points = self._polygon
        self._cancel_polygon()
        if len(points) >= 3 and self.session is not None:
            change = self.session.polygon(points, self._value())
            if change.bounds is not None:
                self.viewer.refresh_region(*change.bounds)
            self._push(change, "Polygon")

    def _cancel_polygon(self) -> None:
        self._polygon = []
        if self._polygon_item is not None:
            scene = self._polygon_item.scene()
            if scene is not None:
                scene.removeItem(self._polygon_item)
            self._polygon_item = None

    # --- history, score, saving --------------------------------------------------------------------------------

    def _push(self, change: MaskChange | None, text: str) -> None:
        if change is not None and change.pixels:
            self.stack.push(MaskChangeCommand(self, change, text))

    def history_bytes(self) -> int:
        """Memory of the undo history's change records."""
        return sum(self.stack.command(i).change.nbytes for i in range(self.stack.count()))

    def changed(self, change: MaskChange) -> None:
        """After a stroke, an undo or a redo: repaint, re-score, save soon."""
        self._version += 1
        self.viewer.refresh_region(*change.bounds)
        self.issue_count = None
        self._show_score()
        self._dirty = True
        self._autosave.start(AUTOSAVE_MS)
        self._recount.start()
        self._pause_timer.start()

    def _after_pause(self) -> None:
        self._update_legend()
        self.rescore_split()

    def rescore_split(self) -> None:
        """The image's row in the list (mean IoU, rank) and the split's totals (Classes, confusions) scored with
        the edited mask: its outcome is re-scored and replaced in the split's results."""
        if self.session is None:
            return
        source, row = self._session_source, self.session_key[1]
        results = self.review.results(create=False, source=source)  # also once another split is shown
        outcome = results.get(row) if results is not None else None
        edited = None if outcome is None else scored_against(outcome, self.session.mask, self.session.ignore_index)
        if edited is None:
            return
        results.replace(edited)
        if source is self.review.source:
            self.review.refresh_results()
        self.rescored.emit(source, row, self.session.mask)

    def _update_legend(self) -> None:
        """The legend's class shares of the edited mask (after a pause: a bincount of every pixel)."""
        label_map = self.review.label_map()
        if self.session is not None and label_map is not None:
            self.legend.set_image_classes(label_map, self.session.mask, self.session.prediction)

    def _score(self) -> Any:
        label_map = self.review.label_map()
        if self.session is None or label_map is None:
            return None
        return self.session.score(label_map.num_labels)

    def _show_score(self) -> None:
        score, start = self._score(), self._start_score
        if self.session is None:
            return
        lines = []
        if score is not None:
            was = "" if start is None or start is score else f" (was {start.mean_iou:.3f})"
            lines.append(f"Mean IoU of the prediction on this mask: {score.mean_iou:.3f}{was}")
        lines.append(f"{self.session.changed_pixels():,} px differ from the original")
        if self.issue_count is not None:
            lines.append(f"Suspected label errors: {self.issue_count:,} px")
        self.panel.show_score("\n".join(lines))

    def _count_issues(self) -> None:
        """The edited mask's suspected label errors, in a worker (needs the split's evaluation thresholds)."""
        from segstudio.gui.widgets.label_issues_view import compute_suspects

        results, bundle, content = self.review.results(create=False), self.review.bundle, self.viewer.content
        report = results.label_issues if results is not None else None
        if self.session is None or report is None or bundle is None or content is None:
            return
        key, version = self.session_key, self._version
        image, labels, thresholds = content.image, self.session.mask.copy(), report.thresholds
        predictor = bundle.predictor
        self.jobs.submit(ISSUES_JOB, lambda ctx: (key, version, compute_suspects(predictor, image, labels, thresholds)),
                         on_result=self._on_issues, on_error=self._on_issues_error)

    def _on_issues_error(self, info: Any) -> None:
        self.status.emit(f"Suspected label errors of the edited mask: {info.message}")

    def _on_issues(self, value: tuple) -> None:
        key, version, suspects = value
        if key != self.session_key or version != self._version:
            return
        self.issue_count = int(np.count_nonzero(suspects))
        self.viewer.set_suspects(suspects)
        self._show_score()

    def _pending_save(self) -> tuple | None:
        """What saving the mask on screen needs now (copies, so a worker can write them), or None."""
        source = self._session_source  # saved as the row it was, also once another split or dataset is shown
        place = None if self.session_key is None else self._place(self.session_key[1], source)
        if place is None:
            return None
        convention, label_map = source.convention, source.label_map
        return (self.session_key, self._version, *place, convention.to_dataset_ids(self.session.mask),
                convention.to_dataset_ids(self.session.original), convention.dataset_dtype(label_map.num_labels))

    def _write(self, key: tuple, version: int, store: Any, split: str, file_name: str, mask: np.ndarray,
               original: np.ndarray, dtype: type) -> tuple[tuple, str, tuple | None]:
        """Save one version of a row's mask, atomically (any thread); an older version than the one saved is
        skipped, so a late worker never overwrites a newer save. Returns the key, a line for the status bar and
        (folder, split, file name, the saved CorrectionItem), or None when skipped."""
        saved = None
        with self._save_lock:
            if self._saved_versions.get(key, -1) < version:
                saved = (str(store.path), split, file_name, store.save(split, file_name, mask, original, dtype))
                self._saved_versions[key] = version
        return key, f"Saved the corrected mask of {file_name} to {store.path}", saved

    def _autosave_in_worker(self) -> None:
        """Autosave after a pause, in a worker: encoding a 4096x4096 PNG takes most of a second."""
        if self.session is None or not self._dirty:
            return
        if self.jobs.is_running(SAVE_JOB):
            self._autosave.start(AUTOSAVE_MS)  # one save at a time; try again after this one
            return
        try:
            pending = self._pending_save()
        except (CorrectionsError, OSError) as error:  # the folder is a file, or cannot be read
            self._save_failed(str(error))
            return
        if pending is None:
            return
        self._dirty = False
        self.jobs.submit(SAVE_JOB, lambda ctx: self._write(*pending), on_result=self._on_saved,
                         on_error=self._on_save_failed)

    def _on_saved(self, value: tuple[tuple, str, tuple | None]) -> None:
        key, text, saved = value
        if key != self.session_key:
            self._forget_kept(key)  # left while it was being saved: the folder has it now
        self.save_problem = None
        self._announce(text, saved)

    def _announce(self, text: str, saved: tuple | None) -> None:
        """The status line, then (for a save that happened) the saved correction to whoever marks the row."""
        self.status.emit(text)
        if saved is not None:
            self.correction_saved.emit(*saved)

    def _on_save_failed(self, info: Any) -> None:
        self._dirty = self.session is not None
        self._save_failed(info.message)

    def _save_failed(self, reason: str, retry: bool = True) -> None:
        """Say that the edit is kept in memory only, and try again later (the disk may be freed, the folder fixed)."""
        self.save_problem = reason.rstrip(".")
        self.status.emit(f"Could not save the corrected mask ({self.save_problem}); the edit is kept in memory "
                         f"and saving is tried again every {RETRY_SAVE_MS // 1000} s.")
        if retry and self.session is not None:
            self._autosave.start(RETRY_SAVE_MS)

    def _keep_trying(self, key: tuple) -> None:
        """Save a left row's kept edit later, in the background (an autosave in flight may still save it)."""
        try:
            pending = self._pending_save()
        except (CorrectionsError, OSError):  # the folder cannot be read now: the close still asks about it
            return
        if pending is not None:
            self._kept_saves[key] = pending
            self._retry_kept.start(RETRY_SAVE_MS)

    def _forget_kept(self, key: tuple) -> None:
        """The folder has this row's edit now: nothing of it is kept in memory or tried again."""
        self._kept.pop(key, None)
        self._kept_saves.pop(key, None)

    def _save_kept_in_worker(self) -> None:
        """Try the kept edits again, one after the other, in a worker; what still fails is tried again later."""
        waiting = dict(self._kept_saves)
        if not waiting:
            return
        if self.jobs.is_running(KEPT_SAVE_JOB) or self.jobs.is_running(SAVE_JOB):
            self._retry_kept.start(AUTOSAVE_MS)
            return

        def save_all(ctx: Any) -> tuple[list, str | None]:
            done, problem = [], None
            for pending in waiting.values():
                try:
                    done.append(self._write(*pending))
                except (CorrectionsError, OSError, ValueError) as error:
                    problem = str(error)
            return done, problem

        self.jobs.submit(KEPT_SAVE_JOB, save_all, on_result=self._on_kept_saved,
                         on_error=lambda info: self._kept_failed(info.message))

    def _on_kept_saved(self, value: tuple[list, str | None]) -> None:
        done, problem = value
        for key, text, saved in done:
            self._forget_kept(key)
            self._announce(text, saved)
        if problem is not None:
            self._kept_failed(problem)

    def _kept_failed(self, reason: str) -> None:
        self.status.emit(f"Could not save {len(self._kept_saves)} edited mask(s) of images left "
                         f"({reason.rstrip('.')}); they are kept in memory and tried again every "
                         f"{RETRY_SAVE_MS // 1000} s.")
        self._retry_kept.start(RETRY_SAVE_MS)

    def stop_retrying(self) -> None:
        """No more tries in the background (the window is closing)."""
        self._autosave.stop()
        self._retry_kept.stop()

    def unsaved(self) -> int:
        """How many edited masks are not in the corrections folder (the one on screen, those left unsaved)."""
        return int(self.session is not None and self._dirty) + len(self._kept)

    def save_now(self, retry: bool = True, settle: bool = False) -> bool:
        """Write the edited mask of the image on screen to the corrections folder now, atomically (leaving the
        image, closing); False when it could not be saved (no folder, dropped files, an error). ``settle``: also
        while an autosave is writing it (after that one, in this thread), so its outcome is known now."""
        self._autosave.stop()
        in_flight = settle and self.jobs.is_running(SAVE_JOB)
        if self.session is None or not (self._dirty or in_flight):
            return True
        try:
            pending = self._pending_save()
            if pending is None:
                return False
            _key, text, saved = self._write(*pending)
        except (CorrectionsError, OSError, ValueError) as error:  # one line; the write is atomic
            self._save_failed(str(error), retry)
            return False
        self._dirty, self.save_problem = False, None
        self._forget_kept(self.session_key)
        self._announce(text, saved)
        return True

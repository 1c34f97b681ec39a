"""The review record in the window: each split's reviews in the image list, statuses set from the keyboard.

The record is the core's ``ReviewRecord`` in the dataset's corrections folder; nothing is written until a person
reviews an image. Accept (Y) and Flag (W) move on to the next unreviewed image in the list's order. Rows whose
mask has a saved correction in the same folder are marked (from its corrections index, then as corrections are
saved); saving a correction of an unreviewed or needs-fix image marks it fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from segstudio.core.review import (
    CorrectionsError,
    CorrectionsStore,
    ReviewRecord,
    ReviewRecordError,
    parse_tags,
    tags_text,
)
from segstudio.gui.dialogs.review_note import ReviewNoteDialog
from segstudio.gui.widgets.dataset_panel import DatasetPanel
from segstudio.gui.widgets.image_list import ImageListModel
from segstudio.gui.workers.worker import ErrorInfo

ADVANCING = ("accepted", "needs_fix")  # a verdict moves on to the next image to review
FIXED_BY_SAVING = ("unreviewed", "needs_fix")  # statuses a saved correction moves on to "fixed"


class ReviewRecordController(QObject):
    """Keeps the image list's review column, filters and progress line in step with the record."""

    def __init__(self, review: Any, panel: DatasetPanel, image_model: ImageListModel,
                 folder_for: Callable[[Any], Path], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.review, self.panel, self.model = review, panel, image_model
        self.folder_for = folder_for  # the dataset's corrections folder (the window's choice), where its record lives
        self.record: ReviewRecord | None = None
        self._dataset: Any = None
        self._rows: dict[str, int] = {}  # file name -> entry index in the split shown
        image_model.modelReset.connect(self.load_split)

    # --- which record ---------------------------------------------------------------------------------------

    def folder(self) -> Path | None:
        """The folder of the open record (None while no dataset split is shown)."""
        return self.record.folder if self.record is not None else None

    def _open(self, dataset: Any) -> None:
        if self.record is not None:
            self.record.close()
        self.record, self._dataset = None, dataset
        try:
            self.record = ReviewRecord(self.folder_for(dataset), create=False)  # written on the first review
        except ReviewRecordError as exc:
            self.review.error.emit(ErrorInfo("Review record", str(exc), "", "ReviewRecordError"))

    def close(self) -> None:
        if self.record is not None:
            self.record.close()
            self.record = None

    # --- the split shown ------------------------------------------------------------------------------------

    def _split(self) -> tuple[Any, str] | None:
        """(source, split) of the dataset split shown; None for dropped images or nothing."""
        source = self.model.source
        dataset = getattr(source, "dataset", None)
        return (source, source.split) if dataset is not None else None

    def load_split(self) -> None:
        """A split is shown: its reviews into the list (called on every reset of the image list)."""
        self.panel.proxy.kept = None  # a row kept on screen belongs to the list before
        shown = self._split()
        if shown is None:
            self._rows = {}
            self.model.set_corrections({})
            self._show_reviews({})
            return
        source, split = shown
        if source.dataset is not self._dataset or self.record is None or \
                self.record.folder != Path(self.folder_for(source.dataset)):
            if str(getattr(self._dataset, "source", "")) != str(source.dataset.source):
                self.panel.set_review_status(None)  # another dataset: its filters start open
            self._open(source.dataset)
        recorded = {}
        if self.record is not None:
            try:
                recorded = self.record.entries(split)
            except ReviewRecordError as exc:
                self.review.error.emit(ErrorInfo("Review record", str(exc), "", "ReviewRecordError"))
        rows = self._rows = {entry.file_name: entry.index for entry in source.entries}
        self.model.set_corrections(self._saved_corrections(source.dataset, split))
        self._show_reviews({rows[name]: entry for (_split, name), entry in recorded.items() if name in rows})

    def _saved_corrections(self, dataset: Any, split: str) -> dict[int, Any]:
        """The split's rows with a saved correction, from the corrections index of the record's folder (none when
        the folder cannot be read or was made for another dataset: the corrections controller says why)."""
        try:
            store = CorrectionsStore(self.folder_for(dataset))
            if store.dataset not in (None, str(dataset.source)):
                return {}
            return {self._rows[item.file_name]: item for item in store.items(split) if item.file_name in self._rows}
        except CorrectionsError:
            return {}

    def _show_reviews(self, reviews: dict[int, Any]) -> None:
        """The split's reviews into the list: its column, order, filters (the proxy filtered the new rows with the
        last split's reviews) and progress."""
        self.model.set_reviews(reviews)
        self.panel.proxy.refilter(reviews=True)
        self.panel.update_count()
        self._refresh()

    def _refresh(self) -> None:
        reviews = self.model.reviews.values()
        self.panel.set_review_tags(sorted({tag for entry in reviews for tag in entry.tags}))
        shown = self._split()
        total = len(shown[0].entries) if shown is not None else 0
        self.panel.set_review_progress(sum(1 for entry in reviews if entry.reviewed), total)
        self.panel.show_status_column(bool(self.model.corrections) or
                                      any(entry.reviewed or entry.tags or entry.note for entry in reviews))

    # --- the keys -------------------------------------------------------------------------------------------

    def _current(self) -> tuple[Any, str, int] | None:
        shown, entry = self._split(), self.panel.current_entry()
        if shown is None or entry is None or self.record is None:
            self.review.status.emit("Choose an image of a dataset split to review it.")
            return None
        return shown[0], shown[1], entry

    def _write(self, entry: int, **change: Any) -> bool:
        source, split = self._split()
        return self._write_row(split, source.entries[entry].file_name, entry, **change)

    def _write_row(self, split: str, file_name: str, entry: int | None, **change: Any) -> bool:
        """Record a change of an image's review; ``entry``: its row in the list shown (None: not shown)."""
        try:
            review = self.record.update(split, file_name, **change)
        except ReviewRecordError as exc:
            self.review.error.emit(ErrorInfo("Review record", str(exc), "", "ReviewRecordError"))
            return False
        if entry is not None:
            self.model.set_review(entry, review)
        self._changed()
        return True

    def _changed(self) -> None:
        self.panel.proxy.refilter(reviews=True)
        self._refresh()
        self.panel.update_count()

    def correction_saved(self, folder: str, split: str, file_name: str, item: Any) -> None:
        """A correction was saved in ``folder``: its row is marked, and an unreviewed or needs-fix image becomes
        fixed (a save that changed no pixel, an edit undone back to the original, leaves the status as it is)."""
        shown = self._split()
        here = self.record is not None and self.record.folder == Path(folder)  # the record of the list shown
        entry = self._rows.get(file_name) if here and shown is not None and shown[1] == split else None
        if entry is not None:
            self.model.set_correction(entry, item)
        if item.changed_pixels and self._fix(Path(folder), split, file_name, entry, here):
            self.review.status.emit(f"Saved the corrected mask of {file_name}; its status is now fixed")
        else:
            self._changed()

    def _fix(self, folder: Path, split: str, file_name: str, entry: int | None, here: bool) -> bool:
        """Mark an unreviewed or needs-fix image fixed in the record of ``folder``; True when its status moved."""
        try:
            if not here:  # saved while another dataset came on screen: the image's own record
                with ReviewRecord(folder, create=False) as record:
                    if record.get(split, file_name).status not in FIXED_BY_SAVING:
                        return False
                    record.update(split, file_name, status="fixed")
                    return True
            if self.record.get(split, file_name).status not in FIXED_BY_SAVING:
                return False
        except ReviewRecordError as exc:
            self.review.error.emit(ErrorInfo("Review record", str(exc), "", "ReviewRecordError"))
            return False
        if entry is not None and entry == self.panel.current_entry():
            self.panel.proxy.keep(entry)  # fixed under a "Needs fix" filter: stays until the person moves on
        return self._write_row(split, file_name, entry, status="fixed")

    def set_status(self, status: str) -> None:
        """The shown image's status; a verdict (accepted, needs fix) moves on to the next unreviewed image."""
        current = self._current()
        if current is not None and self._write(current[2], status=status) and status in ADVANCING:
            self.next_unreviewed(after=current[2])

    def next_unreviewed(self, after: int | None = None) -> bool:
        """Select the first unreviewed image after ``after`` (default: the selected one) in the list's order,
        among those the filters show; False (and a message) when there is none."""
        count = self.model.rowCount()
        after = self.panel.current_entry() if after is None else after
        start = self.model.row_of(after) if after is not None else -1
        for step in range(1, count + 1):
            entry = self.model.entry((start + step) % count)
            if self.model.status(entry) == "unreviewed" and self.panel.select_entry(entry):
                return True
        self.review.status.emit("Every image in the list is reviewed.")
        return False

    def edit_note(self) -> ReviewNoteDialog | None:
        """Tags and a note for the shown image, in a dialog; saved on OK."""
        current = self._current()
        if current is None:
            return None
        source, _split, entry = current
        review = self.model.reviews.get(entry)
        known = sorted({tag for other in self.model.reviews.values() for tag in other.tags})
        dialog = ReviewNoteDialog(source.entries[entry].file_name, tags_text(review.tags) if review else "",
                                  review.note if review else "", known, self.panel.window())
        dialog.accepted.connect(lambda: self._save_note(entry, *dialog.values()))
        dialog.open()
        return dialog

    def _save_note(self, entry: int, tags: str, note: str) -> None:
        try:
            self._write(entry, tags=parse_tags(tags), note=note)
        except ReviewRecordError as exc:
            self.review.error.emit(ErrorInfo("Tags and note", str(exc), "", "ReviewRecordError"))

"""Which corrections folder the window reads each dataset with (File > Corrections Folder…, remembered per dataset).

The folder defaults to one beside the dataset (``core.review.default_corrections_folder``); the dataset is
read with it in the loading worker, so the list, the viewer, evaluation and training all see the corrected masks.
A folder that does not fit the dataset leaves the originals shown and says why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QStandardPaths, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from segstudio.gui.workers.worker import ErrorInfo

JOB = "corrections"
SETTINGS_KEY = "corrections/folders"


class CorrectionsController(QObject):
    """Chooses, remembers and applies the corrections folder of the open dataset."""

    applied = Signal(object)  # the SegDataset now shown, read with its corrections

    def __init__(self, window: QWidget, review: Any, jobs_runner: Any, settings: Any,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window, self.review, self.jobs, self.settings = window, review, jobs_runner, settings
        self.folders: dict[str, str] = self._remembered()
        self._problems: dict[str, str] = {}
        review.prepare_dataset = self.prepare
        review.dataset_opened.connect(self._report)

    # --- which folder ----------------------------------------------------------------------------------------

    def _remembered(self) -> dict[str, str]:
        raw = self.settings.get(SETTINGS_KEY, "{}")
        try:
            folders = json.loads(raw) if isinstance(raw, str) else {}
        except ValueError:
            folders = {}
        return {str(k): str(v) for k, v in folders.items()} if isinstance(folders, dict) else {}

    def _fallback_parent(self) -> Path:
        """Corrections of datasets without a folder (the demo, Hub datasets) go with the app's own data."""
        q = self.settings.q
        if q.format() == QSettings.Format.IniFormat:
            return Path(q.fileName()).parent / "corrections"
        location = QStandardPaths.StandardLocation.AppDataLocation
        return Path(QStandardPaths.writableLocation(location)) / "corrections"

    def folder_for(self, dataset: Any) -> Path:
        """The folder chosen for this dataset, else its default one."""
        from segstudio.core.review import default_corrections_folder

        chosen = self.folders.get(str(dataset.source))
        return Path(chosen) if chosen else default_corrections_folder(dataset, self._fallback_parent())

    def store(self, dataset: Any = None) -> Any:
        """The corrections store of ``dataset`` (default: the open one; where an editor saves), or None without
        a dataset."""
        from segstudio.core.review import CorrectionsStore

        dataset = self.review.dataset if dataset is None else dataset
        return None if dataset is None else CorrectionsStore(self.folder_for(dataset), dataset=str(dataset.source))

    # --- reading a dataset with them -------------------------------------------------------------------------

    def prepare(self, dataset: Any) -> Any:
        """``dataset`` read with its corrections (worker thread); the originals, with a notice, if they do not fit."""
        from segstudio.core.data import DataSourceError
        from segstudio.core.review import apply_corrections, without_corrections

        folder = self.folder_for(dataset)
        try:
            corrected = apply_corrections(dataset, folder, must_exist=False)
        except DataSourceError as exc:
            self._problems[str(dataset.source)] = str(exc)
            return without_corrections(dataset)
        self._problems.pop(str(dataset.source), None)
        return corrected if corrected.corrections.items else without_corrections(dataset)

    def _report(self, _spec: str = "", chosen: bool = False) -> None:
        """Say what the open dataset was read with: its corrections, or why they were not read (and, for a folder
        just ``chosen``, that it holds none)."""
        dataset = self.review.dataset
        if dataset is None:
            return
        problem = self._problems.pop(str(dataset.source), None)
        if problem:
            self.review.error.emit(ErrorInfo("Corrections not read", problem, "", "DataSourceError"))
        elif dataset.corrections is not None:
            self.review.status.emit(f"Reading {dataset.corrections.items} corrected mask(s) from "
                                    f"{dataset.corrections.folder}")
        elif chosen:
            self.review.status.emit(f"No corrections in {self.folder_for(dataset)}: the original masks are shown")

    def choose_folder(self) -> None:
        """File > Corrections Folder…: pick where the open dataset's corrections are kept and read them."""
        dataset = self.review.dataset
        if dataset is None:
            self.review.status.emit("Corrections: open a dataset first.")
            return
        current = self.folder_for(dataset)
        start = str(current if current.exists() else current.parent)
        folder = QFileDialog.getExistingDirectory(self.window, f"Corrections folder for {dataset.source}", start)
        if folder:
            self.use_folder(folder)

    def use_folder(self, folder: str | Path) -> None:
        """Remember ``folder`` for the open dataset and show the dataset read with it."""
        dataset = self.review.dataset
        if dataset is None:
            return
        self.folders[str(dataset.source)] = str(Path(folder).expanduser())
        self.settings.set(SETTINGS_KEY, json.dumps(self.folders))
        self.reload()

    def reload(self) -> None:
        """Read the open dataset with its corrections folder again (after it changed)."""
        dataset = self.review.dataset
        if dataset is None:
            return
        split = getattr(self.review.source, "split", None)
        self.review.status.emit(f"Reading corrections from {self.folder_for(dataset)}…")
        # The callbacks are bound methods so they run in the GUI thread (a lambda would run in the worker's).
        self.jobs.submit(JOB, lambda ctx: (self.prepare(dataset), split),
                         on_result=self._show, on_error=self._on_error)

    def _on_error(self, info: Any) -> None:
        self.review.error.emit(info)

    def _show(self, value: tuple[Any, str | None]) -> None:
        dataset, split = value
        self.review.set_dataset(dataset, split if split in dataset.splits else None)
        self._report(chosen=True)
        self.applied.emit(dataset)

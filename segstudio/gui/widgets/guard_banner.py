"""The label-convention banner: when a dataset and a model are both open, the guard runs in the background and
its errors and warnings (with their fixes) show in a dismissible strip above the viewer.

While the guard has errors, evaluating, training and comparing refuse to start: the automatic evaluation waits for
the guard and does not run, and a run the person asks for is started only after a "Run anyway" answer."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QToolButton, QWidget

from segstudio.gui.workers.worker import ErrorInfo, JobRunner

MAX_SHOWN = 4
ACTIONS = {"evaluate": "Evaluating", "train": "Training", "compare": "Comparing"}
_STYLES = {
    "error": "#guardBanner { background: #fdecea; border: 1px solid #d93025; border-radius: 4px; }",
    "warning": "#guardBanner { background: #fff4e5; border: 1px solid #e8a33d; border-radius: 4px; }",
}


def run_guard(ctx: Any, dataset: Any, loaded: Any) -> Any:
    """The guard's full check in a worker (a sample of every split); stops scanning when cancelled."""
    from segstudio.gui.workers.jobs import import_core

    import_core("data")
    from segstudio.core.data import check_labels

    return check_labels(dataset, loaded, cancel=ctx.cancel_event)


def ask_run_anyway(parent: QWidget | None, title: str, text: str) -> bool:
    """A warning with "Run anyway" and "Cancel" (the default); True for "Run anyway"."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Cancel, parent)
    run = box.addButton("Run anyway", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is run


class GuardBanner(QFrame):
    """A non-modal strip listing the guard's errors and warnings; hidden when there are none or once dismissed."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("guardBanner")
        self.findings: list[Any] = []
        self.text = QLabel(self)
        self.text.setObjectName("guardText")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss (shown again when the dataset or model changes)")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.setVisible(False)

    def show_report(self, report: Any) -> None:
        """Show the report's errors and warnings (infos alone keep the banner hidden)."""
        self.findings = [f for f in report.findings if f.severity in ("error", "warning")]
        if not self.findings:
            self.clear()
            return
        errors = sum(1 for f in self.findings if f.severity == "error")
        self.setStyleSheet(_STYLES["error" if errors else "warning"])
        title = (f"Label check: {errors} error(s), {len(self.findings) - errors} warning(s) for "
                 f"{report.dataset} with model {report.model}")
        lines = [f"<b>{html.escape(title)}</b>"]
        for finding in self.findings[:MAX_SHOWN]:
            fix = f"<br>&nbsp;&nbsp;&nbsp;<i>Fix:</i> {html.escape(finding.fix)}" if finding.fix else ""
            lines.append(f"• <b>{finding.severity}</b>: {html.escape(finding.message)}{fix}")
        if len(self.findings) > MAX_SHOWN:
            lines.append(f"… and {len(self.findings) - MAX_SHOWN} more (run <tt>segstudio check</tt> for all)")
        self.text.setText("<br>".join(lines))
        self.setToolTip("\n".join(f"{f.severity}: {f.message}\n  fix: {f.fix}" for f in self.findings))
        self.setVisible(True)

    def plain_text(self) -> str:
        """The banner's text without markup (tests, copy)."""
        return "\n".join(f"{f.severity}: {f.message} fix: {f.fix}" for f in self.findings)

    def clear(self) -> None:
        self.findings = []
        self.text.clear()
        self.setVisible(False)

    def dismiss(self) -> None:
        self.setVisible(False)
        self.dismissed.emit()


class GuardController(QObject):
    """Runs the guard whenever the open dataset or model changes and feeds the banner."""

    checked = Signal(object)  # the GuardReport of the current dataset and model

    def __init__(self, review: Any, jobs: JobRunner, banner: GuardBanner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.review, self.jobs, self.banner = review, jobs, banner
        self.report: Any = None
        self._key: tuple[int, str] | None = None
        self._checked: tuple[int, str] | None = None  # the key whose check has finished (or failed)
        self._forced: set[str] = set()  # actions the person chose to run anyway for the current key
        self._evaluate_when_checked = False
        review.dataset_changed.connect(self.check)
        review.model_loaded.connect(self.check)
        review.gate = self.allows

    def _current_key(self) -> tuple[int, str] | None:
        dataset, bundle = self.review.dataset, self.review.bundle
        return None if dataset is None or bundle is None else (id(dataset), bundle.token)

    def errors_for(self, action: str) -> list[Any]:
        """The current report's errors that concern ``action`` (training: only those about the data)."""
        if self.report is None or self._checked != self._current_key():
            return []
        from segstudio.core.data import DATA_ERRORS

        return [f for f in self.report.errors if action != "train" or f.code in DATA_ERRORS]

    def allows(self, action: str, explicit: bool = True) -> bool:
        """May ``action`` (evaluate, train, compare) start? Not while the guard has errors, unless the person
        answers "Run anyway"; an automatic evaluation waits for the guard, then runs only if it found none."""
        key = self._current_key()
        if key is None or action in self._forced:
            return True
        if self._checked != key:
            if not explicit:
                self._evaluate_when_checked = True
                self.review.status.emit("Checking the labels before evaluating…")
                return False
            return True
        errors = self.errors_for(action)
        if not errors:
            return True
        if not explicit:
            self._refuse_automatic(errors)
            return False
        shown = "\n".join(f"• {f.message}\n   Fix: {f.fix}" for f in errors[:MAX_SHOWN])
        text = (f"The label check found {len(errors)} error(s) for {self.report.dataset} with model "
                f"{self.report.model}; the results would be wrong:\n\n{shown}\n\nRun anyway?")
        if ask_run_anyway(self.banner.window(), f"{ACTIONS[action]} refused — label check", text):
            self._forced.add(action)
            return True
        self.banner.show_report(self.report)  # again, if it was dismissed
        self.review.status.emit(f"{ACTIONS[action]} not started: the label check found errors (see the banner).")
        return False

    def _refuse_automatic(self, errors: list[Any]) -> None:
        note = (f"Not evaluated: the label check found {len(errors)} error(s) (see the banner above the viewer). "
                "Run > Evaluate Split (F5) to run anyway.")
        self.review.class_table.clear(note)
        self.review.status.emit(note)

    def check(self, *_: Any) -> None:
        """Start the guard for the open dataset and model (once per pair)."""
        dataset, bundle = self.review.dataset, self.review.bundle
        if dataset is None or bundle is None:
            return
        key = (id(dataset), bundle.token)
        if key == self._key:
            return
        self._key, self.report, self._forced = key, None, set()
        self.banner.clear()
        loaded = bundle.loaded
        self.jobs.submit("label-guard", lambda ctx: (key, run_guard(ctx, dataset, loaded)),
                         on_result=self._on_result, on_error=self._on_error)

    def _on_result(self, value: tuple[tuple[int, str], Any]) -> None:
        key, report = value
        if key != self._key:
            return  # a newer dataset or model is being checked
        self.report, self._checked = report, key
        self.banner.show_report(report)
        if report.errors:
            self.review.status.emit(f"Label check: {report.errors[0].message}")
        self._evaluate_if_waiting()
        self.checked.emit(report)

    def _on_error(self, info: ErrorInfo) -> None:
        self._checked = self._key
        self.review.status.emit(f"Label check failed: {info.message}")
        self._evaluate_if_waiting()

    def _evaluate_if_waiting(self) -> None:
        if self._evaluate_when_checked:
            self._evaluate_when_checked = False
            self.review.maybe_evaluate()

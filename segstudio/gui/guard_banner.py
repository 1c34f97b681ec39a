"""The label-convention banner: when a dataset and a model are both open, the guard runs in the background and
its errors and warnings (with their fixes) show in a dismissible strip above the viewer."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from segstudio.gui.workers import ErrorInfo, JobRunner

MAX_SHOWN = 4
_STYLES = {
    "error": "#guardBanner { background: #fdecea; border: 1px solid #d93025; border-radius: 4px; }",
    "warning": "#guardBanner { background: #fff4e5; border: 1px solid #e8a33d; border-radius: 4px; }",
}


def run_guard(ctx: Any, dataset: Any, loaded: Any) -> Any:
    """The guard's full check in a worker (a sample of every split); stops scanning when cancelled."""
    from segstudio.gui.jobs import import_core

    import_core("data")
    from segstudio.core.label_guard import check_labels

    return check_labels(dataset, loaded, cancel=ctx.cancel_event)


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
        review.dataset_changed.connect(self.check)
        review.model_loaded.connect(self.check)

    def check(self, *_: Any) -> None:
        """Start the guard for the open dataset and model (once per pair)."""
        dataset, bundle = self.review.dataset, self.review.bundle
        if dataset is None or bundle is None:
            return
        key = (id(dataset), bundle.token)
        if key == self._key:
            return
        self._key, self.report = key, None
        self.banner.clear()
        loaded = bundle.loaded
        self.jobs.submit("label-guard", lambda ctx: (key, run_guard(ctx, dataset, loaded)),
                         on_result=self._on_result, on_error=self._on_error)

    def _on_result(self, value: tuple[tuple[int, str], Any]) -> None:
        key, report = value
        if key != self._key:
            return  # a newer dataset or model is being checked
        self.report = report
        self.banner.show_report(report)
        if report.errors:
            self.review.status.emit(f"Label check: {report.errors[0].message}")
        self.checked.emit(report)

    def _on_error(self, info: ErrorInfo) -> None:
        self.review.status.emit(f"Label check failed: {info.message}")

"""Background work: a QObject worker on its own QThread, with superqt's signal vocabulary.

A job is a plain function ``fn(ctx: JobContext) -> value`` that runs off the GUI thread. It reports through
``ctx.progress(payload)`` (plain Python / NumPy values only: the GUI thread builds QImages) and checks
``ctx.cancelled`` between steps. Cancel is a ``threading.Event`` set directly from the GUI thread, because a
busy thread does not process queued slots.

Signals, always in this order: ``started``, ``progress``*, then ``result`` or ``errored``, then ``finished``.
"""

from __future__ import annotations

import errno
import sys
import threading
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

# Every QThread started here, so tests can check that none is left running.
_LIVE_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


@dataclass(frozen=True)
class ErrorInfo:
    """What went wrong in a job: a one-line message for a person and the traceback for the details pane."""

    title: str
    message: str
    details: str
    kind: str


class JobContext:
    """Handed to a job function: report progress, look at the cancel flag."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self.cancel_event = worker.cancel_event

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def progress(self, payload: Any) -> None:
        self._worker.progress.emit(payload)


class Worker(QObject):
    """Runs one job function on a QThread (see :func:`start`)."""

    started = Signal()
    progress = Signal(object)
    result = Signal(object)
    errored = Signal(object)
    finished = Signal()

    def __init__(self, name: str, fn: Callable[[JobContext], Any]) -> None:
        super().__init__()
        self.name = name
        self._fn = fn
        self.cancel_event = threading.Event()
        self.thread: QThread | None = None
        self.done = False

    def cancel(self) -> None:
        """Ask the job to stop at its next check (callable from any thread)."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @Slot()
    def run(self) -> None:
        self.started.emit()
        error: ErrorInfo | None = None
        value: Any = None
        try:
            value = self._fn(JobContext(self))
        except BaseException as exc:  # noqa: BLE001 - every failure reaches the GUI as a dialog
            error = describe_error(self.name, exc)
        # Done before the result is announced: a slot reacting to it may start the next job of this name.
        self.done = True
        if error is not None:
            self.errored.emit(error)
        else:
            self.result.emit(value)
        app = QCoreApplication.instance()
        if app is not None:  # hand the object back, so the GUI thread may delete it
            self.moveToThread(app.thread())
        self.finished.emit()


OUT_OF_MEMORY = ("Out of memory on the device: try a smaller batch size or image size, or run on the CPU "
                 "(device: cpu).")


# What to do about a file-system error no core step turned into a message, by errno.
_OS_FIXES = {
    errno.ENOSPC: "the disk is full: free some space and try again",
    errno.EDQUOT: "the disk quota is used up: free some space and try again",
    errno.EROFS: "the folder is read-only: choose another folder",
    errno.EACCES: "permission denied: choose a folder you can write to",
    errno.EPERM: "permission denied: choose a folder you can write to",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another folder",
    errno.EISDIR: "it is a folder, not a file: choose a file",
    errno.ENOENT: "it does not exist (moved or deleted?): choose it again",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def explain_os_error(exc: OSError) -> str:
    """One line for a person: the path, what is wrong and the fix (never Python's "[Errno 28] ..." form)."""
    path = exc.filename
    fix = _OS_FIXES.get(exc.errno) or (f"{exc.strerror.lower()}: check the path and try again" if exc.strerror
                                        else "the file system refused it: check the path and try again")
    return f"{path}: {fix}" if path else fix[:1].upper() + fix[1:]


def describe_error(title: str, exc: BaseException) -> ErrorInfo:
    text = str(exc).strip() or exc.__class__.__name__
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):  # one no core step turned into a message
        text = OUT_OF_MEMORY
    elif isinstance(exc, OSError) and exc.errno is not None:
        text = explain_os_error(exc)
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo(title=title, message=text, details=details, kind=exc.__class__.__name__)


def start(worker: Worker) -> QThread:
    """Move ``worker`` to a new QThread and start it; the thread quits when the worker finishes."""
    thread = QThread()
    thread.setObjectName(f"segstudio-{worker.name}")
    worker.thread = thread
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    _LIVE_THREADS.add(thread)
    thread.start()
    return thread


def live_threads() -> list[QThread]:
    """Threads started by :func:`start` that are still running."""
    return [thread for thread in list(_LIVE_THREADS) if thread.isRunning()]


class JobRunner(QObject):
    """Owns the running jobs of a window: start them, cancel them, wait for them on close."""

    busy_changed = Signal(bool)
    jobs_changed = Signal()  # a job started or finished: what can be cancelled may have changed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: dict[str, Worker] = {}
        self._retired: list[Worker] = []
        self._closed = False  # after shutdown(): a timer firing late must not start a thread nobody will join

    def submit(
        self,
        name: str,
        fn: Callable[[JobContext], Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_error: Callable[[ErrorInfo], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> Worker | None:
        """Start ``fn`` as the job ``name``; an earlier job of that name is cancelled (it finishes on its own).

        Callbacks must be bound methods of QObjects living in the GUI thread, so they run there. After
        :meth:`shutdown` nothing starts and None is returned.
        """
        if self._closed:
            return None
        previous = self._jobs.get(name)
        if previous is not None:
            previous.cancel()
        worker = Worker(name, fn)
        for signal, slot in (
            (worker.result, on_result),
            (worker.progress, on_progress),
            (worker.errored, on_error),
            (worker.finished, on_finished),
        ):
            if slot is not None:
                signal.connect(slot)
        worker.finished.connect(self._on_finished)
        self._jobs[name] = worker
        if previous is not None:
            self._retired.append(previous)
        start(worker)
        self.busy_changed.emit(True)
        self.jobs_changed.emit()
        return worker

    def job(self, name: str) -> Worker | None:
        worker = self._jobs.get(name)
        return worker if worker is not None and not worker.done else None

    def is_running(self, name: str | None = None) -> bool:
        if name is not None:
            return self.job(name) is not None
        return any(not w.done for w in self._all())

    def cancel(self, name: str) -> None:
        worker = self._jobs.get(name)
        if worker is not None:
            worker.cancel()

    def cancel_all(self) -> None:
        for worker in self._all():
            worker.cancel()

    def wait_all(self, timeout_ms: int = 30_000) -> bool:
        """Block until every job's thread has ended (used on close and in tests); True when all did."""
        ok = True
        for worker in self._all():
            if worker.thread is not None:
                ok = worker.thread.wait(timeout_ms) and ok
        return ok

    def stop_all(self) -> None:
        """Cancel every job and refuse new ones from now on, without waiting (closing the window)."""
        self._closed = True
        self.cancel_all()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel every job, wait for their threads, and refuse new jobs from now on."""
        self.stop_all()
        return self.wait_all(timeout_ms)

    def _all(self) -> list[Worker]:
        return list(self._jobs.values()) + self._retired

    @Slot()
    def _on_finished(self) -> None:
        # Forget a replaced job only once its thread has ended: dropping the last reference to a running
        # QThread aborts the process ("QThread: Destroyed while thread is still running").
        self._retired = [w for w in self._retired if not (w.done and (w.thread is None or w.thread.wait(5_000)))]
        for name, worker in list(self._jobs.items()):
            if worker.done and worker.thread is not None and worker.thread.wait(5_000):
                del self._jobs[name]
        self.jobs_changed.emit()
        if not self.is_running():
            self.busy_changed.emit(False)

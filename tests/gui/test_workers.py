"""The worker framework: signal order, errors, cancel flags, and that threads end."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QObject

from segstudio.gui.workers.worker import ErrorInfo, JobRunner, Worker, live_threads, start


class Sink(QObject):
    """Receives worker signals on the GUI thread (bound methods of a QObject, as the app's code does)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, object]] = []
        self.threads: set[int] = set()

    def on_progress(self, value) -> None:
        self.threads.add(threading.get_ident())
        self.events.append(("progress", value))

    def on_result(self, value) -> None:
        self.events.append(("result", value))

    def on_error(self, info) -> None:
        self.events.append(("error", info))

    def on_finished(self) -> None:
        self.events.append(("finished", None))


def test_signals_arrive_in_order_on_the_gui_thread(qtbot, on_gui_thread):
    seen_in: list[int] = []

    def job(ctx):
        seen_in.append(threading.get_ident())
        for i in range(3):
            ctx.progress(i)
        return "done"

    worker = Worker("count", job)
    sink = Sink()
    worker.progress.connect(sink.on_progress)
    worker.result.connect(sink.on_result)
    worker.finished.connect(sink.on_finished)
    signals = [on_gui_thread(signal) for signal in (worker.started, worker.result, worker.finished)]
    with qtbot.waitSignals(signals, order="strict", timeout=5000):
        thread = start(worker)
    assert thread.wait(5000)
    assert seen_in[0] != threading.get_ident()  # the job ran off the GUI thread
    assert sink.threads == {threading.get_ident()}  # the slots ran on it
    assert sink.events == [("progress", 0), ("progress", 1), ("progress", 2), ("result", "done"), ("finished", None)]


def test_an_exception_becomes_errored_with_details_then_finished(qtbot, on_gui_thread):
    def job(ctx):
        raise ValueError("the mask is 3x4 but the image is 4x3")

    worker = Worker("boom", job)
    sink = Sink()
    worker.errored.connect(sink.on_error)
    worker.finished.connect(sink.on_finished)
    with qtbot.waitSignals([on_gui_thread(worker.errored), on_gui_thread(worker.finished)], order="strict",
                           timeout=5000):
        thread = start(worker)
    assert thread.wait(5000)
    assert [name for name, _ in sink.events] == ["error", "finished"]
    info = sink.events[0][1]
    assert isinstance(info, ErrorInfo)
    assert info.message == "the mask is 3x4 but the image is 4x3"
    assert info.kind == "ValueError" and "Traceback" in info.details


def test_cancel_is_a_flag_the_busy_job_sees_between_steps(qtbot, on_gui_thread):
    steps: list[int] = []

    def job(ctx):
        for i in range(10_000):
            if ctx.cancelled:
                return "stopped"
            steps.append(i)
            time.sleep(0.002)
        return "ran to the end"

    worker = Worker("long", job)
    with qtbot.waitSignal(on_gui_thread(worker.result), timeout=10_000) as blocker:
        thread = start(worker)
        qtbot.waitUntil(lambda: len(steps) > 3)
        worker.cancel()
    assert thread.wait(5000)
    assert blocker.args == ["stopped"]
    assert len(steps) < 10_000


def test_a_worker_signal_reaches_wait_signal_from_the_gui_thread(qtbot, on_gui_thread):
    """Emitted, and its thread ended, before the wait begins: the relay delivers it inside the wait's event loop
    (pytest-qt called directly on the worker thread could lose it and never time out)."""
    worker = Worker("quick", lambda ctx: "done")
    relayed = on_gui_thread(worker.result)
    seen_in: list[int] = []
    relayed.connect(lambda value: seen_in.append(threading.get_ident()))
    blocker = qtbot.waitSignal(relayed, timeout=5000)
    thread = start(worker)
    assert thread.wait(5000)
    assert not blocker.signal_triggered and seen_in == []  # nothing ran on the worker thread
    blocker.wait()
    assert blocker.args == ["done"] and seen_in == [threading.get_ident()]


def test_runner_replaces_a_job_of_the_same_name_and_waits_for_all(qtbot):
    runner = JobRunner()
    sink = Sink()
    gate = threading.Event()

    def slow(ctx):
        while not ctx.cancelled:
            time.sleep(0.005)
        return "first cancelled"

    def fast(ctx):
        gate.wait(5)
        return "second"

    first = runner.submit("eval", slow, on_result=sink.on_result)
    second = runner.submit("eval", fast, on_result=sink.on_result)
    assert first.cancelled and not second.cancelled
    assert runner.job("eval") is second
    gate.set()
    qtbot.waitUntil(lambda: not runner.is_running(), timeout=10_000)
    assert runner.wait_all(5000)
    assert sorted(v for _, v in sink.events) == ["first cancelled", "second"]
    assert live_threads() == []


def test_shutdown_cancels_and_joins(qtbot):
    runner = JobRunner()

    def forever(ctx):
        while not ctx.cancelled:
            time.sleep(0.005)

    runner.submit("a", forever)
    runner.submit("b", forever)
    assert runner.is_running()
    assert runner.shutdown(5000)
    assert live_threads() == []
    assert runner.submit("late", forever) is None  # e.g. a timer firing after the window closed
    assert live_threads() == [] and not runner.is_running()


class BusyLog(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[bool] = []

    def record(self, busy: bool) -> None:
        self.values.append(busy)


@pytest.mark.parametrize("count", [1, 5])
def test_busy_changed_reports_idle_after_the_last_job(qtbot, count):
    runner = JobRunner()
    log = BusyLog()
    runner.busy_changed.connect(log.record)
    for i in range(count):
        runner.submit(f"job{i}", lambda ctx: None)
    qtbot.waitUntil(lambda: log.values and log.values[-1] is False and not runner.is_running(), timeout=5000)
    assert log.values[0] is True
    assert runner.wait_all(5000)


def test_the_model_import_group_imports_what_loading_a_model_imports() -> None:
    """Jobs import torch and transformers under one lock (two threads' first imports can trip Python's import-lock
    deadlock detection); core.model no longer imports transformers itself, so the group must name it."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys; from segstudio.gui.workers.jobs import import_core; import_core('model'); "
        "before = set(sys.modules); from segstudio.core.model import load_model; load_model('scratch'); load_model('demo'); "
        "print(json.dumps(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('torch', 'transformers'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []

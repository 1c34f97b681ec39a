"""GUI fixtures: isolated QSettings, a tiny demo, one scratch model for the session, windows that are shut down
cleanly, worker signals relayed to the GUI thread for pytest-qt, and checks after every test that no thread we
started is still running and that the application was not left quitting."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QEventLoop, QMimeData, QObject, QPointF, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from segstudio.gui.workers.worker import live_threads
from segstudio.process_setup import set_up_window

set_up_window()  # as run_app does before any window exists


@pytest.fixture
def qsettings(tmp_path) -> QSettings:
    """Settings in an INI file of the test's own folder: the user's are never read or written."""
    return QSettings(str(tmp_path / "segstudio-test.ini"), QSettings.Format.IniFormat)


@pytest.fixture(scope="session")
def tiny_demo():
    """The demo's schema and classes, small: 8 train / 6 validation / 2 unannotated test images."""
    from segstudio.core.data.demo_dataset import make_demo

    return make_demo(train=8, validation=6, test=2)


@pytest.fixture(scope="session")
def scratch_bundle(tiny_demo):
    """A randomly initialised SegFormer with the demo's classes, predicting at 64x64 on the CPU."""
    from segstudio.gui.workers.jobs import load_model_bundle

    return load_model_bundle("scratch", tiny_demo, "cpu", image_size=64)


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    """Fail a test that leaves a worker thread, or a new Python thread, running."""
    before = set(threading.enumerate())
    yield
    assert live_threads() == [], f"worker threads still running: {[t.objectName() for t in live_threads()]}"
    extra = [t for t in threading.enumerate() if t not in before and t.is_alive()
             and not isinstance(t, threading._DummyThread)]
    assert extra == [], f"threads left running: {extra}"


@pytest.fixture(autouse=True)
def no_modal_dialog_waits(monkeypatch):
    """Fail, instead of hanging, a test that opens a modal question nobody will answer (offscreen, a modal
    QMessageBox waits forever): patch the window's question (``dialogs.ask``, ``ask_run_anyway``) to answer it."""
    def refuse(*args, **_kwargs):
        shown = [a for a in args if isinstance(a, str)]
        raise AssertionError(f"a modal dialog would wait for a person: {shown}")

    for name in ("question", "warning", "critical", "information", "exec"):
        monkeypatch.setattr(QMessageBox, name, refuse)


@pytest.fixture(autouse=True)
def application_not_left_quitting():
    """Fail a test after which an event loop no longer runs: once ``QCoreApplication.exit()`` has run (also through
    a Quit event) outside ``app.exec()``, every later ``QEventLoop.exec()`` returns -1 at once."""
    yield
    if QApplication.instance() is None:  # a test without qtbot (a subprocess runs the app): no loop to check
        return
    loop = QEventLoop()
    QTimer.singleShot(0, loop.quit)
    assert loop.exec() == 0, "the QApplication was left quitting: later event loops (waitSignal) return at once"


class GuiThreadRelay(QObject):
    """Re-emits a signal from the GUI thread. pytest-qt's blocker is a plain callable, which PySide6 calls on the
    thread that emits: a worker's signal arriving just before ``waitSignal`` enters its event loop is lost, and
    its timeout timer, stopped from the worker thread, never fires, so the wait never ends."""

    fired = Signal(object)

    def __init__(self, signal) -> None:
        super().__init__()
        signal.connect(self._forward)  # a bound method of a GUI-thread QObject: queued to the GUI thread

    def _forward(self, *args) -> None:
        self.fired.emit(args[0] if len(args) == 1 else args)


@pytest.fixture
def on_gui_thread():
    """``on_gui_thread(worker.result)`` -> a signal that fires on the GUI thread with the same value, safe to give
    ``qtbot.waitSignal(s)`` (a signal without arguments fires with ``()``)."""
    relays: list[GuiThreadRelay] = []

    def relay(signal):
        relays.append(GuiThreadRelay(signal))
        return relays[-1].fired

    yield relay
    relays.clear()


@pytest.fixture
def make_window(qtbot, qsettings):
    """``make_window(**kwargs)`` -> a shown MainWindow(autoload=False) that is shut down after the test."""
    from segstudio.gui.main_window import MainWindow

    windows = []

    def make(settings=None, autoload: bool = False) -> MainWindow:
        window = MainWindow(settings=settings if settings is not None else qsettings, autoload=autoload)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        assert window.shutdown(60_000)


def _wait_results(qtbot, window, timeout: int = 60_000) -> None:
    qtbot.waitUntil(lambda: (r := window.review.results(create=False)) is not None and r.complete, timeout=timeout)
    qtbot.waitUntil(lambda: not window.jobs.is_running("evaluate"), timeout=timeout)


@pytest.fixture
def wait_results(qtbot):
    """``wait_results(window)``: until the shown split is completely predicted."""
    return lambda window, timeout=60_000: _wait_results(qtbot, window, timeout)


@pytest.fixture
def review_window(make_window, tiny_demo, scratch_bundle, qtbot):
    """A window showing the tiny demo's validation split, fully predicted by the scratch model."""
    window = make_window()
    window.set_dataset(tiny_demo)
    window.review.set_model(scratch_bundle)
    _wait_results(qtbot, window)
    qtbot.waitUntil(lambda: _shows_selected_image(window))
    # The window may open under the pointer an earlier test left on the offscreen screen; rows then hold still
    # as they do under a person's pointer. These tests read the list as it is with the pointer elsewhere.
    window.dataset_panel.model.hold_order(False)
    return window


@pytest.fixture
def editor(review_window):
    """The review window in edit mode, side by side, with class 3 picked."""
    window = review_window
    window.viewer.set_layout("side")
    window.actions.edit_mode.trigger()
    assert window.editing.enabled and window.docks["edit"].isVisible()
    window.edit_panel.picker.pick(3)
    return window


def _shows_selected_image(window) -> bool:
    """The viewer shows the selected image with its prediction: once the split is predicted the window selects
    the worst image and decodes it in the background, so a check of the content alone can still see the last one."""
    content, review = window.viewer.content, window.review
    if content is None or content.prediction is None or review.row is None:
        return False
    return np.array_equal(content.ground_truth, review.source.ground_truth(review.row))


def _drop_files(window, paths) -> QDropEvent:
    """What a drag from a file manager sends: an enter event (which must be accepted), then the drop."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    return event


@pytest.fixture
def drop_files():
    """``drop_files(window, paths)``: drag files or folders from outside onto the window."""
    return _drop_files

"""Closing the window while work runs: it goes at once, nothing new starts, and it closes when the work ends."""

from __future__ import annotations

import threading
import time


def test_closing_while_a_model_loads_hides_at_once_and_starts_no_prediction(make_window, tiny_demo, scratch_bundle,
                                                                          qtbot, monkeypatch):
    from segstudio.gui.workers import jobs

    window = make_window()
    window.set_dataset(tiny_demo)
    qtbot.waitUntil(lambda: window.viewer.content is not None)
    release = threading.Event()

    def slow_load(*args, **kwargs):  # reading weights cannot be interrupted: it ignores the cancel flag
        release.wait(30)
        return scratch_bundle

    monkeypatch.setattr(jobs, "load_model_bundle", slow_load)
    started = []
    submit = window.jobs.submit

    def recording_submit(name, *args, **kwargs):
        worker = submit(name, *args, **kwargs)
        if worker is not None:
            started.append(name)
        return worker

    monkeypatch.setattr(window.jobs, "submit", recording_submit)
    window.open_model("scratch")
    qtbot.waitUntil(lambda: window.jobs.is_running("model"))
    began = time.monotonic()
    window.close()
    assert not window.isVisible() and time.monotonic() - began < 1.0
    with qtbot.waitSignal(window.last_window_closed, timeout=30_000):  # run_app quits the application on it
        release.set()
    assert not window.jobs.is_running()
    assert "evaluate" not in started  # the loaded model was not put to work
    assert window.jobs.submit("late", lambda ctx: None) is None

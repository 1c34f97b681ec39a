"""PySide6 6.12 loses references to None on CPython < 3.12: a long session must not free None and abort."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from PySide6.QtGui import QImage

from segstudio.process_setup import pyside_loses_references

BROWSE = textwrap.dedent(r"""
    import sys, tempfile
    from pathlib import Path
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from segstudio.core.data.demo_dataset import make_demo
    from segstudio.gui.main_window import MainWindow
    from segstudio.process_setup import set_up_window

    set_up_window()  # as run_app does
    app = QApplication([])
    window = MainWindow(settings=QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat),
                        autoload=False)
    window.show()
    window.set_dataset(make_demo(train=0, validation=4, test=0))
    panel, viewer = window.review.panel, window.viewer

    def step(delta):
        panel.step(delta)
        target = panel.current_entry()
        while viewer.content is None or viewer.content.index != target:
            app.processEvents()

    start = sys.getrefcount(None) % (1 << 40)  # without the headroom this is all None has
    lost, steps, delta = 0, 0, 1
    while steps < 40 or (0 < lost < start * 1.2 and steps < 5000):
        before = sys.getrefcount(None)
        if panel.current_entry() in (0, 3) and steps:
            delta = -delta
        step(delta)
        lost += max(0, before - sys.getrefcount(None))
        steps += 1
    print("steps", steps, "references to None lost", lost, "of", start, flush=True)
    window.shutdown()
    window.close()
""")


def _references_to_none_lost_by(calls: int) -> int:
    image = QImage(2, 2, QImage.Format.Format_Indexed8)
    before = sys.getrefcount(None)
    for _ in range(calls):
        image.setColorTable([0xFF000000, 0xFFFFFFFF])
    return before - sys.getrefcount(None)


def test_the_leak_check_agrees_with_counting_references_around_another_leaking_call():
    leaks = _references_to_none_lost_by(1000) >= 1000
    assert pyside_loses_references() is leaks


def test_the_window_set_up_gives_none_and_true_headroom_exactly_where_references_leak():
    script = (
        "import sys\n"
        "from segstudio.process_setup import HEADROOM, pyside_loses_references, set_up_window\n"
        "leaks = pyside_loses_references()\n"
        "set_up_window()\n"
        "print(leaks, sys.getrefcount(None) > HEADROOM, sys.getrefcount(True) > HEADROOM)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    leaks, none_protected, true_protected = done.stdout.split()
    assert none_protected == true_protected == leaks


def test_browsing_until_none_would_have_been_freed_then_closing_exits_0():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", BROWSE], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "deallocating None" not in done.stderr
    assert "steps" in done.stdout

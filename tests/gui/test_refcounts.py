"""PySide6 6.12 loses references to None on CPython < 3.12: a long session must not free None and abort."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from segstudio.gui.refcounts import HEADROOM, needs_headroom

BROWSE = textwrap.dedent(r"""
    import sys, tempfile
    from pathlib import Path
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from segstudio.core.demo_data import make_demo
    from segstudio.gui.main_window import MainWindow

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


def test_none_and_true_get_headroom_where_they_are_not_immortal():
    if needs_headroom():
        assert sys.getrefcount(None) > HEADROOM and sys.getrefcount(True) > HEADROOM


def test_browsing_until_none_would_have_been_freed_then_closing_exits_0():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", BROWSE], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "deallocating None" not in done.stderr
    assert "steps" in done.stdout

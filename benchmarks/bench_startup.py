"""Start-up: seconds from launching a process to SegStudio's main window being painted.

Each measurement is a fresh Python process; the parent notes the wall clock before it starts the process and
the child prints the wall clock at the first paint of its top-level window, then exits at once. SegStudio
starts as `python main.py` does (run_app, autoload of the demo on), with throw-away settings. The reference in
the same run is the floor for any PySide6 app: a bare QMainWindow with one label. Runs alternate; the median
of each is printed. Uses the offscreen platform unless DISPLAY is set (e.g. under Xvfb).

    .venv/bin/python benchmarks/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = r'''
import os, sys, time
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow


class FirstPaint(QObject):
    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint and watched.isWidgetType() and watched.isWindow():
            print("PAINTED", repr(time.time()), flush=True)
            os._exit(0)
        return False


app = QApplication(sys.argv[:1])
probe = FirstPaint()
app.installEventFilter(probe)
if sys.argv[1] == "segstudio":
    from PySide6.QtCore import QSettings
    from segstudio.gui.app import run_app
    run_app(sys.argv[:1], settings=QSettings(sys.argv[2], QSettings.Format.IniFormat))
else:
    window = QMainWindow()
    window.setCentralWidget(QLabel("hello"))
    window.show()
    app.exec()
'''


def first_paint_seconds(kind: str, script: Path, settings: Path) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    start = time.time()
    done = subprocess.run([sys.executable, str(script), kind, str(settings)], env=env, capture_output=True,
                          text=True, timeout=120)
    for line in done.stdout.splitlines():
        if line.startswith("PAINTED "):
            return float(line.split()[1]) - start
    raise RuntimeError(f"{kind}: no paint reported (exit {done.returncode}): {done.stderr[-2000:]}")


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main(runs: int = 5) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "probe.py"
        script.write_text(PROBE)
        settings = Path(tmp) / "settings.ini"
        first_paint_seconds("bare", script, settings)  # warm the file cache for both
        ours, bare = [], []
        for _ in range(runs):
            ours.append(first_paint_seconds("segstudio", script, settings))
            bare.append(first_paint_seconds("bare", script, settings))
    result = {"segstudio_window_s": round(median(ours), 3), "bare_qt_window_s": round(median(bare), 3),
              "segstudio_runs_s": [round(x, 3) for x in ours], "bare_runs_s": [round(x, 3) for x in bare]}
    print(f"window painted after: SegStudio {result['segstudio_window_s']} s, a bare PySide6 window "
          f"{result['bare_qt_window_s']} s (medians of {runs})")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)

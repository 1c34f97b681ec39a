"""Training from the GUI worker against `segstudio train`, and how long the GUI thread ever stalls.

Both fine-tune the demo model on the demo data with the same settings (steps, batch, image size, learning rate,
CPU, no evaluation). `segstudio train` runs as its own process; its steps are timed from its progress bar as
they arrive. The GUI run is the real MainWindow (offscreen) with its training panel, the job on a QThread;
its steps are timed as the panel receives them. Steps per second are taken after the first WARMUP steps, runs
alternate (CLI, GUI, GUI, CLI, ...) and the best of each is kept, so both see the same machine load; single rounds
spread by +-15% on this shared machine, so the GUI thread's own CPU time during the GUI runs (the cost the GUI adds,
as a share of one core) is reported too: it does not depend on the machine's speed.
Then one more GUI training run, and a prediction of the 48-image validation split, with a 10 ms QTimer on the
GUI thread recording every interval between its ticks: the stall percentiles are over those intervals. The
timer is kept out of the timed runs: on 2 cores its 100 wake-ups a second (each taking the GIL) cost the
worker several percent, which a person's idle window does not.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui_training.py [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gui_harness import close_window, open_window

WARMUP = 5
SETTINGS = {"batch_size": 8, "image_size": 128, "learning_rate": 6e-5, "eval_steps": 100_000}
_STEP = re.compile(rb"(\d+)/(\d+) \[")


def steps_per_second(stamps: list[tuple[float, int]]) -> float:
    """Steps per second from (time, step) pairs, after the warm-up steps."""
    after = [(t, s) for t, s in stamps if s >= WARMUP]
    (t0, s0), (t1, s1) = after[0], after[-1]
    return (s1 - s0) / (t1 - t0)


def cli_run(output: Path, steps: int) -> float:
    """Steps per second of `segstudio train`, read from its progress bar as it is drawn."""
    command = [sys.executable, "-m", "segstudio", "train", "--dataset", "demo", "--model", "demo",
               "--output", str(output), "--max-steps", str(steps), "--batch-size", str(SETTINGS["batch_size"]),
               "--image-size", str(SETTINGS["image_size"]), "--learning-rate", str(SETTINGS["learning_rate"]),
               "--eval-steps", str(SETTINGS["eval_steps"]), "--save-steps", str(SETTINGS["eval_steps"]),
               "--device", "cpu"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    stamps, seen = [], -1
    while chunk := os.read(process.stderr.fileno(), 65536):
        now = time.perf_counter()
        for match in _STEP.finditer(chunk):
            step = int(match.group(1))
            if step > seen:
                stamps.append((now, step))
                seen = step
    if process.wait() != 0:
        raise RuntimeError(f"segstudio train failed with exit code {process.returncode}")
    return steps_per_second(stamps)


class GapMeter:
    """Every interval between the ticks of a 10 ms timer on the GUI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.ends: list[float] = []  # seconds since start() at the end of each interval
        self.last = self.first = 0.0

    def start(self) -> None:
        self.gaps, self.ends = [], []
        self.last = self.first = time.perf_counter()
        self.timer.start()

    def stop(self) -> np.ndarray:
        self.timer.stop()
        return np.array(self.gaps) * 1e3

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.ends.append(now - self.first)
        self.last = now

    def worst(self) -> dict:
        """The longest interval: how long, and when it ended (seconds after start, and share of the run)."""
        index = int(np.argmax(self.gaps))
        return {"ms": round(self.gaps[index] * 1e3, 1), "ended_at_s": round(self.ends[index], 2),
                "run_s": round(self.ends[-1], 2)}


def wait(done, timeout: float) -> None:
    """Run the GUI's event loop, as ``app.exec()`` would, until ``done()``; checked 10 times a second.

    A processEvents()/sleep(2 ms) loop here took the GIL 500 times a second and cost the worker several percent
    on 2 cores, which a person's window (blocked in its event loop) does not.
    """
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    end = time.perf_counter() + timeout

    def check() -> None:
        if done() or time.perf_counter() > end:
            loop.quit()

    timer = QTimer(interval=100)
    timer.timeout.connect(check)
    timer.start()
    if not done():
        loop.exec()
    timer.stop()
    if not done():
        raise TimeoutError("the GUI run did not finish in time")


def gui_run(
    window, output: Path, steps: int, meter: GapMeter | None
) -> tuple[float, float, np.ndarray | None]:
    """Steps per second of the training panel's run, the share of one core the GUI thread used meanwhile, and
    the GUI thread's tick intervals (if metered)."""
    panel = window.training_panel
    panel.model_spec.setText("demo")
    panel.length_unit.setCurrentText("steps")
    panel.steps.setValue(steps)
    panel.batch_size.setValue(SETTINGS["batch_size"])
    panel.image_size.setValue(SETTINGS["image_size"])
    panel.learning_rate.setValue(SETTINGS["learning_rate"])
    panel.device.setCurrentText("cpu")
    panel.eval_steps.setValue(SETTINGS["eval_steps"])
    panel.output_dir.setText(str(output))
    stamps: list[tuple[float, int]] = []
    original = panel.on_event

    def on_event(event) -> None:
        if event.kind == "progress":
            stamps.append((time.perf_counter(), int(event.data["step"])))
        original(event)

    panel.on_event = on_event
    window.training.result = None
    if meter is not None:
        meter.start()
    wall, cpu = time.perf_counter(), time.thread_time()  # this thread is the GUI thread
    panel.start_button.click()
    wait(lambda: window.training.result is not None and not window.training.running(), 1800)
    gui_share = (time.thread_time() - cpu) / (time.perf_counter() - wall)
    gaps = None
    if meter is not None:
        gaps = meter.stop()
        print(f"longest GUI-thread interval while training: {meter.worst()}", flush=True)
    panel.on_event = original
    unique = sorted({step: t for t, step in reversed(stamps)}.items())
    return steps_per_second([(t, s) for s, t in unique]), gui_share, gaps


def percentiles(gaps: np.ndarray) -> dict:
    return {"p50": round(float(np.percentile(gaps, 50)), 1), "p99": round(float(np.percentile(gaps, 99)), 1),
            "max": round(float(gaps.max()), 1), "ticks": int(gaps.size)}


def main(steps: int = 40, rounds: int = 2) -> dict:
    from segstudio.core.data.sources import load_source
    from segstudio.gui.workers.jobs import load_model_bundle

    load_source("demo")  # build the demo cache once, outside the timed runs
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        app, window = open_window(tmp)
        dataset = load_source("demo")
        window.review.auto_evaluate = False
        window.set_dataset(dataset)
        meter = GapMeter()
        cli, gui, shares = [], [], []
        for index in range(rounds):
            if index % 2:  # every other round the GUI goes first, so neither side always follows the other
                rate, share, _gaps = gui_run(window, tmp / f"gui{index}", steps, None)
                cli.append(cli_run(tmp / f"cli{index}", steps))
            else:
                cli.append(cli_run(tmp / f"cli{index}", steps))
                rate, share, _gaps = gui_run(window, tmp / f"gui{index}", steps, None)
            gui.append(rate)
            shares.append(share)
        _rate, _share, training_gaps = gui_run(window, tmp / "metered", steps, meter)
        bundle = load_model_bundle("demo", dataset, "cpu")
        window.review.auto_evaluate = True
        meter.start()
        window.review.set_model(bundle)  # predicts and scores the validation split in the worker
        wait(lambda: (r := window.review.results(create=False)) is not None and r.complete
             and not window.jobs.is_running(), 600)
        predicting_gaps = meter.stop()
        close_window(app, window)
    per_round = [g / c for g, c in zip(gui, cli, strict=True)]
    result = {
        "steps": steps, **SETTINGS,
        "cli_steps_per_s": [round(x, 3) for x in cli], "gui_steps_per_s": [round(x, 3) for x in gui],
        "gui_vs_cli": round(max(gui) / max(cli), 3),
        "gui_vs_cli_per_round": [round(r, 3) for r in per_round],
        "gui_vs_cli_median_round": round(float(np.median(per_round)), 3),
        "gui_thread_cpu_share": round(float(np.median(shares)), 4),
        "gui_stall_ms_training": percentiles(training_gaps),
        "gui_stall_ms_predicting": percentiles(predicting_gaps),
    }
    print(f"training steps/s: segstudio train {max(cli):.3f}, GUI worker {max(gui):.3f} "
          f"(GUI/CLI = {result['gui_vs_cli']:.3f} best of each, {result['gui_vs_cli_median_round']:.3f} median round)")
    print(f"the GUI thread's own CPU while the worker trained: {result['gui_thread_cpu_share']:.2%} of one core")
    for name in ("training", "predicting"):
        p = result[f"gui_stall_ms_{name}"]
        print(f"GUI thread while {name}: tick interval p50 {p['p50']} ms, p99 {p['p99']} ms, max {p['max']} ms")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    main(args.steps, args.rounds)

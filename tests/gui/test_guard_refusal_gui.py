"""The window refuses to evaluate, train or compare while the label check has errors, unless "Run anyway".

The dataset is the tiny demo read without reduce_labels: its masks use 0 = 'other' and ids 1..10 for 10 classes,
the ADE20K shift the guard reports as an error.
"""

from __future__ import annotations

import dataclasses

import pytest

from segstudio.core.labels.label_map import LabelConvention
from segstudio.gui.widgets import guard_banner
from segstudio.gui.workers.train_job import TrainRequest


@pytest.fixture
def shifted(tiny_demo):
    return dataclasses.replace(tiny_demo, convention=LabelConvention(reduce_labels=False))


@pytest.fixture
def answers(monkeypatch):
    """The answers the "Run anyway?" question gets, and the titles it was asked with."""
    state = {"answer": False, "asked": []}

    def ask(parent, title, text):
        state["asked"].append(title)
        return state["answer"]

    monkeypatch.setattr(guard_banner, "ask_run_anyway", ask)
    return state


def submitted(window) -> list[str]:
    """Record the names of the jobs the window starts from now on."""
    names: list[str] = []
    submit = window.jobs.submit

    def record(name, *args, **kwargs):
        names.append(name)
        return submit(name, *args, **kwargs)

    window.jobs.submit = record
    return names


def test_no_automatic_evaluation_runs_on_guard_errors(make_window, shifted, scratch_bundle, answers, qtbot):
    window = make_window()
    jobs = submitted(window)
    window.set_dataset(shifted)
    with qtbot.waitSignal(window.guard.checked, timeout=60_000) as blocker:
        window.review.set_model(scratch_bundle)
    assert [f.code for f in blocker.args[0].errors] == ["needs_reduce_labels"]
    qtbot.wait(50)
    assert "evaluate" not in jobs and answers["asked"] == []
    assert window.review.results(create=False).done == 0
    assert "Not evaluated: the label check found 1 error(s)" in window.message_label.text()
    assert window.guard_banner.isVisible()


def test_evaluate_train_and_compare_ask_first(make_window, shifted, scratch_bundle, answers, qtbot, tmp_path,
                                             wait_results):
    window = make_window()
    window.set_dataset(shifted)
    with qtbot.waitSignal(window.guard.checked, timeout=60_000):
        window.review.set_model(scratch_bundle)
    jobs = submitted(window)
    window.review.evaluate(explicit=True)
    assert answers["asked"] == ["Evaluating refused — label check"] and "evaluate" not in jobs
    assert "Evaluating not started" in window.message_label.text()
    request = TrainRequest("scratch", {"output_dir": tmp_path / "run", "max_steps": 1})
    assert not window.training.start(request)
    assert answers["asked"][-1] == "Training refused — label check" and "train" not in jobs
    answers["answer"] = True
    window.review.evaluate(explicit=True)
    wait_results(window)
    assert window.review.results(create=False).complete
    answers["answer"] = False
    window.compare.compare_with("scratch", device="cpu")
    assert answers["asked"] == ["Evaluating refused — label check", "Training refused — label check",
                                "Evaluating refused — label check", "Comparing refused — label check"]
    assert "compare" not in jobs and "Comparing not started" in window.message_label.text()


def test_a_clean_check_lets_the_automatic_evaluation_run(make_window, tiny_demo, scratch_bundle, answers,
                                                         wait_results):
    window = make_window()
    window.set_dataset(tiny_demo)
    window.review.set_model(scratch_bundle)
    wait_results(window)
    assert window.guard.report.ok and answers["asked"] == []

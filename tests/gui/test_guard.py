"""The label-convention banner through the real window: a model whose head disagrees shows it, a fitting one not."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from segstudio.gui.widgets.guard_banner import GuardBanner


@pytest.fixture(scope="module")
def ade_bundle():
    """A scratch model with the 150 ADE20K classes: its head disagrees with the demo's 10."""
    from segstudio.gui.workers.jobs import load_model_bundle

    return load_model_bundle("scratch", None, "cpu", image_size=64)


def test_a_head_that_disagrees_shows_the_banner_with_the_fix(make_window, tiny_demo, ade_bundle, scratch_bundle,
                                                              qtbot):
    window = make_window()
    window.set_dataset(tiny_demo)
    assert not window.guard_banner.isVisible()
    with qtbot.waitSignal(window.guard.checked, timeout=60_000) as blocker:
        window.review.set_model(ade_bundle)
    report = blocker.args[0]
    assert [f.code for f in report.errors] == ["head_size"]
    banner = window.guard_banner
    assert banner.isVisible() and banner.y() < window.viewer.y()  # above the viewer, no dialog
    text = banner.text.text()
    assert "150 classes" in text and "label map has 10" in text and "Fix:" in text
    assert "head_size" not in text and "error" in banner.plain_text()
    assert "Label check:" in window.message_label.text()
    qtbot.mouseClick(banner.close_button, Qt.MouseButton.LeftButton)
    assert not banner.isVisible()
    with qtbot.waitSignal(window.guard.checked, timeout=60_000) as blocker:
        window.review.set_model(scratch_bundle)  # the demo's classes: nothing to report
    assert blocker.args[0].ok and not blocker.args[0].warnings
    assert not window.guard_banner.isVisible()


def test_a_fitting_model_keeps_the_banner_hidden_and_a_new_dataset_rechecks(make_window, tiny_demo,
                                                                          scratch_bundle, qtbot):
    window = make_window()
    with qtbot.waitSignal(window.guard.checked, timeout=60_000) as blocker:
        window.review.set_model(scratch_bundle)
        window.set_dataset(tiny_demo)
    assert blocker.args[0].ok and not window.guard_banner.isVisible()
    assert {s.split for s in blocker.args[0].scans} == {"train", "validation", "test"}


def test_the_banner_lists_warnings_and_caps_long_lists(qtbot):
    from segstudio.core.data.label_guard import Finding, GuardReport

    banner = GuardBanner()
    qtbot.addWidget(banner)
    banner.show()
    findings = [Finding("warning", f"w{i}", f"note <{i}>", "do this") for i in range(6)]
    banner.show_report(GuardReport("data", "model", findings + [Finding("info", "scanned", "x")], []))
    assert banner.isVisible() and "&lt;0&gt;" in banner.text.text() and "2 more" in banner.text.text()
    banner.show_report(GuardReport("data", "model", [Finding("info", "agree", "all good")], []))
    assert not banner.isVisible()

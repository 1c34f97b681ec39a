"""Edited masks that cannot be saved (a full disk, a corrections folder that is a file): the window keeps the edit
in memory, says so in one line, tries again, and closing asks before an edit is lost."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image
from test_mask_editing import stroke  # the same mouse strokes as the mask-editing tests

from segstudio.gui.dialogs import messages as dialogs


def paint(window) -> np.ndarray:
    """One brush stroke on the ground-truth pane; the edited mask on screen afterwards."""
    stroke(window.viewer.panes["gt"], [(10.5, 10.5), (40.5, 30.5)])
    assert window.editing.session is not None and window.editing.session.changed_pixels()
    return window.viewer.content.ground_truth.copy()


def saved_masks(window) -> list:
    folder = window.corrections.folder_for(window.review.dataset)
    return sorted(folder.rglob("*.png")) if folder.is_dir() else []


def full_disk(monkeypatch) -> None:
    """Every write fails as on a full disk (what ``os.write`` raises there)."""
    def refuse(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", refuse)


def test_an_autosave_on_a_full_disk_keeps_the_edit_says_so_and_tries_again(editor, qtbot, monkeypatch):
    from segstudio.gui.controllers import mask_editing

    window = editor
    monkeypatch.setattr(mask_editing, "RETRY_SAVE_MS", 300)
    full_disk(monkeypatch)
    edited = paint(window)
    qtbot.waitUntil(lambda: "kept in memory" in window.message_label.text(), timeout=10_000)
    line = window.message_label.text()
    assert "disk full" in line and "[Errno" not in line and "\n" not in line
    assert saved_masks(window) == [] and window.editing.unsaved() == 1
    assert np.array_equal(window.viewer.content.ground_truth, edited)  # the edit stays on screen
    monkeypatch.undo()  # space freed: the next try saves it without another stroke
    qtbot.waitUntil(lambda: window.editing.save_problem is None, timeout=10_000)
    qtbot.waitUntil(lambda: not window.jobs.is_running("autosave"), timeout=10_000)
    assert len(saved_masks(window)) == 1 and window.editing.unsaved() == 0


def test_a_corrections_folder_that_is_a_file_keeps_the_edit_and_the_file(editor, qtbot, tmp_path, monkeypatch,
                                                                          wait_results):
    window = editor
    monkeypatch.setattr(dialogs, "ask", lambda parent, title, text: True)  # the closing at the end loses the edit
    mine = tmp_path / "notes"
    mine.write_text("the person's own file")
    window.corrections.use_folder(mine)
    qtbot.waitUntil(lambda: any("is a file" in e.message for e in window.errors), timeout=30_000)
    wait_results(window)
    qtbot.waitUntil(lambda: window.viewer.content is not None and window.viewer.content.index == window.review.row)
    window.edit_panel.picker.pick(3)
    edited = paint(window)
    qtbot.waitUntil(lambda: "kept in memory" in window.message_label.text(), timeout=10_000)
    assert "is a file" in window.message_label.text() and window.editing.unsaved() == 1
    assert np.array_equal(window.editing.session.mask, edited)
    assert mine.read_text() == "the person's own file"


@pytest.mark.parametrize("answer", [False, True])
def test_closing_with_an_edit_that_cannot_be_saved_asks_first(editor, qtbot, monkeypatch, answer):
    window = editor
    full_disk(monkeypatch)
    edited = paint(window)
    questions: list[str] = []
    monkeypatch.setattr(dialogs, "ask", lambda parent, title, text: questions.append(text) or answer)
    window.close()
    (question,) = questions
    assert "1 edited mask(s) could not be saved" in question and "disk full" in question
    assert "[Errno" not in question
    assert window.isVisible() is not answer  # No keeps the window, and the edit, open
    if not answer:
        assert np.array_equal(window.viewer.content.ground_truth, edited)
        monkeypatch.undo()
        assert window.editing.save_now() and len(saved_masks(window)) == 1


def test_closing_after_the_edit_was_saved_asks_nothing(editor, qtbot, monkeypatch):
    window = editor
    paint(window)
    monkeypatch.setattr(dialogs, "ask", lambda *args: pytest.fail("asked although everything was saved"))
    window.close()
    assert not window.isVisible() and len(saved_masks(window)) == 1


def test_closing_while_an_autosave_that_will_fail_is_writing_asks_first(editor, qtbot, monkeypatch):
    import threading

    window = editor
    writing, release = threading.Event(), threading.Event()

    def slow_full_disk(fd, data):
        if threading.current_thread() is not threading.main_thread():  # the autosave worker: wait for the close
            writing.set()
            release.wait(10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", slow_full_disk)
    paint(window)
    qtbot.waitUntil(writing.is_set, timeout=10_000)
    questions: list[str] = []

    def answer(parent, title, text):
        questions.append(text)
        return False

    monkeypatch.setattr(dialogs, "ask", answer)
    threading.Timer(0.5, release.set).start()  # the worker fails while the window waits for its outcome
    window.close()
    assert len(questions) == 1 and "disk full" in questions[0] and window.isVisible()
    qtbot.waitUntil(lambda: not window.jobs.is_running("autosave"), timeout=10_000)
    monkeypatch.setattr(dialogs, "ask", lambda *args: True)  # the test's own closing lets the edit go


def test_an_edit_left_while_the_disk_is_full_is_saved_in_the_background_once_space_is_freed(editor, qtbot,
                                                                                               monkeypatch):
    from segstudio.gui.controllers import mask_editing

    window = editor
    monkeypatch.setattr(mask_editing, "RETRY_SAVE_MS", 300)
    full_disk(monkeypatch)
    first = window.review.row
    edited = paint(window)
    qtbot.waitUntil(lambda: "kept in memory" in window.message_label.text(), timeout=10_000)
    window.dataset_panel.step(+1)  # leave the image while its edit cannot be saved
    qtbot.waitUntil(lambda: window.review.row != first and window.editing.session is None, timeout=10_000)
    qtbot.waitUntil(lambda: "images left" in window.message_label.text(), timeout=10_000)
    assert saved_masks(window) == [] and window.editing.unsaved() == 1
    monkeypatch.undo()  # space freed: no stroke, no visit, no closing needed
    qtbot.waitUntil(lambda: window.editing.unsaved() == 0, timeout=10_000)
    qtbot.waitUntil(lambda: not window.jobs.is_running(), timeout=10_000)
    (path,) = saved_masks(window)
    convention = window.review.convention()
    assert np.array_equal(convention.to_model_ids(np.asarray(Image.open(path))), edited)

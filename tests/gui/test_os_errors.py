"""A file-system error that no core step explained still reaches the window as one line with the path and the
fix, never Python's ``[Errno 20] Not a directory: '...'``."""

from __future__ import annotations

import errno
import os

import pytest

from segstudio.gui.workers.worker import describe_error


@pytest.mark.parametrize(("code", "says"), [(errno.ENOSPC, "free some space"), (errno.EROFS, "read-only"),
                                            (errno.EACCES, "permission denied"), (errno.ENOTDIR, "not a folder"),
                                            (errno.ENOENT, "does not exist"), (errno.EIO, "input/output error")])
def test_an_os_error_is_one_line_with_the_path_and_the_fix(code, says):
    info = describe_error("Export failed", OSError(code, os.strerror(code), "/data/out/ü x.png"))
    assert info.message.startswith("/data/out/ü x.png: ") and says in info.message.lower()
    assert "[Errno" not in info.message and "'" not in info.message and "\n" not in info.message
    assert info.kind.endswith("Error") and os.strerror(code) in info.details  # the original stays under Details
    bare = describe_error("Training failed", OSError(errno.ENOSPC, "No space left on device")).message
    assert bare == "The disk is full: free some space and try again"


def test_training_into_a_path_under_a_file_is_one_clear_line(make_window, tiny_demo, qtbot, tmp_path):
    window = make_window()
    window.set_dataset(tiny_demo)
    panel = window.training_panel
    (tmp_path / "notes.txt").write_text("the person's own file")
    panel.model_spec.setText("scratch")
    panel.length_unit.setCurrentText("steps")
    panel.steps.setValue(2)
    panel.image_size.setValue(64)
    panel.device.setCurrentText("cpu")
    panel.output_dir.setText(str(tmp_path / "notes.txt" / "runs"))
    window.training.start_from_panel()
    qtbot.waitUntil(lambda: bool(window.errors) and not window.training.running(), timeout=120_000)
    message = window.errors[-1].message
    assert "notes.txt" in message and "not a folder" in message and "choose another folder" in message
    assert "[Errno" not in message and "\n" not in message
    assert (tmp_path / "notes.txt").read_text() == "the person's own file"

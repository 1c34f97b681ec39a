"""The review record: round trip, refusals, and a record that survives a kill and a second writer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from segstudio.core.review.record import (
    RECORD_NAME,
    STATUSES,
    ReviewRecord,
    ReviewRecordError,
    parse_tags,
)

REPO = Path(__file__).resolve().parents[2]


def _integrity(path: Path) -> str:
    """SQLite's own check of the file (not SegStudio's reading of it)."""
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def _recorded(path: Path) -> int:
    """Images in the record so far (0 until the writer has made its table)."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=10) as db:
            return db.execute("SELECT count(*) FROM review").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _writer(folder: Path, prefix: str, count: int, note_size: int = 2000) -> subprocess.Popen:
    """A second process writing ``count`` images' reviews, each note ``note_size`` characters of its name."""
    script = textwrap.dedent(f"""
        from segstudio.core.review.record import ReviewRecord
        record = ReviewRecord({str(folder)!r})
        for i in range({count}):
            name = f"{prefix}{{i:05d}}.jpg"
            record.update("validation", name, status="needs_fix", tags=["{prefix}", f"n{{i}}"],
                          note=(name * {note_size})[:{note_size}])
        print("done", flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)


def test_round_trip_through_a_fresh_open(tmp_path):
    folder = tmp_path / "corrections"
    with ReviewRecord(folder) as record:
        record.update("validation", "a/ADE_val_1.jpg", status="accepted")
        record.update("validation", "b.jpg", status="needs_fix", tags=["blurry", " occluded "], note="sky is wrong ")
        record.update("train", "b.jpg", status="fixed")
        record.update("validation", "b.jpg", note="sky fixed")  # only the note changes
    assert (folder / RECORD_NAME).is_file()
    with ReviewRecord(folder, create=False) as again:
        entries = again.entries()
        assert set(entries) == {("validation", "a/ADE_val_1.jpg"), ("validation", "b.jpg"), ("train", "b.jpg")}
        b = again.get("validation", "b.jpg")
        assert (b.status, b.tags, b.note) == ("needs_fix", {"blurry", "occluded"}, "sky fixed")
        assert again.get("train", "b.jpg").status == "fixed"
        assert again.get("test", "b.jpg").status == "unreviewed"  # nothing recorded: unreviewed
        assert again.progress("validation", ["a/ADE_val_1.jpg", "b.jpg", "c.jpg"]) == (2, 3)
        assert set(again.entries("train")) == {("train", "b.jpg")}
    assert _integrity(folder / RECORD_NAME) == "ok"


def test_every_status_and_back_to_unreviewed(tmp_path):
    with ReviewRecord(tmp_path) as record:
        for status in STATUSES:
            assert record.update("validation", "x.png", status=status).status == status
        assert record.progress("validation", ["x.png"]) == (1, 1)
        record.update("validation", "x.png", status="unreviewed")
        assert record.progress("validation", ["x.png"]) == (0, 1)


def test_an_unknown_status_is_refused_and_changes_nothing(tmp_path):
    with ReviewRecord(tmp_path) as record:
        record.update("validation", "x.png", status="accepted", note="fine")
        with pytest.raises(ReviewRecordError, match="unknown review status 'done'.*accepted, needs_fix"):
            record.update("validation", "x.png", status="done", note="lost")
        assert (record.get("validation", "x.png").status, record.get("validation", "x.png").note) == ("accepted",
                                                                                                      "fine")
    with sqlite3.connect(tmp_path / RECORD_NAME) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO review VALUES ('validation', 'y.png', 'done', '[]', '', '')")  # nor by hand


def test_tags_are_split_and_a_tag_with_a_separator_is_refused(tmp_path):
    assert parse_tags("blurry, occluded;; dark ,") == {"blurry", "occluded", "dark"}
    with ReviewRecord(tmp_path) as record, pytest.raises(ReviewRecordError, match="comma"):
        record.update("validation", "x.png", tags=["a,b"])


def test_an_absent_record_reads_as_unreviewed_and_is_not_created(tmp_path):
    with ReviewRecord(tmp_path / "none", create=False) as record:
        assert record.entries() == {}
        assert record.get("validation", "x.png").status == "unreviewed"
    assert not (tmp_path / "none").exists()


def test_a_file_that_is_not_a_record_is_refused_in_one_line(tmp_path):
    (tmp_path / RECORD_NAME).write_bytes(b"not a database " * 200)
    with pytest.raises(ReviewRecordError, match="is not a review record") as refused:
        ReviewRecord(tmp_path)
    assert "\n" not in str(refused.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReviewRecordError, match="is a file"):
        ReviewRecord(tmp_path / "file")


def test_a_kill_mid_write_leaves_a_valid_record(tmp_path):
    writer = _writer(tmp_path, "k", 100_000)
    try:
        path = tmp_path / RECORD_NAME
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until it is writing, then kill it in the middle of the stream
            if _recorded(path) >= 30:
                break
            time.sleep(0.05)
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert _integrity(path) == "ok"
    with ReviewRecord(tmp_path) as record:
        entries = record.entries("validation")
        assert 30 <= len(entries) < 100_000
        for (_split, name), entry in entries.items():  # every change is whole: status, tags and note together
            assert entry.status == "needs_fix" and entry.note == (name * 2000)[:2000]
            assert entry.tags == {"k", f"n{int(name[1:6])}"}
        record.update("validation", "after.jpg", status="accepted")  # and it takes new changes
    assert _integrity(path) == "ok"


def test_two_processes_writing_at_once_keep_every_change(tmp_path):
    ReviewRecord(tmp_path).close()
    writers = [_writer(tmp_path, prefix, 150, note_size=200) for prefix in ("p", "q")]
    with ReviewRecord(tmp_path) as record:  # and this process writes meanwhile too
        for i in range(50):
            record.update("train", f"mine{i}.jpg", status="accepted")
    outputs = [w.communicate(timeout=120)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0] and all("done" in out for out in outputs)
    assert _integrity(tmp_path / RECORD_NAME) == "ok"
    with ReviewRecord(tmp_path) as record:
        assert len(record.entries("validation")) == 300 and len(record.entries("train")) == 50

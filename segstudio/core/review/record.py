"""The review record: each image's status, tags and note, in one SQLite file beside the corrections.

Every change is one SQLite transaction in write-ahead-log mode with full sync: a kill or power cut leaves the
record as it was before or after the change, never half-written, and a second process writing the same record
waits for the lock instead of corrupting it. Images are keyed by split and the dataset row's ``file_name``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from segstudio.core.errors import SegStudioError

STATUSES = ("unreviewed", "accepted", "needs_fix", "fixed")
RECORD_NAME = "review.sqlite"
RECORD_FORMAT = "segstudio-review-1"
TAG_FORBIDDEN = (",", ";", "\n", "\r")  # tags are typed and written as "a, b" lists
LOCK_WAIT_S = 15.0
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS review (
    split TEXT NOT NULL,
    file_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    tags TEXT NOT NULL DEFAULT '[]',
    note TEXT NOT NULL DEFAULT '',
    updated TEXT NOT NULL,
    PRIMARY KEY (split, file_name)
);
"""


class ReviewRecordError(SegStudioError, ValueError):
    """A review record that cannot be read or written, or a change it refuses (one line, with the fix)."""


@dataclass(frozen=True)
class ReviewEntry:
    """One image's review: ``status`` (one of STATUSES), ``tags``, ``note`` and the UTC time of its last change."""

    status: str = "unreviewed"
    tags: frozenset[str] = field(default_factory=frozenset)
    note: str = ""
    updated: str = ""

    @property
    def reviewed(self) -> bool:
        return self.status != "unreviewed"


UNREVIEWED = ReviewEntry()


def check_status(status: str) -> str:
    """``status`` if it is one of STATUSES, else ReviewRecordError."""
    if status not in STATUSES:
        raise ReviewRecordError(f"unknown review status {status!r}: use one of {', '.join(STATUSES)}")
    return status


def clean_tags(tags: Iterable[str]) -> frozenset[str]:
    """Tags stripped of surrounding spaces, empty ones dropped; a tag holding a comma, semicolon or line break is
    refused (lists of tags are written with them)."""
    cleaned = set()
    for tag in tags:
        tag = str(tag).strip()
        if any(mark in tag for mark in TAG_FORBIDDEN):
            raise ReviewRecordError(f"the tag {tag!r} holds a comma, semicolon or line break: split it into tags")
        if tag:
            cleaned.add(tag)
    return frozenset(cleaned)


def parse_tags(text: str) -> frozenset[str]:
    """Tags typed as one line, separated by commas or semicolons: "blurry, occluded"."""
    return clean_tags(text.replace(";", ",").split(","))


def tags_text(tags: Iterable[str]) -> str:
    """Tags as one line, sorted: "blurry, occluded"."""
    return ", ".join(sorted(tags))


class ReviewRecord:
    """``ReviewRecord(folder)``: the record ``folder/review.sqlite`` (made if absent unless ``create=False``, when
    an absent record reads as every image unreviewed). Use it from one thread; close it (or use ``with``)."""

    def __init__(self, folder: str | Path, create: bool = True) -> None:
        self.folder = Path(folder)
        self.path = self.folder / RECORD_NAME
        self._db: sqlite3.Connection | None = None
        if self.folder.exists() and not self.folder.is_dir():
            raise ReviewRecordError(f"{self.folder} is a file: the review record goes in a folder (the corrections "
                                    "folder)")
        if create or self.path.exists():
            self._db = self._open(create)

    def _open(self, create: bool) -> sqlite3.Connection:
        try:
            if create:
                self.folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=LOCK_WAIT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ReviewRecordError(f"cannot open the review record {self.path}: {exc}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with _transaction(db):
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (RECORD_FORMAT,))
            found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.Error as exc:
            db.close()
            raise ReviewRecordError(f"{self.path} is not a review record SegStudio can read ({exc}): move it away "
                                    "or choose another folder") from None
        if found is None or found[0] != RECORD_FORMAT:
            db.close()
            raise ReviewRecordError(f"{self.path} is a review record of another format ({found[0] if found else '?'}):"
                                    " a newer SegStudio wrote it")
        return db

    # --- reading -------------------------------------------------------------------------------------------

    def get(self, split: str, file_name: str) -> ReviewEntry:
        """The image's review (unreviewed when nothing is recorded)."""
        if self._db is None:
            return UNREVIEWED
        row = self._query("SELECT status, tags, note, updated FROM review WHERE split = ? AND file_name = ?",
                          (split, file_name))
        return _entry(row[0]) if row else UNREVIEWED

    def entries(self, split: str | None = None) -> dict[tuple[str, str], ReviewEntry]:
        """Every recorded image (of one split, or all), ``{(split, file_name): entry}``."""
        if self._db is None:
            return {}
        where, params = ("WHERE split = ?", (split,)) if split is not None else ("", ())
        rows = self._query(f"SELECT split, file_name, status, tags, note, updated FROM review {where} "
                           "ORDER BY split, file_name", params)
        return {(row[0], row[1]): _entry(row[2:]) for row in rows}

    def progress(self, split: str, file_names: Iterable[str]) -> tuple[int, int]:
        """(reviewed, total) over these images of a split: what "312 of 2,000 reviewed" says."""
        names = list(file_names)
        recorded = self.entries(split)
        return sum(1 for name in names if recorded.get((split, name), UNREVIEWED).reviewed), len(names)

    def _query(self, sql: str, params: tuple) -> list[tuple]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise ReviewRecordError(f"cannot read the review record {self.path}: {exc}") from None

    # --- writing -------------------------------------------------------------------------------------------

    def update(self, split: str, file_name: str, *, status: str | None = None, tags: Iterable[str] | None = None,
               note: str | None = None) -> ReviewEntry:
        """Change what is given (the rest stays) in one transaction; returns the image's new review."""
        if status is not None:
            check_status(status)
        cleaned = clean_tags(tags) if tags is not None else None
        if self._db is None:
            self._db = self._open(create=True)
        try:
            with _transaction(self._db):  # read and write under one lock: a second process's change is kept
                row = self._db.execute("SELECT status, tags, note, updated FROM review WHERE split = ? AND "
                                       "file_name = ?", (split, file_name)).fetchone()
                old = _entry(row) if row else UNREVIEWED
                new = ReviewEntry(status if status is not None else old.status,
                                  cleaned if cleaned is not None else old.tags,
                                  note.strip() if note is not None else old.note,
                                  datetime.now(timezone.utc).isoformat(timespec="seconds"))
                self._db.execute("INSERT OR REPLACE INTO review VALUES (?, ?, ?, ?, ?, ?)",
                                 (split, file_name, new.status, json.dumps(sorted(new.tags)), new.note, new.updated))
        except sqlite3.Error as exc:
            raise ReviewRecordError(f"cannot write the review record {self.path}: {exc}") from None
        return new

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> ReviewRecord:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _transaction:
    """BEGIN IMMEDIATE (the write lock, waited for) ... COMMIT, or ROLLBACK on an exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, *_rest) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _entry(row: tuple) -> ReviewEntry:
    status, tags, note, updated = row
    try:
        names = json.loads(tags)
    except ValueError:
        names = []
    return ReviewEntry(status, frozenset(str(t) for t in names) if isinstance(names, list) else frozenset(),
                       str(note), str(updated))

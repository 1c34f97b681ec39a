"""The review report: every image of a dataset with its review status, tags, note and what its correction changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from segstudio.core.review.record import STATUSES, ReviewRecord, ReviewRecordError, tags_text

CSV_COLUMNS = ("split", "file_name", "status", "tags", "note", "changed_pixels", "reviewed_at")


@dataclass(frozen=True)
class ReviewRow:
    """One image: its review and the pixels its corrected mask changes (None: not corrected)."""

    split: str
    file_name: str
    status: str
    tags: str
    note: str
    changed_pixels: int | None
    reviewed_at: str

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in CSV_COLUMNS}


@dataclass
class ReviewReport:
    """``rows`` in dataset order, split by split; ``strays``: recorded or corrected images the dataset lacks."""

    rows: list[ReviewRow]
    strays: list[tuple[str, str]] = field(default_factory=list)

    def counts(self, split: str) -> dict[str, int]:
        """Images per status in a split, with "images" and "reviewed" totals."""
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.rows:
            if row.split == split:
                counts[row.status] += 1
        total = sum(counts.values())
        return {"images": total, "reviewed": total - counts["unreviewed"], **counts}

    def to_json_dict(self) -> dict:
        splits = list(dict.fromkeys(row.split for row in self.rows))
        return {"splits": {split: self.counts(split) for split in splits},
                "images": [{**row.as_dict(), "tags": row.tags.split(", ") if row.tags else []} for row in self.rows],
                "not_in_dataset": [{"split": split, "file_name": name} for split, name in self.strays]}


def changed_pixels(folder: Path) -> dict[tuple[str, str], int]:
    """What each corrected mask in the corrections folder changed, from the store's index."""
    from segstudio.core.review.corrections import CorrectionsError, CorrectionsStore

    try:
        return {(item.split, item.file_name): item.changed_pixels for item in CorrectionsStore(folder).items()}
    except CorrectionsError as exc:
        raise ReviewRecordError(str(exc)) from None


def review_report(folder: str | Path, file_names: Mapping[str, Sequence[str]]) -> ReviewReport:
    """The report of a corrections folder's review record and corrections over a dataset's images
    (``{split: file names}``); ReviewRecordError when the folder holds neither or belongs to another dataset."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReviewRecordError(f"{folder} is not a folder: give the corrections folder the review was kept in")
    with ReviewRecord(folder, create=False) as record:
        recorded = record.entries()
    changes = changed_pixels(folder)
    if not recorded and not changes:
        raise ReviewRecordError(f"{folder} holds no review record and no corrections: give the corrections folder "
                                "the review was kept in")
    known = {(split, name) for split, names in file_names.items() for name in names}
    strays = sorted((set(recorded) | set(changes)) - known)
    if strays and len(strays) == len(set(recorded) | set(changes)):
        raise ReviewRecordError(f"none of the images reviewed or corrected in {folder} is in this dataset: it holds "
                                "the review of another dataset (or another --split)")
    rows = []
    for split, names in file_names.items():
        for name in names:
            entry = recorded.get((split, name))
            rows.append(ReviewRow(split, name, entry.status if entry else "unreviewed",
                                  tags_text(entry.tags) if entry else "", entry.note if entry else "",
                                  changes.get((split, name)), entry.updated if entry else ""))
    return ReviewReport(rows, strays)

"""``segstudio review-report``: every image's review status, tags and note, and what its correction changed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

STATUS_WORDS = {"accepted": "accepted", "needs_fix": "needs fix", "fixed": "fixed"}


def add_review_report_parser(sub, add_dataset_options: Callable) -> argparse.ArgumentParser:
    """Register the ``review-report`` sub-command (``cli.build_parser`` calls this)."""
    parser = sub.add_parser("review-report", help="list each image's review status, tags, note and correction")
    add_dataset_options(parser)  # with --corrections: here the folder the review was kept in (its review.sqlite)
    parser.add_argument("--split", choices=["train", "validation", "test"], help="only this split (default: all)")
    parser.add_argument("--json", help="write the counts and every image as JSON")
    parser.add_argument("--csv", help="write every image as CSV")
    parser.set_defaults(handler=cmd_review_report)
    return parser


def summary_line(split: str, counts: dict[str, int], corrected: int) -> str:
    """``validation: 312 of 2,000 reviewed (accepted 300, needs fix 10, fixed 2); 12 corrected``."""
    parts = ", ".join(f"{word} {counts[status]:,}" for status, word in STATUS_WORDS.items() if counts[status])
    return (f"{split}: {counts['reviewed']:,} of {counts['images']:,} reviewed" + (f" ({parts})" if parts else "")
            + f"; {corrected:,} corrected")


def print_report(report) -> None:
    """Per split the progress line, then the images that were reviewed or corrected."""
    shown = [row for row in report.rows if row.status != "unreviewed" or row.changed_pixels is not None or row.note]
    if shown:
        print(f"{'split':<10}  {'status':<10}  {'changed px':>10}  image  [tags] note")
    for row in shown:
        changed = "" if row.changed_pixels is None else f"{row.changed_pixels:,}"
        extra = (f"  [{row.tags}]" if row.tags else "") + (f"  {row.note}" if row.note else "")
        print(f"{row.split:<10}  {row.status:<10}  {changed:>10}  {row.file_name}{extra}")
    for split in dict.fromkeys(row.split for row in report.rows):
        corrected = sum(1 for row in report.rows if row.split == split and row.changed_pixels is not None)
        print(summary_line(split, report.counts(split), corrected))


def report_csv_rows(report) -> list[list]:
    """The CSV's rows, header first; cells a spreadsheet would run as formulas behind a quote."""
    from segstudio.cli.label_issues import safe_cell
    from segstudio.core.review.report import CSV_COLUMNS

    rows: list[list] = [list(CSV_COLUMNS)]
    for row in report.rows:
        values = row.as_dict()
        rows.append([safe_cell("" if values[name] is None else values[name]) for name in CSV_COLUMNS])
    return rows


def cmd_review_report(args: argparse.Namespace) -> int:
    import csv
    import io

    from segstudio.cli.commands import EXIT_OK, UsageError, load_dataset_from_args
    from segstudio.core.export.folder import check_report_path, staged_report, write_report_json
    from segstudio.core.export.writers import atomic_write_text
    from segstudio.core.review.report import review_report

    if args.json and args.csv and Path(args.json).resolve() == Path(args.csv).resolve():
        raise UsageError(f"--json and --csv both name {args.json}: give them different files")
    if not args.corrections:
        raise UsageError("review-report needs --corrections DIR: the corrections folder the review was kept in")
    if not Path(args.corrections).is_dir():
        raise UsageError(f"{args.corrections} is not a folder: give the corrections folder the review was kept in")
    for report_path in (args.json, args.csv):
        if report_path:
            check_report_path(report_path)  # a file of yours in the way is refused before any work
    dataset = load_dataset_from_args(args, corrections=False)  # only its file names are needed
    if args.split is not None and args.split not in dataset.splits:
        raise UsageError(f"{dataset.source} has no {args.split} split (it has: {', '.join(dataset.splits)})")
    splits = [args.split] if args.split else list(dataset.splits)
    names = {split: [str(n) for n in dataset.splits[split]["file_name"]] for split in splits}
    report = review_report(args.corrections, names)
    print_report(report)
    if report.strays:
        print(f"segstudio: {len(report.strays)} reviewed or corrected image(s) are not in {dataset.source} "
              f"(first: {report.strays[0][0]}/{report.strays[0][1]}); --json lists them under not_in_dataset", file=sys.stderr)
    if args.json:
        write_report_json(args.json, {"dataset": dataset.source, "corrections": str(Path(args.corrections)),
                                      **report.to_json_dict()})
    if args.csv:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(report_csv_rows(report))
        with staged_report(args.csv) as target:
            atomic_write_text(target, buffer.getvalue())
    return EXIT_OK

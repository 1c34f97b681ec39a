"""``segstudio label-issues``: rank a split's images by how likely their masks hold label errors."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable
from pathlib import Path

from segstudio.cli.arguments import add_split_options, non_negative_int
from segstudio.cli.check import add_force_option

CSV_COLUMNS = ("rank", "file_name", "score", "suspected_pixels", "labelled_pixels", "top_pairs")
FORMULA_STARTS = ("=", "+", "-", "@")


def add_label_issues_parser(sub, add_dataset_options: Callable, add_device: Callable) -> argparse.ArgumentParser:
    """Register the ``label-issues`` sub-command (``cli.build_parser`` calls this)."""
    parser = sub.add_parser("label-issues", help="rank a split's images by suspected label errors")
    add_dataset_options(parser)
    parser.add_argument("--model", required=True, help="demo, a local folder, or a Hub id")
    add_split_options(parser, "scan")
    parser.add_argument("--top", type=non_negative_int, default=20, help="images printed (default 20; the files hold all)")
    parser.add_argument("--json", help="write thresholds and every ranked image as JSON")
    parser.add_argument("--csv", help="write every ranked image as CSV")
    add_device(parser)
    add_force_option(parser)
    parser.set_defaults(handler=cmd_label_issues)
    return parser


def _pairs_text(image, label_map) -> str:
    name = label_map.name
    return "; ".join(f"labelled {name(k)}, model says {name(j)}: {n} px" for k, j, n in image.pairs)


def print_ranking(report, label_map, top: int) -> None:
    """The ranked table: image, score, suspected pixels, the class pairs behind them."""
    print(f"{'rank':>4}  {'score':>7}  {'suspected':>9}  image")
    for rank, image in enumerate(report.images[:top], start=1):
        print(f"{rank:>4}  {image.score:7.4f}  {image.suspected:>9}  {image.file_name}")
        if image.pairs:
            print(f"{'':>26}{_pairs_text(image, label_map)}")
    flagged = sum(1 for image in report.images if image.suspected)
    print(f"{flagged} of {len(report.images)} images have suspected label errors")


def safe_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run as a formula (a leading ' before = + - @)."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def ranking_csv(report, label_map) -> str:
    """The ranked images as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rank, image in enumerate(report.images, start=1):
        row = (rank, image.file_name, f"{image.score:.6f}", image.suspected, image.labelled,
               _pairs_text(image, label_map))
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()


def cmd_label_issues(args: argparse.Namespace) -> int:
    from segstudio.cli.commands import (
        EXIT_CANCELLED,
        EXIT_OK,
        EXIT_PARTIAL,
        UsageError,
        _check_model_spec,
        corrections_record,
        open_split_and_model,
        run_on_shards,
    )

    _check_model_spec(args.model)
    from segstudio.core.export import atomic_write_text, check_report_path, staged_report, write_report_json

    if args.json and args.csv and Path(args.json).resolve() == Path(args.csv).resolve():
        raise UsageError(f"--json and --csv both name {args.json}: give them different files")
    for report_path in (args.json, args.csv):
        if report_path:
            check_report_path(report_path)  # a file of yours in the way is refused before any work
    from segstudio.core.evaluation.distributed import current_group, merge_evaluations
    from segstudio.core.review import collect_split, file_names, merge_collectors

    dataset, _loaded, predictor = open_split_and_model(args, "look for label issues")
    group = current_group()
    parts = run_on_shards(args, dataset, group, "scoring labels", "label-issue scan",
                          lambda cancel, tick, shard: collect_split(
        dataset, args.split, predictor, limit=args.limit, cancel=cancel, on_image=tick, shard=shard))
    if parts is None:
        return EXIT_CANCELLED
    if not group.ranks.is_main:
        return group.finish(EXIT_OK)  # rank 0 reports and writes
    result = merge_evaluations([evaluation for evaluation, _collector in parts])
    report = merge_collectors([collector for _evaluation, collector in parts]).report(file_names(result))
    if not report.images and not result.skipped:
        raise UsageError(f"the {args.split} split has no ground truth: there are no labels to check")
    print_ranking(report, dataset.label_map, args.top)
    if args.json:
        document = {"dataset": dataset.source, "split": args.split, "model": args.model,
                    "corrections": corrections_record(dataset),
                    **report.to_json_dict(dataset.label_map)}
        write_report_json(args.json, document)
    if args.csv:
        with staged_report(args.csv) as target:
            atomic_write_text(target, ranking_csv(report, dataset.label_map))
    for name, reason in result.skipped:
        print(f"segstudio: skipped {name}: {reason}", file=sys.stderr)
    return group.finish(EXIT_PARTIAL if result.skipped else EXIT_OK)

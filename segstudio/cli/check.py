"""``segstudio check``: the label-convention guard from the command line (exit 0 clean, 1 errors found, 2 usage),
and the same guard run before ``evaluate``, ``train`` and ``compare`` (refused with exit 2 unless ``--force``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from segstudio.cli.arguments import positive_int

EXIT_OK, EXIT_FOUND = 0, 1


def add_check_parser(sub, add_dataset_options: Callable) -> argparse.ArgumentParser:
    """Register the ``check`` sub-command (``cli.build_parser`` calls this)."""
    parser = sub.add_parser("check", help="check that a dataset's labels and a model's head agree")
    add_dataset_options(parser)
    parser.add_argument("--model", required=True, help="demo, scratch, a local folder, or a Hub id")
    parser.add_argument("--split", choices=["train", "validation", "test"],
                        help="scan only this split (default: every split)")
    parser.add_argument("--sample", type=positive_int, default=200, help="masks scanned per split, spread evenly (200)")
    parser.add_argument("--json", help="also write the findings as JSON")
    parser.set_defaults(handler=cmd_check)
    return parser


def add_force_option(parser: argparse.ArgumentParser) -> None:
    """``--force``: run although the label check found errors (``train``, ``evaluate``, ``compare``)."""
    parser.add_argument("--force", action="store_true",
                        help="run even when the label check finds errors (the numbers may be wrong)")


def refuse_unless_forced(args: argparse.Namespace, dataset, models: list, splits: list[str], action: str) -> None:
    """Raise :class:`LabelConventionError` (exit 2) when the guard finds errors, unless ``--force`` was given;
    with ``--force`` each error is printed as a warning and the run goes on."""
    from segstudio.core.data import LabelConventionError, blocking_errors, refusal_message

    errors = blocking_errors(dataset, models, splits)
    if not errors:
        return
    if getattr(args, "force", False):
        for finding in errors:
            print(f"segstudio: warning: label check (ignored, --force): {finding.message}", file=sys.stderr)
        return
    raise LabelConventionError(refusal_message(errors, action))


def print_report(report) -> None:
    """Findings (errors first) with their fixes, then a one-line total."""
    print(f"segstudio check: dataset {report.dataset}, model {report.model}")
    for finding in report.findings:
        print(f"{finding.severity}: {finding.message}")
        if finding.fix:
            print(f"  fix: {finding.fix}")
    errors, warnings = len(report.errors), len(report.warnings)
    print(f"{errors} error(s), {warnings} warning(s)" if errors or warnings else "no problems found")


def cmd_check(args: argparse.Namespace) -> int:
    from segstudio.cli.commands import UsageError, corrections_record, load_dataset_from_args
    from segstudio.core.data import check_labels
    from segstudio.core.export import check_report_path, write_report_json
    from segstudio.core.model import load_model

    if args.json:
        check_report_path(args.json)  # a file of yours in the way is refused before any work
    dataset = load_dataset_from_args(args)
    if args.split is not None and args.split not in dataset.splits:
        raise UsageError(f"{dataset.source} has no {args.split} split (it has: {', '.join(dataset.splits)})")
    if args.model == "scratch":  # a new head sized for the dataset, as train builds it
        loaded = load_model("scratch", label_map=dataset.label_map, reduce_labels=dataset.convention.reduce_labels)
    else:
        loaded = load_model(args.model)
    report = check_labels(dataset, loaded, [args.split] if args.split else None, args.sample)
    print_report(report)
    if args.json:
        write_report_json(args.json, {**report.to_json_dict(), "corrections": corrections_record(dataset)})
    if report.errors:
        print(f"segstudio: {len(report.errors)} label-convention error(s) found", file=sys.stderr)
        return EXIT_FOUND
    return EXIT_OK

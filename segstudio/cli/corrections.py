"""``segstudio apply-corrections``: a corrected copy of a dataset in the ADE20K layout (the original untouched)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_apply_corrections_parser(sub, add_dataset_options: Callable) -> argparse.ArgumentParser:
    """Register the ``apply-corrections`` sub-command (``cli.build_parser`` calls this)."""
    parser = sub.add_parser("apply-corrections",
                            help="write the dataset with its corrected masks to a new folder (ADE20K layout)")
    add_dataset_options(parser)
    parser.add_argument("--output", required=True, help="new or empty folder for the corrected copy")
    parser.set_defaults(handler=cmd_apply_corrections)
    return parser


def cmd_apply_corrections(args: argparse.Namespace) -> int:
    from segstudio.cli.commands import EXIT_OK, UsageError, load_dataset_from_args
    from segstudio.core.review import write_corrected_copy

    if not args.corrections:
        raise UsageError("apply-corrections needs --corrections DIR (the folder the window saved corrections to)")
    dataset = load_dataset_from_args(args, corrections=False)  # as it is: corrected on the way out
    corrected = write_corrected_copy(dataset, args.corrections, args.output)
    print(f"wrote {args.output}: {sum(corrected.sizes().values())} images, {corrected.corrections.items} "
          f"corrected mask(s) from {corrected.corrections.folder} (sha256 {corrected.corrections.sha256[:12]})")
    return EXIT_OK

"""``segstudio info``: what a checkpoint folder holds and how it was trained, read from its JSON files (no torch)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_info_parser(sub) -> argparse.ArgumentParser:
    """Register the ``info`` sub-command (``cli.build_parser`` calls this)."""
    parser = sub.add_parser("info", help="a checkpoint's classes, label convention and training options")
    parser.add_argument("--model", required=True, help="demo or a local checkpoint folder")
    parser.add_argument("--json", action="store_true", help="print it as one JSON document")
    parser.set_defaults(handler=cmd_info)
    return parser


def checkpoint_info(spec: str) -> dict:
    """The folder, architecture, class count, label convention and training options (None if not recorded)."""
    from segstudio.cli.commands import UsageError
    from segstudio.core.model import check_config, locate_model, processor_dict, read_json_object
    from segstudio.core.training import OPTIONS_FILE, read_options_file

    folder = Path(locate_model(spec))
    if not folder.is_dir():
        raise UsageError(f"info reads a local checkpoint folder; download {spec} first (or give its folder)")
    config = read_json_object(folder / "config.json", spec)
    check_config(config, spec)
    processor_file = folder / "preprocessor_config.json"
    processor = processor_dict(read_json_object(processor_file, spec), spec) if processor_file.is_file() else {}
    options_file = folder / OPTIONS_FILE
    return {
        "model": str(folder),
        "architecture": (config.get("architectures") or ["?"])[0],
        "num_labels": len(config.get("id2label") or {}) or config.get("num_labels"),
        "reduce_labels": bool(processor.get("do_reduce_labels", False)),
        "ignore_index": config.get("semantic_loss_ignore_index", 255),
        "training_options": read_options_file(options_file) if options_file.is_file() else None,
    }


def cmd_info(args: argparse.Namespace) -> int:
    from segstudio.core.training import OPTIONS_FILE, describe_options

    info = checkpoint_info(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"model {info['model']}: {info['architecture']}, {info['num_labels']} classes, "
          f"reduce_labels {str(info['reduce_labels']).lower()}, ignore index {info['ignore_index']}")
    options = info["training_options"]
    if options is None:
        print(f"no {OPTIONS_FILE}: not saved by segstudio train, so how it was trained is not recorded")
        return 0
    print(f"trained with (segstudio train --config {Path(info['model']) / OPTIONS_FILE} repeats it):")
    for line in describe_options(options):
        print(f"  {line}")
    return 0

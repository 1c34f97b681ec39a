"""``segstudio compare``: two checkpoints on the same split, per-class IoU change and the images B fixed or broke."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from segstudio.cli.arguments import add_split_options
from segstudio.cli.check import add_force_option, refuse_unless_forced

TOP_IMAGES = 5


def add_compare_parser(sub, add_dataset_options: Callable, add_device: Callable) -> argparse.ArgumentParser:
    """Register the ``compare`` sub-command (``cli.build_parser`` calls this)."""
    parser = sub.add_parser("compare", help="compare two checkpoints (A, then B) on a dataset split")
    add_dataset_options(parser)
    parser.add_argument("--model", action="append", required=True, metavar="MODEL",
                        help="give it twice: --model A --model B (demo, scratch, a folder, or a Hub id)")
    add_split_options(parser, "compare")
    parser.add_argument("--json", help="write per-class A/B/delta IoU and per-image flips as JSON")
    add_device(parser)
    add_force_option(parser)
    parser.set_defaults(handler=cmd_compare)
    return parser


def _fmt(value: float, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "   n/a"
    return f"{value:+7.4f}" if signed else f"{value:6.4f}"


def print_comparison(comparison, label_map) -> None:
    """Totals, the per-class table (largest gain first), then the most improved and regressed images."""
    from segstudio.core.evaluation import by_delta

    a, b = comparison.a.metrics["mean_iou"], comparison.b.metrics["mean_iou"]
    print(f"images compared: {len(comparison.images)}   skipped: {len(comparison.skipped)}")
    print(f"mean IoU  A {_fmt(a)}   B {_fmt(b)}   change {_fmt(comparison.mean_iou_delta, True)}")
    print(f"{'id':>4}  {'class':<24} {'IoU A':>6} {'IoU B':>6} {'change':>7}")
    present = {r.class_id for r in (*comparison.a.class_rows(), *comparison.b.class_rows())
               if r.gt_pixels or r.pred_pixels}
    for change in by_delta(comparison.classes):
        if change.class_id in present:
            name = str(label_map.name(change.class_id)).strip()[:24]
            print(f"{change.class_id:>4}  {name:<24} {_fmt(change.iou_a)} {_fmt(change.iou_b)} "
                  f"{_fmt(change.delta, True)}")
    for title, images in (("most improved by B", comparison.most_improved(TOP_IMAGES)),
                          ("most regressed by B", comparison.most_regressed(TOP_IMAGES))):
        print(f"{title}:" + ("" if images else " none"))
        for image in images:
            print(f"  {image.file_name}: fixed {image.fixed} px, broken {image.broken} px, net {image.net:+d}")


def _load(spec: str, dataset):
    from segstudio.cli.commands import UsageError, _print_report
    from segstudio.core.model import load_model

    loaded = load_model(spec)
    _print_report(loaded)
    if loaded.label_map.num_labels != dataset.label_map.num_labels:
        raise UsageError(f"model {spec} predicts {loaded.label_map.num_labels} classes but the dataset has "
                         f"{dataset.label_map.num_labels}")
    return loaded


def cmd_compare(args: argparse.Namespace) -> int:
    from segstudio.cli.commands import (
        EXIT_CANCELLED,
        EXIT_OK,
        EXIT_PARTIAL,
        UsageError,
        corrections_record,
        load_dataset_from_args,
        run_on_shards,
    )
    from segstudio.core.evaluation import compare_split
    from segstudio.core.evaluation.distributed import current_group, merge_comparisons
    from segstudio.core.export import check_report_path, write_report_json
    from segstudio.core.inference import Predictor

    if len(args.model) != 2:
        raise UsageError(f"compare needs exactly two models (--model A --model B), got {len(args.model)}")
    if args.json:
        check_report_path(args.json)  # a file of yours in the way is refused before any work
    dataset = load_dataset_from_args(args)
    if args.split not in dataset.splits:
        raise UsageError(f"{dataset.source} has no {args.split} split (it has: {', '.join(dataset.splits)})")
    models = [_load(spec, dataset) for spec in args.model]
    refuse_unless_forced(args, dataset, models, [args.split], "compare")
    predictors = [Predictor(loaded, device=args.device, batch_size=args.batch_size) for loaded in models]
    group = current_group()
    parts = run_on_shards(args, dataset, group, "comparing", "comparison",
                          lambda cancel, tick, shard: compare_split(
        dataset, args.split, *predictors, limit=args.limit, cancel=cancel, on_image=tick, shard=shard), passes=2)
    if parts is None:
        return EXIT_CANCELLED
    if not group.ranks.is_main:
        return group.finish(EXIT_OK)  # rank 0 reports and writes
    comparison = merge_comparisons(parts)
    if not comparison.skipped and not any(image.confusion is not None for image in comparison.a.images):
        raise UsageError(f"the {args.split} split has no ground truth: there is nothing to compare against")
    print_comparison(comparison, dataset.label_map)
    if args.json:
        document = {"dataset": dataset.source, "corrections": corrections_record(dataset),
                    **comparison.to_json_dict(dataset.label_map, args.model[0], args.model[1])}
        write_report_json(args.json, document)
    skipped = comparison.skipped
    for name, reason in skipped.items():
        print(f"segstudio: skipped {name}: {reason}", file=sys.stderr)
    return group.finish(EXIT_PARTIAL if skipped else EXIT_OK)

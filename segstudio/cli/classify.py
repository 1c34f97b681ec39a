"""``segstudio classify``: the top-k classes of a classification checkpoint (such as nvidia/mit-b0) per image."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from segstudio.cli.arguments import positive_int

BATCH_SIZE = 8
DEFAULT_TOP_K = 5


def add_classify_parser(sub, add_device: Callable) -> argparse.ArgumentParser:
    """Register the ``classify`` sub-command (``cli.build_parser`` calls this)."""
    parser = sub.add_parser("classify", help="top-k classes of images with a classification checkpoint")
    parser.add_argument("--model", required=True,
                        help="a checkpoint with a classification head: a local folder or a Hub id (nvidia/mit-b0)")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or folders (searched recursively)")
    parser.add_argument("--top-k", type=positive_int, default=DEFAULT_TOP_K, help=f"classes per image ({DEFAULT_TOP_K})")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    add_device(parser)
    parser.set_defaults(handler=cmd_classify)
    return parser


def _print_scores(name: str, scores) -> None:
    print(name)
    for rank, score in enumerate(scores, start=1):
        print(f"  {rank}. {100 * score.probability:5.1f}%  {score.label} ({score.class_id})")


def cmd_classify(args: argparse.Namespace) -> int:
    from segstudio.cli.commands import EXIT_OK, EXIT_PARTIAL, UsageError, _out_of_memory_is_a_user_error

    missing = [p for p in args.inputs if not Path(p).exists()]
    if missing:  # before any model loads
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    failures = _out_of_memory_is_a_user_error(_classify)(args)
    return EXIT_PARTIAL if failures else EXIT_OK


def _classify(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Classify every image under the inputs, print the results, and return the (image, reason) failures."""
    from segstudio.cli.commands import UsageError
    from segstudio.core.data import ImageReadError, find_images, read_image
    from segstudio.core.inference import load_classifier

    found = find_images(args.inputs)
    if not found:
        raise UsageError(f"no images found in {', '.join(args.inputs)}")
    classifier = load_classifier(args.model, args.device)
    print(f"model {args.model}: {classifier.architecture}, {len(classifier.id2label)} classes, "
          f"on {classifier.device}", file=sys.stderr)
    results, failures = [], []
    for start in range(0, len(found), BATCH_SIZE):
        names, images = [], []
        for path, _relative in found[start:start + BATCH_SIZE]:
            try:
                images.append(read_image(path))
                names.append(str(path))
            except ImageReadError as exc:
                failures.append((str(path), str(exc)))
        for name, scores in zip(names, classifier.top_k(images, args.top_k), strict=True):
            results.append((name, scores))
            if not args.json:
                _print_scores(name, scores)
    if args.json:
        print(json.dumps({
            "model": args.model, "architecture": classifier.architecture, "top_k": args.top_k,
            "images": [{"path": name, "classes": [s.to_json_dict() for s in scores]} for name, scores in results],
            "skipped": [{"path": name, "reason": reason} for name, reason in failures],
        }, indent=2))
    for _path, reason in failures:
        print(f"segstudio: skipped {reason}", file=sys.stderr)
    return failures

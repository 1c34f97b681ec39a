"""The command line: the same core as the GUI, headless.

Exit status: 0 success, 1 some items failed (each named on stderr), 2 usage or input errors (one line, no
traceback), 130 cancelled, 143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from segstudio import __version__
from segstudio.cli.arguments import add_split_options, add_training_option, positive_int
from segstudio.cli.check import add_force_option
from segstudio.core.training.options import AUGMENTATIONS, DEVICES, REPORT_TO, SCHEDULERS
from segstudio.process_setup import freeze_loaded_objects, set_up_command_line

EXIT_USAGE, EXIT_CANCELLED, EXIT_TERMINATED = 2, 130, 128 + signal.SIGTERM


def _add_dataset_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_argument_group("dataset")
    group.add_argument("--dataset", required=required, help="demo, a local folder, or a Hub dataset id")
    group.add_argument("--dataset-config", help="Hub dataset configuration")
    group.add_argument("--revision", help="Hub dataset revision")
    group.add_argument("--image-column", help="column holding the images")
    group.add_argument("--mask-column", help="column holding the masks")
    reduce = group.add_mutually_exclusive_group()
    reduce.add_argument("--reduce-labels", dest="reduce_labels", action="store_true", default=None,
                        help="dataset id 0 is 'other' (ignored); id k+1 is class k (ADE20K)")
    reduce.add_argument("--no-reduce-labels", dest="reduce_labels", action="store_false",
                        help="dataset id k is class k")
    group.add_argument("--ignore-index", type=int, default=255, help="mask value that is ignored (255)")
    group.add_argument("--label-map", help="JSON file with id2label (and palette)")
    group.add_argument("--corrections", metavar="DIR",
                       help="corrections folder (the window's): its masks replace the originals they correct")


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (what is wrong, where to read more), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"segstudio: error: {message} (see {self.prog} --help)\n")


def _folder(text: str) -> str:
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder: choose a folder for the checkpoints")
    return text


def _add_train_parser(sub) -> None:
    """``train``: options left out are None, so a config file or a resumed run can give them."""
    train = sub.add_parser("train", help="fine-tune a model",
                           epilog="Each training option also takes TrainingArguments' spelling "
                                  "(--gradient_accumulation_steps), as run_semantic_segmentation.py does.")
    _add_dataset_options(train)
    train.add_argument("--model", help="demo, scratch, a local folder, or a Hub id (not needed with --resume)")
    train.add_argument("--output", required=True, type=_folder,
                       help="folder for checkpoints: new or empty, or the run to continue with --resume")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --output from its newest complete checkpoint (options left out "
                            "are those the run was started with)")
    train.add_argument("--config", metavar="FILE",
                       help="training options from a JSON or YAML file (a checkpoint's training_options.json "
                            "repeats its run); options given here win over the file's")
    length = train.add_mutually_exclusive_group()
    add_training_option(length, "max_steps", metavar="N")
    add_training_option(length, "epochs", "--num-train-epochs", "--num_train_epochs", metavar="X",
                        help="(default 3; also --num-train-epochs)")
    options = {
        "batch_size": ("N", "per device (default 8; also --per-device-train-batch-size)"),
        "learning_rate": ("X", "(default 6e-5)"),
        "image_size": ("N", "training size in pixels (default: the model's)"),
        "eval_steps": ("N", "evaluate every N steps (default: 4 times a run / per epoch)"),
        "eval_limit": ("N", "evaluate on at most N validation images"),
        "save_steps": ("N", "save a checkpoint every N steps (default: as --eval-steps)"),
        "save_total_limit": ("N", "checkpoints of this run kept (default 3)"),
        "logging_steps": ("N", "log the loss every N steps (default 10)"),
        "seed": ("N", "seeds the new head's weights, augmentation and order (default 0)"),
        "gradient_accumulation_steps": ("N", "batches per optimizer step (default 1)"),
        "warmup_steps": ("N", "linear warm-up: N steps, or a fraction of the run below 1 (default 0)"),
        "lr_scheduler_type": (None, "learning-rate schedule (default linear)"),
        "weight_decay": ("X", "AdamW weight decay (default 0.01)"),
        "report_to": (None, "also log to TensorBoard, in OUTPUT/runs (needs the tensorboard extra)"),
        "dataloader_num_workers": ("N", "processes that read and augment images (default 0: the main one)"),
        "augmentation": (None, "training images: none, flip, flip-crop (flip and random scale crop, the default) "
                               "or flip-crop-color (also brightness, contrast, saturation)"),
        "device": (None, "(default auto)"),
    }
    for name, (metavar, text) in options.items():
        aliases = ("--per-device-train-batch-size", "--per_device_train_batch_size") if name == "batch_size" else ()
        choices = {"lr_scheduler_type": SCHEDULERS, "report_to": REPORT_TO, "augmentation": AUGMENTATIONS,
                   "device": DEVICES}.get(name)
        add_training_option(train, name, *aliases, help=text, metavar=metavar or "{" + ",".join(choices or ()) + "}")
    train.add_argument("--no-mixed-precision", dest="mixed_precision", action="store_const", const=False)
    add_force_option(train)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="segstudio", description="Fine-tune and review SegFormer models.")
    parser.add_argument("--version", action="version", version=f"segstudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo-data", help="write the built-in demo as an ADE20K-layout folder")
    demo.add_argument("output", help="folder to create")

    _add_train_parser(sub)

    ev = sub.add_parser("evaluate", help="score a model on a dataset split")
    _add_dataset_options(ev)
    ev.add_argument("--model", required=True)
    add_split_options(ev, "score")
    ev.add_argument("--json", help="write metrics, per class, per image and per scene as JSON")
    ev.add_argument("--csv", help="write per-class metrics as CSV")
    ev.add_argument("--cross-check", action="store_true",
                    help="also run evaluate's mean_iou (needs it cached or the Hub) and report the difference "
                         "(with --reduce-labels and an --ignore-index other than 255 it gets SegStudio's reduced "
                         "labels: evaluate's reduction turns label 0 into 255)")
    _add_device(ev)
    add_force_option(ev)

    pr = sub.add_parser("predict", help="predict masks for images or folders")
    pr.add_argument("--model", required=True)
    pr.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    pr.add_argument("--output", required=True)
    pr.add_argument("--format", action="append", choices=["index", "color", "overlay"],
                    help="may repeat (default: index)")
    pr.add_argument("--batch-size", type=positive_int, default=8)
    pr.add_argument("--ignore-index", type=int,
                    help="ignore index recorded with the masks, outside the model's class ids (255; a model of "
                         "more than 255 classes needs another, e.g. 65535)")
    _add_device(pr)

    from segstudio.cli.compare import add_compare_parser

    add_compare_parser(sub, _add_dataset_options, _add_device)

    from segstudio.cli.check import add_check_parser

    add_check_parser(sub, _add_dataset_options)

    from segstudio.cli.classify import add_classify_parser

    add_classify_parser(sub, _add_device)

    from segstudio.cli.label_issues import add_label_issues_parser

    add_label_issues_parser(sub, _add_dataset_options, _add_device)

    from segstudio.cli.corrections import add_apply_corrections_parser

    add_apply_corrections_parser(sub, _add_dataset_options)

    from segstudio.cli.info import add_info_parser

    add_info_parser(sub)

    from segstudio.cli.review_report import add_review_report_parser

    add_review_report_parser(sub, _add_dataset_options)
    return parser


def _quiet_libraries() -> None:
    """Keep library chatter (progress bars, advisory warnings) off the terminal."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("transformers").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        from segstudio.gui.app import run_app

        return run_app([sys.argv[0]])  # which keeps freed memory itself
    set_up_command_line()
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return EXIT_USAGE
    _quiet_libraries()
    from segstudio.cli.commands import (
        COMMANDS,
        SEVERAL_PROCESSES,
        _out_of_memory_is_a_user_error,
        on_every_process,
        user_errors,
    )

    previous = _stop_on_sigterm()
    try:  # sub-commands in their own modules set a handler
        handler = COMMANDS.get(args.command) or _out_of_memory_is_a_user_error(
            on_every_process(args.handler) if args.command in SEVERAL_PROCESSES else args.handler)
        return handler(args)
    except KeyboardInterrupt:
        print("segstudio: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except Terminated:
        print("segstudio: stopped (SIGTERM); nothing half-written was left", file=sys.stderr)
        return EXIT_TERMINATED
    except user_errors() as exc:
        print(f"segstudio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(BaseException):
    """SIGTERM (``kill``, a scheduler stopping the job) raised where the command was, so that staged exports and
    checkpoints are removed on the way out, as for Ctrl+C."""


def _terminated(signum, frame) -> None:
    raise Terminated


def _stop_on_sigterm():
    """Turn SIGTERM into :class:`Terminated` for the command's duration (main thread only); the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _terminated)


def entry_point() -> int:
    """The ``segstudio`` command and ``python -m segstudio``: :func:`main`, then a quick exit.

    The interpreter's last collections over every object torch and transformers created took ~0.9 s per process;
    once the work is done and its files are closed, ``gc.freeze`` spares them (frozen objects are freed, never
    collected). Only here, where the process ends next: an embedding process calling :func:`main` keeps its GC.
    """
    try:
        return main()
    finally:
        freeze_loaded_objects()

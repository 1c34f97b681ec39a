"""argparse pieces the commands share: types for numbers (a bad value is a usage error: one line, exit status 2),
train's options (checked as a config file's are), and the options of a command that scores a split."""

from __future__ import annotations

import argparse
import math

from segstudio.core.training.options import OptionError, check_option


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """A count of at least 1 (``--limit``, ``--batch-size``, ``--max-steps``...)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """A count that may be 0 (``--top 0`` prints no rows)."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_number(text: str) -> float:
    """A finite number above 0 (``--epochs``, ``--learning-rate``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: 0 to 2**32 - 1, what NumPy's seeding takes."""
    value = _whole_number(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**32 - 1, got {value}")
    return value


def training_option(name: str):
    """An argparse type that checks a training option as a config file's value is checked."""

    def parse(text: str):
        try:
            return check_option(name, text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{name} ")) from None

    return parse


def add_training_option(parser, name: str, *aliases: str, **kwargs) -> None:
    """``--batch-size``, and hidden, ``--batch_size`` and ``aliases``: HfArgumentParser takes both spellings, so
    run_semantic_segmentation.py users can type either (errors and --help name the first)."""
    flag = f"--{name.replace('_', '-')}"
    parser.add_argument(flag, dest=name, type=training_option(name), **kwargs)
    for alias in dict.fromkeys((f"--{name}", *aliases)):
        if alias != flag:
            parser.add_argument(alias, dest=name, type=training_option(name), help=argparse.SUPPRESS)


def add_split_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--split`` (validation by default), ``--limit N`` (``verb`` says what is done to the N first images) and
    ``--batch-size N``."""
    parser.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    parser.add_argument("--limit", type=positive_int, help=f"{verb} only the first N images")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per forward pass (8)")

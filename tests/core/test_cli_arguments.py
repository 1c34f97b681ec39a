"""Every number flag of every command is checked by its argparse type: a bad value is one line and exit status 2."""

from __future__ import annotations

import argparse

import pytest

from segstudio.cli import arguments
from segstudio.cli.entry import build_parser, main

COUNTS = (arguments.positive_int, arguments.positive_number)
CHECKED = (*COUNTS, arguments.non_negative_int, arguments.seed)
ANY_INTEGER = {"--ignore-index"}  # a mask value: 0, 255 or 65535 are all fine


def _flags() -> list[tuple[str, str, argparse.Action]]:
    """(command, flag, action) of every option of every sub-command."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    return [(name, action.option_strings[0], action)
            for name, sub in commands.items() for action in sub._actions if action.option_strings]


def _number_flags(types) -> list[tuple[str, str]]:
    return [(command, flag) for command, flag, action in _flags() if action.type in types]


def _refusal(capsys, argv: list[str]) -> str:
    """The one line ``main`` writes when it refuses ``argv`` as a usage error."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    return lines[0]


def test_number_flags_use_a_checking_type() -> None:
    """A new ``type=int`` count would take 0 and -1: count flags use ``segstudio.cli.arguments``'s types."""
    plain = {(command, flag) for command, flag, action in _flags() if action.type in (int, float)}
    assert {flag for _command, flag in plain} <= ANY_INTEGER, plain
    counts = _number_flags(COUNTS)
    for found in [("evaluate", "--limit"), ("predict", "--batch-size"), ("compare", "--limit"),
                  ("label-issues", "--batch-size"), ("classify", "--top-k"), ("check", "--sample")]:
        assert found in counts


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5e", "nan"])
@pytest.mark.parametrize("command, flag", _number_flags(COUNTS))
def test_every_count_flag_refuses_what_is_not_a_count(capsys, command, flag, value) -> None:
    # The value is checked as it is read, before the missing required options are.
    line = _refusal(capsys, [command, flag, value])
    assert line.startswith(f"segstudio: error: argument {flag}: ") and line.endswith(f"(see segstudio {command} --help)")
    assert "must be at least 1" in line or "positive number" in line or "expected a" in line


@pytest.mark.parametrize("command, flag", _number_flags(CHECKED + (int, float)))
def test_every_number_flag_refuses_a_word(capsys, command, flag) -> None:
    assert _refusal(capsys, [command, flag, "x"]).startswith(f"segstudio: error: argument {flag}: ")


@pytest.mark.parametrize("kind, good, bad", [
    (arguments.positive_int, {"1": 1, "8": 8, " 3 ": 3}, ["0", "-1", "2.0", "", "x"]),
    (arguments.positive_number, {"1e-5": 1e-5, "3": 3.0, "0.5": 0.5}, ["0", "-0.1", "nan", "inf", "-inf", "x"]),
    (arguments.non_negative_int, {"0": 0, "20": 20}, ["-1", "1.5", "x"]),
    (arguments.seed, {"0": 0, str(2**32 - 1): 2**32 - 1}, ["-1", str(2**32), "x"]),
])
def test_types_take_what_they_should(kind, good, bad) -> None:
    for text, value in good.items():
        assert kind(text) == value and type(kind(text)) is type(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            kind(text)


def test_top_may_be_zero_and_flags_read_their_numbers() -> None:
    args = build_parser().parse_args(
        ["label-issues", "--dataset", "demo", "--model", "demo", "--top", "0", "--limit", "4", "--batch-size", "2"])
    assert (args.top, args.limit, args.batch_size) == (0, 4, 2)
    args = build_parser().parse_args(["classify", "--model", "demo", "a.png", "--top-k", "3"])
    assert args.top_k == 3

"""Training options by name: each one's check, the config file (JSON or YAML) that repeats a run, and the
``training_options.json`` every saved checkpoint carries. No torch, no transformers: the CLI checks a config file
before anything heavy loads.

Names are ``TrainSettings`` fields, the same as ``TrainingArguments``' where one exists
(``gradient_accumulation_steps``, ``warmup_steps``, ``lr_scheduler_type``, ``weight_decay``, ``report_to``,
``dataloader_num_workers``, ``seed``); a file may also use ``TrainingArguments``' ``per_device_train_batch_size``
and ``num_train_epochs``, and transformers 4's ``warmup_ratio``.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segstudio.core.errors import SegStudioError
from segstudio.core.model.checkpoint_files import MAX_IMAGE_SIZE

OPTIONS_FILE = "training_options.json"
DEVICES = ("auto", "cpu", "cuda", "mps")
AUGMENTATIONS = ("none", "flip", "flip-crop", "flip-crop-color")
# TrainingArguments' schedulers that need no lr_scheduler_kwargs
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt")
REPORT_TO = ("none", "tensorboard")
ALIASES = {"per_device_train_batch_size": "batch_size", "num_train_epochs": "epochs", "warmup_ratio": "warmup_steps"}
TENSORBOARD_EXTRA = "pip install 'segstudio[tensorboard]' (or pip install tensorboard)"


class OptionError(SegStudioError, ValueError):
    """An option value or a config file a person can fix (one line)."""


# The largest count an option takes (steps, images, batches...): beyond it Python's slicing and torch's int32
# counters fail with a traceback; a real run is far below it.
MAX_COUNT = 2**31 - 1


def _whole(minimum: int, maximum: int = MAX_COUNT) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number = value
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                raise ValueError(f"expected a whole number, got {value!r}") from None
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        if number < minimum:
            raise ValueError(f"must be at least {minimum}, got {number}")
        if number > maximum:
            raise ValueError(f"must be at most {maximum}, got {number}")
        return number

    return check


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None


def _positive(value: Any) -> float:
    number = _number(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"must be a positive number, got {value!r}")
    return number


def _at_most(maximum: float, check: Callable[[Any], float]) -> Callable[[Any], float]:
    def bounded(value: Any) -> float:
        number = check(value)
        if number > maximum:
            raise ValueError(f"must be at most {maximum}, got {value!r}")
        return number

    return bounded


def _not_negative(value: Any) -> float:
    number = _number(value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"must be a number of 0 or more, got {value!r}")
    return number


def _warmup(value: Any) -> int | float:
    """As TrainingArguments reads ``warmup_steps``: a whole number of steps, or a fraction of the run below 1."""
    number = _not_negative(value)
    if number < 1:
        return number
    if not number.is_integer():
        raise ValueError(f"expected a whole number of steps or a fraction below 1, got {value!r}")
    return int(number)


def _seed(value: Any) -> int:
    number = _whole(-(2**63), 2**63)(value)
    if not 0 <= number < 2**32:
        raise ValueError(f"must be between 0 and 2**32 - 1, got {number}")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        return None if value is None else check(value)

    return optional


# Every option (a TrainSettings field but output_dir and resume); None is allowed where the default is None
CHECKS: dict[str, Callable[[Any], Any]] = {
    "max_steps": _optional(_whole(1)),
    "epochs": _optional(_at_most(MAX_COUNT, _positive)),
    "batch_size": _whole(1),
    "learning_rate": _positive,
    "image_size": _optional(_whole(1, MAX_IMAGE_SIZE)),
    "device": _one_of(DEVICES),
    "mixed_precision": _boolean,
    "eval_steps": _optional(_whole(1)),
    "save_steps": _optional(_whole(1)),
    "eval_limit": _optional(_whole(1)),
    "seed": _seed,
    "logging_steps": _whole(1),
    "save_total_limit": _optional(_whole(1)),
    "weight_decay": _not_negative,
    "gradient_accumulation_steps": _whole(1),
    "warmup_steps": _warmup,
    "lr_scheduler_type": _one_of(SCHEDULERS),
    "report_to": _one_of(REPORT_TO),
    "dataloader_num_workers": _whole(0),
    "augmentation": _one_of(AUGMENTATIONS),
}


def check_option(name: str, value: Any) -> Any:
    """``value`` as option ``name`` takes it (a string from the command line is parsed); OptionError if not."""
    try:
        return CHECKS[name](value)
    except ValueError as exc:
        raise OptionError(f"{name} {exc}") from None


def check_options(raw: dict, where: str) -> dict:
    """Options from a file or a form, each checked; unknown names refused, all of them named in one line."""
    named = {ALIASES.get(str(key), str(key)): value for key, value in raw.items()}
    unknown = sorted(str(key) for key in raw if ALIASES.get(str(key), str(key)) not in CHECKS)
    if unknown:
        raise OptionError(f"{where}: unknown option(s) {', '.join(unknown)} (known: {', '.join(CHECKS)})")
    twice = sorted(name for name in named if sum(ALIASES.get(str(key), str(key)) == name for key in raw) > 1)
    if twice:
        raise OptionError(f"{where}: {', '.join(twice)} given twice (under {' and '.join(_spellings(twice[0]))}): "
                          "keep one")
    if "warmup_ratio" in raw and not 0 <= _number_or_nan(raw["warmup_ratio"]) < 1:
        raise OptionError(f"{where}: warmup_ratio must be a fraction from 0 to below 1, got {raw['warmup_ratio']!r}")
    try:
        return {name: check_option(name, value) for name, value in named.items()}
    except OptionError as exc:
        raise OptionError(f"{where}: {exc}") from None


def _spellings(name: str) -> list[str]:
    return [name, *(alias for alias, option in ALIASES.items() if option == name)]


def _number_or_nan(value: Any) -> float:
    try:
        return _number(value)
    except ValueError:
        return math.nan


def read_options_file(path: str | Path) -> dict:
    """The options in a JSON or YAML config file (``--config``), checked; OptionError in one line if not."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a UTF-8 text file"
        raise OptionError(f"cannot read the config file {path}: {reason}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        yaml = _yaml()
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise OptionError(f"the config file {path} is not valid YAML ({_yaml_problem(exc)})") from None
    else:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise OptionError(f"the config file {path} is not valid JSON ({exc}); YAML files end in "
                              ".yaml or .yml") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise OptionError(f"the config file {path} holds a {type(raw).__name__}, not option: value pairs")
    return check_options(raw, f"config file {path}")


def write_options_file(path: str | Path, options: dict) -> None:
    """``options`` as a config file ``read_options_file`` reads back: YAML for .yaml / .yml, else JSON."""
    from segstudio.core.export import atomic_write_text

    checked = check_options(options, "options")
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        text = _yaml().safe_dump(checked, sort_keys=False)
    else:
        text = json.dumps(checked, indent=2) + "\n"
    atomic_write_text(path, text)


def read_training_options(folder: str | Path) -> dict | None:
    """The options a checkpoint was trained with (its ``training_options.json``), or None if it records none."""
    path = Path(folder) / OPTIONS_FILE
    if not path.is_file():
        return None
    try:
        return read_options_file(path)
    except OptionError:
        return None


def describe_options(options: dict) -> list[str]:
    """``name value`` per option, for a person to read (options left at None are left out)."""
    return [f"{name} {_shown(value)}" for name, value in options.items() if value is not None]


def _shown(value: Any) -> str:
    """A value as the config file writes it (true, 6e-05, cosine)."""
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def require_reporter(report_to: str) -> None:
    """Refuse ``report_to`` whose logger is not installed (as transformers checks TensorBoard: either package)."""
    if report_to == "tensorboard" and not any(importlib.util.find_spec(name) for name in ("tensorboard",
                                                                                        "tensorboardX")):
        raise OptionError(f"report_to tensorboard needs TensorBoard, which is not installed: {TENSORBOARD_EXTRA}")


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise OptionError("YAML config files need PyYAML: pip install pyyaml (or write the config as JSON)") from None
    return yaml


def _yaml_problem(exc: Exception) -> str:
    """What PyYAML found wrong and on which line, in a few words."""
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    where = f" on line {mark.line + 1}" if mark is not None else ""
    return f"{problem or exc.__class__.__name__}{where}"

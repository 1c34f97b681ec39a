"""The CLI's commands; each takes the parsed arguments and returns an exit status."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from segstudio.cli.check import refuse_unless_forced
from segstudio.cli.report import (
    ConsoleTrainingListener,
    class_rows,
    evaluation_json,
    print_evaluation,
    progress_bar,
)
from segstudio.core.errors import SegStudioError

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


# Where each exception with a one-line message for the person at the terminal is defined.
def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that carry a one-line message for the person at the terminal (every core error a person can fix
    subclasses ``SegStudioError``)."""
    return (SegStudioError,)


def _source_options(args: argparse.Namespace):
    from segstudio.core.data import SourceOptions

    return SourceOptions(
        config=args.dataset_config,
        revision=args.revision,
        image_column=args.image_column,
        mask_column=args.mask_column,
        reduce_labels=args.reduce_labels,
        ignore_index=args.ignore_index,
        label_map_path=args.label_map,
    )


def load_dataset_from_args(args: argparse.Namespace, corrections: bool = True):
    """The dataset ``--dataset`` and its options name, read with ``--corrections`` unless ``corrections=False``."""
    from segstudio.core.data import load_source

    dataset = load_source(args.dataset, _source_options(args))
    if dataset.notice and _is_main():
        print(f"segstudio: {dataset.notice}", file=sys.stderr)
    if corrections and getattr(args, "corrections", None):
        from segstudio.core.review import apply_corrections

        dataset = apply_corrections(dataset, args.corrections)
    if dataset.corrections is not None:
        print(f"segstudio: reading {dataset.corrections.items} corrected mask(s) from {dataset.corrections.folder}",
              file=sys.stderr)
    return dataset


def corrections_record(dataset) -> dict | None:
    """What a manifest or report says of the corrections a dataset was read with (None without)."""
    return dataset.corrections.to_json_dict() if dataset.corrections is not None else None


def _print_report(loaded) -> None:
    if _is_main():
        print(loaded.report.summary(), file=sys.stderr)


def _is_main() -> bool:
    """Whether this is the process that reports (the only one, or rank 0 under torchrun / accelerate launch)."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


def cmd_demo_data(args: argparse.Namespace) -> int:
    from segstudio.core.data import load_source, write_ade_folder

    out = write_ade_folder(load_source("demo"), Path(args.output))
    print(f"demo dataset written to {out}")
    return EXIT_OK


def cancel_on_sigint(cancel: threading.Event) -> None:
    """First Ctrl-C asks the run to stop at the next step; a second one interrupts at once."""

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nsegstudio: stopping after this step (Ctrl-C again to abort)", file=sys.stderr)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)


def _check_model_spec(spec: str) -> None:
    """A model path that cannot be a model is reported before torch (~1.5 s) and the model are loaded."""
    from segstudio.core.model import locate_model

    spec = str(spec).strip()
    if spec != "scratch":
        locate_model(spec)


def given_options(args: argparse.Namespace) -> dict:
    """The training options given on the command line (None: not given)."""
    from segstudio.core.training.options import CHECKS

    return {name: getattr(args, name) for name in CHECKS if hasattr(args, name)}


def cmd_train(args: argparse.Namespace) -> int:
    from segstudio.core.training import RunFolderError, check_output
    from segstudio.core.training.options import read_options_file, require_reporter

    config = read_options_file(args.config) if args.config else None  # refused before anything loads
    require_reporter(args.report_to or (config or {}).get("report_to") or "none")

    try:  # before the dataset and the model load
        resume_from = check_output(Path(args.output), args.resume, owner_check=os.environ.get("RANK", "0") == "0")
    except RunFolderError as exc:
        raise _usage(str(exc)) from None
    if resume_from is None:
        if args.model is None:
            raise _usage("train needs --model (demo, scratch, a folder or a Hub id), or --resume to continue a run")
        _check_model_spec(args.model)
    from segstudio.core.training import model_to_train, settings_for, train

    settings = settings_for(Path(args.output), given_options(args), resume=args.resume, config=config)
    dataset = load_dataset_from_args(args)
    # a resumed run goes on with its checkpoint
    loaded = model_to_train(str(resume_from) if resume_from is not None else args.model, dataset, settings)
    _print_report(loaded)
    refuse_unless_forced(args, dataset, [loaded], ["train", "validation"], "train")
    cancel = threading.Event()
    cancel_on_sigint(cancel)
    started = time.monotonic()
    with ConsoleTrainingListener() as listener:
        result = train(dataset, loaded, settings, listener=listener, cancel=cancel)
    elapsed = time.monotonic() - started
    if os.environ.get("RANK", "0") != "0":
        return EXIT_CANCELLED if result.cancelled else EXIT_OK  # under torchrun only rank 0 reports
    if result.final_checkpoint is not None:
        print(f"model saved to {result.final_checkpoint} ({elapsed:.0f} s)")
    if result.skipped_batches:
        print(f"segstudio: {result.skipped_batches} batch(es) skipped: every pixel ignored (see segstudio check)",
              file=sys.stderr)
    for name, reason in result.skipped_items.items():
        print(f"segstudio: skipped {name}: {reason}", file=sys.stderr)
    if result.cancelled:
        resumable = any(path.name.startswith("checkpoint-") for path in result.checkpoints)
        print("segstudio: training cancelled; the model so far is saved"
              + (" (--resume continues from the newest checkpoint)" if resumable else ""), file=sys.stderr)
        return EXIT_CANCELLED
    if result.skipped_items:
        print(f"segstudio: {len(result.skipped_items)} unreadable item(s) left out of training", file=sys.stderr)
    return EXIT_PARTIAL if result.skipped_items else EXIT_OK


def _check_model_fits(dataset, loaded) -> None:
    from segstudio.core.model import ModelLoadError

    if loaded.label_map.num_labels != dataset.label_map.num_labels:
        raise ModelLoadError(
            f"the model predicts {loaded.label_map.num_labels} classes but the dataset's label map has "
            f"{dataset.label_map.num_labels}; pass --label-map or --reduce-labels/--no-reduce-labels to match"
        )


def open_split_and_model(args: argparse.Namespace, action: str):
    """What scoring a split starts from: the dataset (with ``--split``), the model (its report printed, checked to
    fit the dataset and passed by the label check unless ``--force``) and its predictor."""
    from segstudio.core.data.schema import masks_in
    from segstudio.core.inference import Predictor, load_for_inference

    dataset = load_dataset_from_args(args)
    if args.split not in dataset.splits:
        raise _usage(f"{dataset.source} has no {args.split} split (it has: {', '.join(dataset.splits)})")
    if not masks_in(dataset.splits[args.split], args.limit):
        images = split_count(dataset, args.split, args.limit)
        raise _usage(f"the {args.split} split of {dataset.source} has no masks ({images} image(s)): there is nothing "
                     "to score; segstudio predict writes the masks of images without ground truth")
    loaded = load_for_inference(args.model, args.device)
    _print_report(loaded)
    _check_model_fits(dataset, loaded)
    refuse_unless_forced(args, dataset, [loaded], [args.split], action)
    return dataset, loaded, Predictor(loaded, device=args.device, batch_size=args.batch_size)


def cmd_evaluate(args: argparse.Namespace) -> int:
    _check_model_spec(args.model)
    from segstudio.core.evaluation.distributed import current_group, merge_evaluations

    group = current_group()
    if args.cross_check and group.ranks.several:
        raise _usage("--cross-check runs in one process: run evaluate without torchrun / accelerate launch")
    outputs = _metrics_outputs(args)  # refused before the model loads and the evaluation runs
    from segstudio.core.evaluation import evaluate_split

    dataset, loaded, predictor = open_split_and_model(args, "evaluate")
    parts = run_on_shards(args, dataset, group, "evaluating", "evaluation", lambda cancel, tick, shard: evaluate_split(
        dataset, args.split, predictor, limit=args.limit, cancel=cancel, on_image=tick,
        keep_predictions=args.cross_check, shard=shard))
    if parts is None:
        return EXIT_CANCELLED
    if not group.ranks.is_main:
        return group.finish(EXIT_OK)  # rank 0 reports and writes
    result = merge_evaluations(parts)
    print_evaluation(result, dataset)
    _write_evaluation(args, outputs, dataset, loaded, predictor, result)
    if args.cross_check:
        from segstudio.core.evaluation import cross_check

        print(cross_check(result, dataset, args.split), file=sys.stderr)
    for name, reason in result.skipped:
        print(f"segstudio: skipped {name}: {reason}", file=sys.stderr)
    return group.finish(EXIT_PARTIAL if result.skipped else EXIT_OK)


def split_count(dataset, split: str, limit: int | None) -> int:
    """How many of the split's images a run with ``--limit`` scores."""
    rows = len(dataset.splits[split])
    return rows if limit is None else min(limit, rows)


def run_on_shards(args: argparse.Namespace, dataset, group, label: str, what: str, work, passes: int = 1) -> list | None:
    """``work(cancel, tick, shard)`` on this process's share of the split, with a progress bar (``label``) and Ctrl+C:
    the parts every process returned, or None when the ``what`` was cancelled (said on stderr). ``shard`` is None in
    one process."""
    from segstudio.core.evaluation import EvaluationCancelled

    shard = group.ranks.shard(split_count(dataset, args.split, args.limit))
    cancel = threading.Event()
    cancel_on_sigint(cancel)
    with progress_bar(passes * len(shard), label) as bar:
        try:
            return group.each(lambda: work(cancel, lambda *_: bar.update(1),
                                           (shard.start, shard.step) if group.ranks.several else None))
        except EvaluationCancelled:
            print(f"segstudio: {what} cancelled", file=sys.stderr)
            return None


def _metrics_outputs(args: argparse.Namespace) -> dict[Path, dict[str, str]]:
    """``{folder: {flag: file name}}`` for --json / --csv (manifest.json goes beside them); UsageError when they
    name one file, a folder or the manifest, and ExportError when a file no export wrote is in the way."""
    from segstudio.core.export import MANIFEST_NAME, check_export

    outputs: dict[Path, dict[str, str]] = {}
    for flag, given in (("--json", args.json), ("--csv", args.csv)):
        if not given:
            continue
        path = Path(given)
        if path.name in ("", ".", "..") or path.is_dir():
            raise _usage(f"{flag} {given} is a folder: give a file name")
        if path.name.casefold() == MANIFEST_NAME:
            raise _usage(f"{flag} {given}: {MANIFEST_NAME} is where the manifest beside the metrics goes; "
                         "choose another file name")
        names = outputs.setdefault(Path(os.path.realpath(path.parent)), {})
        if any(name.casefold() == path.name.casefold() for name in names.values()):
            raise _usage(f"--json and --csv both name {given}: give them different files")
        names[flag] = path.name
    for folder, names in outputs.items():
        check_export(folder, [*names.values(), MANIFEST_NAME])
    return outputs


def _write_evaluation(args: argparse.Namespace, outputs: dict[Path, dict[str, str]], dataset, loaded, predictor,
                      result) -> None:
    """--json / --csv and a manifest.json beside them, each folder one staged export joining what is there."""
    from segstudio.core.export import (
        MANIFEST_NAME,
        build_manifest,
        staged_export,
        write_manifest,
        write_metrics_csv,
        write_metrics_json,
    )

    if not outputs:
        return
    manifest = build_manifest(
        "evaluate", loaded, predictor, label_map=dataset.label_map, convention=dataset.convention,
        dataset=dataset.source, split=args.split, corrections=corrections_record(dataset), images=len(result.images),
        written=len(result.images) - len(result.skipped), skipped=len(result.skipped),
        extra={"limit": args.limit, "metrics": [str(p) for p in (args.json, args.csv) if p]})
    with contextlib.ExitStack() as stack:
        for folder, names in outputs.items():
            stage = stack.enter_context(staged_export(folder, [*names.values(), MANIFEST_NAME], replace=False))
            if "--json" in names:
                write_metrics_json(stage.folder / names["--json"], evaluation_json(result, dataset, loaded, args.split))
            if "--csv" in names:
                write_metrics_csv(stage.folder / names["--csv"], class_rows(result, dataset.label_map))
            write_manifest(stage.folder, manifest)


class UsageError(SegStudioError):
    """A command-line input a person can fix."""


def _usage(message: str) -> Exception:
    return UsageError(message)


def _with_ignore_index(loaded, ignore_index: int | None):
    """The model with ``predict --ignore-index`` in its convention; refused while 255 is also one of its classes."""
    import dataclasses

    from segstudio.core.labels import LabelConvention

    if ignore_index is not None:
        k = loaded.label_map.num_labels
        if not k <= ignore_index <= 65535:
            raise _usage(f"--ignore-index {ignore_index} is "
                         + (f"class {ignore_index} of this model" if 0 <= ignore_index < k else "not a mask value")
                         + f": give a value in {k}..65535")
        convention = LabelConvention(loaded.convention.reduce_labels, ignore_index)
        loaded = dataclasses.replace(loaded, convention=convention)
    loaded.convention.require_ignore_outside(loaded.label_map.num_labels)
    return loaded


def cmd_predict(args: argparse.Namespace) -> int:
    inputs = [Path(p) for p in args.inputs]
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:  # before any model loads
        raise _usage(f"no such file or folder: {', '.join(missing)}")
    _check_model_spec(args.model)
    from segstudio.core.inference import check_predict, predict_files

    formats = args.format or ["index"]
    check_predict(inputs, Path(args.output), formats)  # files in the way are refused before the model loads
    from segstudio.core.evaluation.distributed import current_group
    from segstudio.core.export import build_manifest
    from segstudio.core.inference import Predictor, load_for_inference

    group = current_group()
    loaded = _with_ignore_index(load_for_inference(args.model, args.device), args.ignore_index)
    _print_report(loaded)
    predictor = Predictor(loaded, device=args.device, batch_size=args.batch_size)
    failures: list[tuple[str, str]] = []

    def manifest(written: int, failed: int) -> dict:
        return build_manifest(
            "predict", loaded, predictor, inputs=[str(p.resolve()) for p in inputs], images=written + failed,
            written=written, skipped=failed, extra={"formats": formats})

    with progress_bar(None, "predicting") as bar:
        written = predict_files(
            predictor, inputs, Path(args.output), formats,
            on_done=lambda _path: bar.update(1),
            on_error=lambda path, reason: failures.append((str(path), reason)),
            manifest=manifest, group=group,
        )
    if not group.ranks.is_main:
        return group.finish(EXIT_OK)  # rank 0 names the failures of every process
    for path, reason in failures:
        print(f"segstudio: {path}: {reason}", file=sys.stderr)
    print(f"{written} mask(s) written to {args.output}" + (f", {len(failures)} failed" if failures else ""))
    return group.finish(EXIT_PARTIAL if failures else EXIT_OK)


OUT_OF_MEMORY = ("out of memory on the device: try a smaller --batch-size or --image-size, "
                 "or --device cpu (slower, but uses the computer's memory)")
OUT_OF_HOST_MEMORY = ("out of memory: the computer has not enough free memory for this run; close other programs, "
                      "try a smaller --batch-size, or leave the largest images out")


def _out_of_memory_is_a_user_error(command):
    """An out-of-memory error that no core step turned into a message becomes one line with a suggestion."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except MemoryError:
            raise UsageError(OUT_OF_HOST_MEMORY) from None
        except RuntimeError as exc:
            torch = sys.modules.get("torch")
            if torch is None or not isinstance(exc, torch.OutOfMemoryError):
                raise
            raise UsageError(OUT_OF_MEMORY) from None

    return run


def on_every_process(command):
    """Under torchrun / accelerate launch the command runs in the launcher's process group (see
    ``segstudio.core.evaluation.distributed``); a failure of another process is one line with that process's status.
    """

    def run(args: argparse.Namespace) -> int:
        from segstudio.core.evaluation.distributed import (
            DistributedError,
            device_for,
            launched_ranks,
            process_group,
        )

        try:
            ranks = launched_ranks()
            if not ranks.several:
                return command(args)
            if hasattr(args, "device"):
                args.device = device_for(args.device, ranks)
            with contextlib.ExitStack() as stack:
                if not ranks.is_main:  # rank 0 prints the results
                    stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
                group = stack.enter_context(process_group(ranks, getattr(args, "device", "cpu"), describe_failure))
                _end_on_sigterm(group, stack)
                return command(args)
        except DistributedError as exc:
            print(f"segstudio: error: {exc}", file=sys.stderr)
            return exc.exit_status

    return run


def _end_on_sigterm(group, stack: contextlib.ExitStack) -> None:
    """torchrun ends the other processes with SIGTERM when one fails: end this one as an exception, so a staged
    export is removed on the way out, without waiting for the others (one of them is gone)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        group.stopped = True
        raise SystemExit(128 + signum)

    stack.callback(signal.signal, signal.SIGTERM, signal.signal(signal.SIGTERM, handler))


def describe_failure(exc: BaseException) -> tuple[str, int]:
    """(one line, exit status) of an exception as this command line reports it: what other processes print."""
    if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "EvaluationCancelled":
        return "cancelled", EXIT_CANCELLED
    if isinstance(exc, MemoryError):
        return OUT_OF_HOST_MEMORY, EXIT_USAGE
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return OUT_OF_MEMORY, EXIT_USAGE
    if isinstance(exc, user_errors()):
        return str(exc), EXIT_USAGE
    return f"{type(exc).__name__}: {exc}".splitlines()[0], 1


COMMANDS = {
    "demo-data": cmd_demo_data,
    "train": _out_of_memory_is_a_user_error(cmd_train),
    "evaluate": _out_of_memory_is_a_user_error(on_every_process(cmd_evaluate)),
    "predict": _out_of_memory_is_a_user_error(on_every_process(cmd_predict)),
}
SEVERAL_PROCESSES = ("compare", "label-issues")  # commands registered in their own modules that shard their work

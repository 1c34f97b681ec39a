"""Evaluation and prediction on several processes (``torchrun`` / ``accelerate launch``).

The launcher's environment (WORLD_SIZE, RANK, LOCAL_RANK) says who is who. Each process takes every world-th
item from its rank (no item twice, no padding), scores or predicts it, and the processes exchange only small
results (confusion matrices, per-image summaries, counts; never logits); the main process (rank 0) writes.
Every collective is one ``all_gather_object`` of (failure, payload): a process that fails meets the others in
the next exchange and names its failure there, so none of them waits for it; a timeout covers a process that died.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from segstudio.core.errors import SegStudioError

if TYPE_CHECKING:
    from segstudio.core.evaluation.compare import Comparison
    from segstudio.core.evaluation.scoring import EvaluationResult

T = TypeVar("T")
TIMEOUT_ENV = "SEGSTUDIO_DIST_TIMEOUT"  # seconds a process waits for the others at an exchange
DEFAULT_TIMEOUT_S = 1800.0


class DistributedError(SegStudioError):
    """Another process of the group failed (named in the message), or the group could not be formed."""

    def __init__(self, message: str, exit_status: int = 2) -> None:
        super().__init__(message)
        self.exit_status = exit_status


@dataclass(frozen=True)
class Ranks:
    """Who this process is among ``world`` launched together (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world > 1

    def shard(self, count: int) -> range:
        """This process's item indices among the first ``count``: every world-th, starting at its rank."""
        return range(self.rank, count, self.world)


def launched_ranks(environ: Mapping[str, str] | None = None) -> Ranks:
    """The ranks torchrun / accelerate launch set (WORLD_SIZE, RANK, LOCAL_RANK); one process without them."""
    env = os.environ if environ is None else environ

    def number(name: str, default: int) -> int:
        text = env.get(name, "").strip()
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            raise DistributedError(f"{name}={text!r} is not a whole number: launch through torchrun or "
                                   f"accelerate launch, or unset {name}") from None

    world, rank = number("WORLD_SIZE", 1), number("RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} with WORLD_SIZE={world}: a rank must be 0..WORLD_SIZE-1; launch "
                               "through torchrun or accelerate launch")
    return Ranks(rank, world, number("LOCAL_RANK", rank))


def device_for(name: str, ranks: Ranks) -> str:
    """``auto`` / ``cuda`` become this process's own GPU (``cuda:LOCAL_RANK``) when several processes run."""
    if not ranks.several or (name or "auto").strip().lower() not in ("auto", "cuda"):
        return name
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{ranks.local_rank % count}" if count else name  # more processes than GPUs share them


@dataclass(frozen=True)
class Failure:
    """What a failed process tells the others: its rank, one line, and the exit status it ends with."""

    rank: int
    message: str
    exit_status: int


def describe_plainly(exc: BaseException) -> tuple[str, int]:
    """(one line, exit status 1) for any exception; the CLI gives a finer description."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0], 1


class ProcessGroup:
    """The processes one command runs on; with one process every exchange is local and nothing is sent."""

    def __init__(self, ranks: Ranks | None = None,
                 describe: Callable[[BaseException], tuple[str, int]] = describe_plainly) -> None:
        self.ranks = ranks or Ranks()
        self.describe = describe
        self.stopped = False  # a failure was exchanged: no process takes part in another exchange

    def exchange(self, payload: T) -> list[T]:
        """Every process's ``payload`` in rank order; DistributedError when another process reported a failure."""
        if not self.ranks.several:
            return [payload]
        return [item for _failure, item in self._all_gather((None, payload))]

    def each(self, work: Callable[[], T]) -> list[T]:
        """``work()`` here, then every process's result in rank order; a failure here is told to the others."""
        try:
            value = work()
        except BaseException as exc:
            self.report(exc)
            raise
        return self.exchange(value)

    def from_main(self, produce: Callable[[], T]) -> T:
        """What ``produce()`` returns on the main process, handed to every process."""
        return self.each(lambda: produce() if self.ranks.is_main else None)[0]

    def finish(self, exit_status: int) -> int:
        """The exit status every process ends with: the main process's (the one that wrote the results)."""
        return int(self.exchange(exit_status)[0])

    def report(self, exc: BaseException) -> None:
        """Tell the others this process failed with ``exc`` (once), so that none of them waits for it."""
        if not self.ranks.several or self.stopped:
            return
        message, exit_status = self.describe(exc)
        with suppress(DistributedError):
            self._all_gather((Failure(self.ranks.rank, message, exit_status), None))
        self.stopped = True

    def _all_gather(self, item: tuple[Failure | None, Any]) -> list[tuple[Failure | None, Any]]:
        import torch.distributed as dist

        if self.stopped:
            raise DistributedError("the processes already stopped after a failure")
        gathered: list = [None] * self.ranks.world
        try:
            dist.all_gather_object(gathered, item)
        except Exception as exc:  # noqa: BLE001 - gloo's timeouts and lost connections are RuntimeErrors
            self.stopped = True
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DistributedError(f"process {self.ranks.rank} of {self.ranks.world} lost the others ({reason}); "
                                   "their own messages say why") from None
        failures = [failure for failure, _payload in gathered if failure is not None]
        if failures:
            self.stopped = True
            first = failures[0]
            raise DistributedError(f"process {first.rank} of {self.ranks.world} stopped: {first.message}",
                                   first.exit_status)
        return gathered


_current: ProcessGroup | None = None


def current_group() -> ProcessGroup:
    """The group the running command joined (:func:`process_group`), or one process."""
    return _current if _current is not None else ProcessGroup()


def timeout_seconds(environ: Mapping[str, str] | None = None) -> float:
    """How long a process waits for the others at an exchange (``SEGSTUDIO_DIST_TIMEOUT``, default 30 min)."""
    text = (os.environ if environ is None else environ).get(TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise DistributedError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if not value > 0:
        raise DistributedError(f"{TIMEOUT_ENV}={text!r} must be a positive number of seconds")
    return value


@contextmanager
def process_group(ranks: Ranks, device: str = "cpu",
                  describe: Callable[[BaseException], tuple[str, int]] = describe_plainly) -> Iterator[ProcessGroup]:
    """Join the launcher's process group for one command (gloo on CPU; NCCL for CUDA tensors, gloo for the
    small objects exchanged); an exception inside is told to the others before it propagates."""
    global _current
    group = ProcessGroup(ranks, describe)
    started = False
    if ranks.several:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            cuda = str(device).startswith("cuda")
            if cuda:
                torch.cuda.set_device(torch.device(device))
            backend = "cpu:gloo,cuda:nccl" if cuda and dist.is_nccl_available() else "gloo"
            try:
                dist.init_process_group(backend, timeout=timedelta(seconds=timeout_seconds()))
            except (RuntimeError, ValueError) as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise DistributedError(f"process {ranks.rank} of {ranks.world} could not join the others "
                                       f"({reason}); launch through torchrun or accelerate launch") from None
            started = True
    _current = group
    try:
        yield group
    except BaseException as exc:
        group.report(exc)
        raise
    finally:
        _current = None
        if started:
            import torch.distributed as dist

            dist.destroy_process_group()


# --- merging what the processes scored -----------------------------------------------------------------------


def merge_evaluations(parts: Sequence[EvaluationResult]) -> EvaluationResult:
    """One split's result from its shards' results: exactly what one process scoring every image gives."""
    if len(parts) == 1:
        return parts[0]
    import numpy as np

    from segstudio.core.evaluation.scoring import EvaluationResult
    from segstudio.core.metrics import ConfusionMatrix

    first = parts[0].confusion
    confusion = ConfusionMatrix(first.num_labels, first.ignore_index, first.label_map)
    for part in parts:
        confusion.merge(part.confusion)
    images = sorted((image for part in parts for image in part.images), key=lambda image: image.index)
    return EvaluationResult(
        matrix=confusion.matrix.copy(),
        images=images,
        skipped=[(image.file_name, image.error) for image in images if image.error is not None],
        metrics=confusion.compute(),
        images_per_class=np.sum([part.images_per_class for part in parts], axis=0),
        scene_names=parts[0].scene_names,
        confusion=confusion,
    )


def merge_comparisons(parts: Sequence[Comparison]) -> Comparison:
    """One A/B comparison from its shards' comparisons."""
    if len(parts) == 1:
        return parts[0]
    from segstudio.core.evaluation.compare import Comparison, class_changes

    a = merge_evaluations([part.a for part in parts])
    b = merge_evaluations([part.b for part in parts])
    images = sorted((image for part in parts for image in part.images), key=lambda image: image.index)
    return Comparison(parts[0].split, a, b, class_changes(a.class_rows(), b.class_rows()), images)

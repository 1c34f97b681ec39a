"""The label-convention guard: do the dataset's mask ids, reduce_labels, the model's head and the ignore indexes agree?

It scans a deterministic sample of each split's masks (values as stored) and compares them with the dataset's
:class:`LabelConvention`, the model's config and the metric's ignore index. Each finding says in plain words what
is wrong and the concrete fix. ``refuse_double_reduction`` is the cheap check training and evaluation run first;
``blocking_errors`` is what the CLI and the window check before evaluating, training or comparing.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from segstudio.core.data.schema import SegDataset, mask_values
from segstudio.core.errors import SegStudioError

log = logging.getLogger(__name__)

ERROR, WARNING, INFO = "error", "warning", "info"
DEFAULT_SAMPLE = 200  # masks per split for a full check
QUICK_SAMPLE = 16  # masks per split for the check training and evaluation run first
# Errors about the data itself (what training is refused for: it builds its own head and processor settings).
DATA_ERRORS = frozenset({"double_reduction", "needs_reduce_labels", "stray_values", "ignore_is_class"})
OTHER_NAMES = {"other", "others", "background", "unlabeled", "unlabelled", "void", "__background__"}


class LabelConventionError(SegStudioError, ValueError):
    """Training or evaluating would misread the masks (e.g. reduce_labels applied to already reduced masks)."""


@dataclass(frozen=True)
class Finding:
    """One problem (or note): how bad, a stable code, what is wrong in plain words, and the fix."""

    severity: str
    code: str
    message: str
    fix: str = ""


@dataclass
class SplitScan:
    """What the sample of one split holds: stored mask values and pixel counts, and odd masks."""

    split: str
    total: int
    scanned: int = 0
    annotated: int = 0
    values: dict[int, int] = field(default_factory=dict)
    all_ignored: int = 0
    unreadable: int = 0
    first_error: str | None = None

    def ids(self, ignore_index: int) -> list[int]:
        return [v for v in self.values if v != ignore_index]


@dataclass
class GuardReport:
    """The findings (errors first) and what was scanned."""

    dataset: str
    model: str
    findings: list[Finding]
    scans: list[SplitScan]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json_dict(self) -> dict[str, Any]:
        scans = [{**asdict(s), "values": {str(k): v for k, v in s.values.items()}} for s in self.scans]
        return {"dataset": self.dataset, "model": self.model, "ok": self.ok, "errors": len(self.errors),
                "warnings": len(self.warnings), "findings": [asdict(f) for f in self.findings], "scanned": scans}


def sample_indices(count: int, sample: int | None) -> list[int]:
    """Up to ``sample`` row indices spread evenly over ``count`` rows (the same every time)."""
    if sample is None or sample >= count:
        return list(range(count))
    return np.unique(np.linspace(0, count - 1, max(sample, 0)).round().astype(int)).tolist()


def scan_split(dataset: SegDataset, split: str, sample: int | None = DEFAULT_SAMPLE,
               cancel: threading.Event | None = None) -> SplitScan:
    """Scan up to ``sample`` masks of ``split``; unreadable masks are counted, never raised; stops on ``cancel``."""
    rows = dataset.splits[split]
    scan = SplitScan(split=split, total=len(rows))
    if "annotation" not in rows.column_names:
        return scan
    rows = rows.select_columns(["annotation"])  # once: each select copies the features (1,055 scene names)
    convention = dataset.convention
    for index in sample_indices(len(rows), sample):
        if cancel is not None and cancel.is_set():
            break
        scan.scanned += 1
        try:
            values = mask_values(rows[int(index)]["annotation"])
        except Exception as exc:  # noqa: BLE001 - a broken file is reported, the scan goes on
            scan.unreadable += 1
            scan.first_error = scan.first_error or f"row {index}: {exc}"
            continue
        if not values:
            continue  # no annotation (an unannotated test image)
        scan.annotated += 1
        model_ids = convention.to_model_ids(np.asarray(list(values)))
        if np.all(model_ids == convention.ignore_index):
            scan.all_ignored += 1
        for value, count in values.items():
            scan.values[value] = scan.values.get(value, 0) + count
    scan.values = dict(sorted(scan.values.items()))
    return scan


def scan_dataset(dataset: SegDataset, splits: list[str] | None = None, sample: int | None = DEFAULT_SAMPLE,
                 cancel: threading.Event | None = None) -> list[SplitScan]:
    """Scan the given splits (all by default)."""
    return [scan_split(dataset, name, sample, cancel) for name in (splits or list(dataset.splits))]


def _range(ids: list[int]) -> str:
    return f"{min(ids)}..{max(ids)}" if ids else "none"


def _double_reduction(dataset: SegDataset, scans: list[SplitScan]) -> Finding | None:
    """reduce_labels on masks that already hold the ignore index and never the top dataset id."""
    convention, k = dataset.convention, dataset.label_map.num_labels
    if not convention.reduce_labels:
        return None
    ignore = convention.ignore_index
    marked = [s for s in scans if ignore in s.values]
    ids = sorted({v for s in scans for v in s.ids(ignore)})
    if not marked or not ids or max(ids) >= k:
        return None
    first = dataset.label_map.name(0).strip()
    return Finding(
        ERROR, "double_reduction",
        f"the masks look already reduced: they use {ignore} (ignored) and ids {_range(ids)}, never {k} (the id of "
        f"the last class under reduce_labels); reducing again would make class 0 '{first}' ignored and shift every "
        f"class down by one (double reduction)",
        f"read the dataset with --no-reduce-labels: its ids 0..{k - 1} already are the model's classes",
    )


def data_findings(dataset: SegDataset, scans: list[SplitScan]) -> list[Finding]:
    """What the stored mask values say about the dataset's convention."""
    convention, k = dataset.convention, dataset.label_map.num_labels
    ignore, reduce = convention.ignore_index, convention.reduce_labels
    findings: list[Finding] = []
    double = _double_reduction(dataset, scans)
    if double is not None:
        findings.append(double)
    ids = sorted({v for s in scans for v in s.ids(ignore)})
    top = k if reduce else k - 1  # the largest dataset id that is a class
    shifted = not reduce and k in ids and 0 in ids
    if shifted:
        findings.append(Finding(
            ERROR, "needs_reduce_labels",
            f"the label map has {k} classes (ids 0..{k - 1}) but the masks use ids {_range(ids)}: 0 is most likely "
            f"'other' and every class is shifted by one (the ADE20K convention); read as they are, id {k} is out "
            "of range and 0 'other' is learned as a class",
            "pass --reduce-labels (0 becomes ignored, id k becomes class k-1)",
        ))
    stray = [v for v in ids if v > top and not (shifted and v == k)]
    if stray:
        splits = ", ".join(s.split for s in scans if any(v in s.values for v in stray))
        findings.append(Finding(
            ERROR, "stray_values",
            f"mask values beyond the label map in {splits}: {stray[:10]}{' ...' if len(stray) > 10 else ''} "
            f"(the {k} classes use dataset ids {'1' if reduce else '0'}..{top}, {ignore} is ignored); training on "
            "them fails and evaluation counts them as errors",
            "fix those masks, or pass a --label-map that names every id",
        ))
    findings += _scan_notes(dataset, scans)
    return findings


def _scan_notes(dataset: SegDataset, scans: list[SplitScan]) -> list[Finding]:
    """All-ignored and unreadable masks (warnings), and what was scanned (info)."""
    ignore = dataset.convention.ignore_index
    findings = []
    for scan in scans:
        if scan.all_ignored:
            findings.append(Finding(
                WARNING, "all_ignored",
                f"{scan.all_ignored} of {scan.annotated} scanned {scan.split} masks have every pixel ignored: they "
                "teach nothing, and a batch made only of them has a NaN loss (training skips such batches)",
                "remove those images, or check that their masks were not reduced or cleared by mistake",
            ))
        if scan.unreadable:
            findings.append(Finding(WARNING, "unreadable", f"{scan.unreadable} {scan.split} masks cannot be read "
                                    f"(first: {scan.first_error})", "fix or remove those files"))
        if scan.annotated:
            pixels = sum(scan.values.values())
            ignored = scan.values.get(ignore, 0) + (scan.values.get(0, 0) if dataset.convention.reduce_labels else 0)
            share = 100.0 * ignored / max(pixels, 1)
            findings.append(Finding(INFO, "scanned", f"{scan.split}: scanned {scan.scanned} of {scan.total} images "
                                    f"({scan.annotated} with masks), ids {_range(scan.ids(ignore))}, {share:.1f}% of "
                                    "pixels ignored"))
        else:
            findings.append(Finding(INFO, "scanned", f"{scan.split}: no masks to scan ({scan.total} images)"))
    return findings


def _head_fix(model_k: int, data_k: int, reduce: bool, first_name: str, max_id: int | None) -> str:
    if model_k == data_k - 1 and not reduce:
        return (f"the model has {model_k} classes, the dataset's label map {data_k} with 0 = '{first_name}': pass "
                f"--reduce-labels with the model's {model_k}-class --label-map")
    if model_k == data_k - 1:
        return f"pass the model's {model_k}-class --label-map, or fine-tune the model on this dataset"
    if model_k == data_k + 1 and max_id is not None and max_id <= data_k:
        return (f"the model counts 0 'other' as a class (trained without reduce_labels): pass --no-reduce-labels "
                f"with the model's {model_k}-class --label-map, or fine-tune")
    return "fine-tune the model on this dataset (segstudio train starts a new head) or open a model trained on it"


def model_findings(dataset: SegDataset, loaded: Any, scans: list[SplitScan], metric_ignore_index: int | None = None
                   ) -> list[Finding]:
    """The model's head, processor and loss, and the metric, against the dataset's convention."""
    convention, label_map = dataset.convention, dataset.label_map
    ignore, k = convention.ignore_index, label_map.num_labels
    config = loaded.model.config
    model_k = len(config.id2label)
    findings: list[Finding] = []
    if model_k != k:
        ids = sorted({v for s in scans for v in s.ids(ignore)})
        findings.append(Finding(
            ERROR, "head_size",
            f"the model's head has {model_k} classes but the dataset's label map has {k}"
            + (f" (its masks use ids {_range(ids)}, reduce_labels={convention.reduce_labels})" if ids else ""),
            _head_fix(model_k, k, convention.reduce_labels, label_map.name(0).strip(), max(ids) if ids else None),
        ))
    else:
        differ = [i for i in range(k) if str(config.id2label.get(i, "")).strip() != label_map.name(i).strip()]
        shift = _name_shift(config.id2label, label_map, k) if differ else 0
        if shift:
            i = next(i for i in range(k) if 0 <= i + shift < k)
            findings.append(Finding(
                ERROR, "class_shift",
                f"the model's class names are the dataset's shifted by one (model {i} '{config.id2label.get(i)}' is "
                f"dataset {i + shift} '{label_map.name(i + shift)}'): every class would be scored against its "
                "neighbour",
                "pass --reduce-labels / --no-reduce-labels or a --label-map whose ids are the model's",
            ))
        elif differ:
            i = differ[0]
            findings.append(Finding(
                WARNING, "class_names",
                f"{len(differ)} class names differ between the model and the dataset (e.g. {i}: model "
                f"'{config.id2label.get(i)}', dataset '{label_map.name(i)}'): ids may be shifted by one",
                "check reduce_labels and the --label-map before trusting the scores",
            ))
    if bool(getattr(loaded.processor, "do_reduce_labels", False)):
        findings.append(Finding(
            ERROR if convention.reduce_labels else WARNING, "processor_reduce",
            "the image processor has do_reduce_labels=True: anything that uses it as it is reduces the masks "
            + ("after the dataset's reduce_labels did (double reduction)" if convention.reduce_labels else "itself"),
            "keep do_reduce_labels=False on the processor: the dataset's convention reduces once",
        ))
    if loaded.source != "scratch" and loaded.convention.reduce_labels != convention.reduce_labels:
        findings.append(Finding(
            WARNING, "convention_differs",
            f"the checkpoint records reduce_labels={loaded.convention.reduce_labels} but the dataset is read with "
            f"reduce_labels={convention.reduce_labels}",
            "fine if the dataset's masks are stored differently from the training data; otherwise pass "
            + ("--reduce-labels" if loaded.convention.reduce_labels else "--no-reduce-labels"),
        ))
    findings += _ignore_findings(dataset, config, metric_ignore_index)
    return findings


def _name_shift(model_names: dict, label_map: Any, k: int) -> int:
    """+1 when model class i is named as dataset class i + 1 (-1: as i - 1) for most classes, else 0."""
    model = [str(model_names.get(i, "")).strip().casefold() for i in range(k)]
    data = [label_map.name(i).strip().casefold() for i in range(k)]
    same = sum(a == b for a, b in zip(model, data, strict=True))
    for shift in (1, -1):
        moved = sum(model[i] == data[i + shift] for i in range(k) if 0 <= i + shift < k)
        if moved >= max(2, k // 2) and moved > same:
            return shift
    return 0


def _ignore_findings(dataset: SegDataset, config: Any, metric_ignore_index: int | None) -> list[Finding]:
    ignore, k = dataset.convention.ignore_index, dataset.label_map.num_labels
    findings = []
    if ignore < k:
        findings.append(Finding(ERROR, "ignore_is_class",
                                f"the ignore index {ignore} is also class {ignore} ('{dataset.label_map.name(ignore)}')",
                                f"pass --ignore-index with a value of at least {k} (e.g. "
                                + ("255, or 65535)" if k <= 255 else "65535)")))
    loss = getattr(config, "semantic_loss_ignore_index", None)
    if loss != ignore:
        findings.append(Finding(
            WARNING, "loss_ignore_index",
            f"the model's loss ignores {loss} but the dataset marks ignored pixels with {ignore}",
            f"segstudio train sets it to {ignore}; elsewhere set config.semantic_loss_ignore_index = {ignore}",
        ))
    metric = ignore if metric_ignore_index is None else metric_ignore_index
    if metric != ignore:
        findings.append(Finding(ERROR, "metric_ignore_index",
                                f"the metric ignores {metric} but the dataset marks ignored pixels with {ignore}",
                                f"score with ConfusionMatrix(num_labels, ignore_index={ignore})"))
    return findings


def check_labels(dataset: SegDataset, loaded: Any, splits: list[str] | None = None,
                 sample: int | None = DEFAULT_SAMPLE, metric_ignore_index: int | None = None,
                 cancel: threading.Event | None = None) -> GuardReport:
    """The full check: scan ``splits`` (all by default, ``sample`` masks each) and compare with ``loaded``."""
    scans = scan_dataset(dataset, splits, sample, cancel)
    findings = data_findings(dataset, scans) + model_findings(dataset, loaded, scans, metric_ignore_index)
    if not any(f.severity in (ERROR, WARNING) for f in findings):
        convention = dataset.convention
        findings.append(Finding(INFO, "agree", f"the masks, the model's {dataset.label_map.num_labels} classes, "
                                f"reduce_labels={convention.reduce_labels} and ignore index "
                                f"{convention.ignore_index} agree"))
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    findings.sort(key=lambda f: order.get(f.severity, 3))
    return GuardReport(dataset.source, str(getattr(loaded, "source", "")), findings, scans)


def blocking_errors(dataset: SegDataset, models: list[Any], splits: list[str], sample: int | None = DEFAULT_SAMPLE,
                    cancel: threading.Event | None = None) -> list[Finding]:
    """The guard's errors for running ``models`` on ``splits`` (one sample scan shared by every model)."""
    scans = scan_dataset(dataset, [s for s in splits if s in dataset.splits], sample, cancel)
    findings = data_findings(dataset, scans)
    for loaded in models:
        findings += model_findings(dataset, loaded, scans)
    return list(dict.fromkeys(f for f in findings if f.severity == ERROR))


def refusal_message(errors: list[Finding], action: str = "run") -> str:
    """One line: why ``action`` is refused (the first error and its fix), how many more, and how to go on anyway
    (not offered for a double reduction, which training and evaluation refuse whatever is asked)."""
    first = errors[0]
    more = f" (and {len(errors) - 1} more error(s): segstudio check lists them all)" if len(errors) > 1 else ""
    anyway = "" if any(f.code == "double_reduction" for f in errors) else "; or pass --force to run anyway"
    return f"the label check refuses to {action}: {first.message}; fix: {first.fix}{more}{anyway}"


def refuse_double_reduction(dataset: SegDataset, split: str, sample: int = QUICK_SAMPLE,
                            confirm_sample: int = DEFAULT_SAMPLE) -> None:
    """Raise :class:`LabelConventionError` when ``split``'s masks are already reduced and reduce_labels is on.

    A quick look at ``sample`` masks; what looks reduced there is confirmed on ``confirm_sample`` masks before
    refusing, since a rare last class can simply be missing from a few masks.
    """
    if not dataset.convention.reduce_labels or split not in dataset.splits:
        return
    finding = _double_reduction(dataset, [scan_split(dataset, split, sample)])
    if finding is not None and confirm_sample > sample:
        scan = scan_split(dataset, split, confirm_sample)
        finding = _double_reduction(dataset, [scan])
        if finding is not None:
            finding = dataclasses.replace(finding, message=f"{finding.message} (in {scan.annotated} {split} masks)")
    if finding is not None:
        raise LabelConventionError(f"{finding.message}; {finding.fix}")


class IgnoredBatchGuard:
    """Spots training batches whose pixels are all ignored (their mean loss is NaN) and counts them."""

    def __init__(self, ignore_index: int) -> None:
        self.ignore_index = ignore_index
        self.skipped = 0

    def should_skip(self, labels: Any, step: int | None = None) -> bool:
        """True (logged and counted) when every label of the batch is the ignore index."""
        if labels is None or bool((labels != self.ignore_index).any()):
            return False
        self.skipped += 1
        where = f" at step {step}" if step is not None else ""
        log.warning("skipped a training batch%s: every pixel is ignored (its loss would be NaN); %d skipped so far",
                    where, self.skipped)
        return True

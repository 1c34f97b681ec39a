"""Exporting predictions and metrics (no Qt): the core's atomic writers, fed from cached predictions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from segstudio.gui.controllers.results import SplitResults


@dataclass
class ExportRequest:
    """What to write, and where."""

    output_dir: Path
    indices: list[int]
    formats: list[str]
    metrics: dict | None = None  # written as metrics.json / per_class.csv when given
    class_rows: list[dict] = field(default_factory=list)


@dataclass
class ExportProgress:
    done: int
    total: int


@dataclass
class ExportSummary:
    output_dir: Path
    written: int
    files: list[Path]
    cancelled: bool


def relative_output(file_name: str, index: int) -> Path:
    """A relative path inside the export folder for a row's file name (absolute names keep their base name). The
    ADE20K layout's leading ``images/`` goes: masks of ``images/validation/a.jpg`` are ``validation/a.png``."""
    path = PurePath(file_name.replace("\\", "/"))
    parts = [p for p in path.parts if p not in ("", ".", "..", "/")] or [f"image_{index:06d}"]
    if path.is_absolute():
        parts = parts[-1:]
    if len(parts) > 1 and parts[0] == "images":
        parts = parts[1:]
    return Path(*parts)


def export_predictions(ctx: Any, source: Any, results: SplitResults | None, bundle: Any, label_map: Any,
                       convention: Any, request: ExportRequest) -> ExportSummary:
    """The export, staged: it replaces the folder's previous export only when complete (see ``staged_export``);
    a failure or a cancel leaves the folder as it was."""
    from segstudio.gui.workers.jobs import import_core

    import_core("export")
    from segstudio.core.export import staged_export

    out = Path(request.output_dir)
    with staged_export(out, planned_names(source, request)) as stage:
        staged = ExportRequest(stage.folder, request.indices, request.formats, request.metrics, request.class_rows)
        summary = _export_into(ctx, source, results, bundle, label_map, convention, staged)
        stage.keep = not summary.cancelled
    if summary.cancelled:
        return ExportSummary(out, 0, [], True)
    return ExportSummary(out, summary.written, [out / p.relative_to(stage.folder) for p in summary.files], False)


def planned_names(source: Any, request: ExportRequest) -> list[Path]:
    """Every relative name the export writes (checked against what is in the folder before any work)."""
    from segstudio.core.export import MANIFEST_NAME, plan_names

    names = [Path(MANIFEST_NAME)]
    if request.formats:
        entries = [source.entries[i] for i in request.indices]
        inputs = [(Path(e.file_name), relative_output(e.file_name, e.index)) for e in entries]
        names += plan_names(inputs, request.output_dir, request.formats)[1] + [Path("labels.json")]
    if request.metrics is not None:
        names += [Path("metrics.json"), Path("per_class.csv")]
    return names


def _export_into(ctx: Any, source: Any, results: SplitResults | None, bundle: Any, label_map: Any,
                 convention: Any, request: ExportRequest) -> ExportSummary:
    """Write each image's predicted mask (predicting the ones not cached), then labels.json and metrics."""
    from segstudio.gui.workers.jobs import import_core

    import_core("model", "export")
    from segstudio.core.export import (
        plan_outputs,
        write_labels_json,
        write_metrics_csv,
        write_metrics_json,
        write_prediction,
    )

    out = Path(request.output_dir)
    entries = [source.entries[i] for i in request.indices]
    inputs = [(Path(e.file_name), relative_output(e.file_name, e.index)) for e in entries]
    planned = plan_outputs(inputs, out, request.formats) if request.formats else []
    files: list[Path] = []
    total = len(entries) if request.formats else 0
    if request.formats:
        files.append(write_labels_json(out, label_map, convention))
    for done, (entry, target) in enumerate(zip(entries, planned, strict=True), start=1):
        if ctx.cancelled:
            files.append(_write_manifest(source, bundle, label_map, convention, request, done - 1, True))
            return ExportSummary(out, done - 1, files, True)
        outcome = results.get(entry.index) if results is not None else None
        image = source.image(entry.index) if "overlay" in request.formats or outcome is None else None
        if outcome is not None and outcome.prediction is not None:
            ids = outcome.prediction.unpack()
        else:
            ids = bundle.predictor.predict([image])[0]
        files += write_prediction(target, out, ids, image, label_map, convention, request.formats)
        ctx.progress(ExportProgress(done, total))
    if request.metrics is not None:
        write_metrics_json(out / "metrics.json", request.metrics)
        write_metrics_csv(out / "per_class.csv", request.class_rows)
        files += [out / "metrics.json", out / "per_class.csv"]
    files.append(_write_manifest(source, bundle, label_map, convention, request, total, False))
    return ExportSummary(out, total, files, False)


def _write_manifest(source: Any, bundle: Any, label_map: Any, convention: Any, request: ExportRequest,
                    written: int, cancelled: bool) -> Path:
    """manifest.json: the model and its revision, labels, the split or dropped files, counts, versions."""
    from segstudio.core.export import build_manifest, write_manifest

    dataset = getattr(source, "dataset", None)
    paths = getattr(source, "paths", None)
    images = len(request.indices)
    corrections = getattr(dataset, "corrections", None)
    manifest = build_manifest(
        "export", bundle.loaded, bundle.predictor, label_map=label_map, convention=convention,
        dataset=dataset.source if dataset is not None else None, split=source.split if dataset is not None else None,
        corrections=corrections.to_json_dict() if corrections is not None else None,
        inputs=[str(paths[i]) for i in request.indices] if paths is not None else None, images=images,
        written=written, skipped=images - written if request.formats else 0,
        extra={"formats": list(request.formats), "metrics": request.metrics is not None, "cancelled": cancelled})
    return write_manifest(request.output_dir, manifest)

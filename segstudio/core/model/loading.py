"""Loading SegFormer checkpoints (demo, scratch, local folder, Hub id), saving them, and picking a device.

Weights always load as float32 on the CPU; the :class:`LoadReport` says in plain words what did not load and
why (an encoder-only checkpoint, a classifier resized to another label map, the 150-vs-151 trap).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from segstudio.core.file_modes import share_as_umask_allows
from segstudio.core.labels.label_map import IGNORE_INDEX, LabelConvention, LabelMap, LabelMapError
from segstudio.core.model.checkpoint_files import (
    check_config,
    check_json_object,
    processor_dict,
    read_json_object,
    too_deep,
)
from segstudio.core.model.location import TRY_INSTEAD as _TRY_INSTEAD
from segstudio.core.model.location import ModelLoadError, locate_model

if TYPE_CHECKING:  # imported where used: transformers takes 2.5-3 s to import, which predict can skip
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessorPil

DEFAULT_IMAGE_SIZE = 512
_SEGMENTATION_ARCH = "SegformerForSemanticSegmentation"


class DeviceError(ModelLoadError):
    """The requested device (cuda, mps) is not available here."""


@dataclass
class LoadReport:
    """What loading did to the weights, and the notes a person should read before trusting predictions."""

    source: str
    newly_initialized: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    num_labels: int = 0
    notes: list[str] = field(default_factory=list)
    checkpoint_num_labels: int | None = None

    @property
    def ok(self) -> bool:
        """True when every weight of the model came from the checkpoint."""
        return not self.newly_initialized and not self.mismatched

    def summary(self) -> str:
        """A few readable lines for the console or a dialog."""
        lines = [f"model {self.source}: {self.num_labels} classes"]
        if self.source == "scratch":
            lines.append(f"all {len(self.newly_initialized)} tensors randomly initialised")
        else:
            lines += _describe_new(self.newly_initialized)
        if self.mismatched:
            lines.append(self._describe_mismatch())
        if self.unexpected:
            shown = ", ".join(self.unexpected[:3]) + (", ..." if len(self.unexpected) > 3 else "")
            lines.append(f"{len(self.unexpected)} checkpoint tensors not used by this model ({shown})")
        lines += self.notes
        if self.ok and not self.unexpected and not self.notes:
            lines.append("all weights loaded from the checkpoint")
        return "\n".join(lines)

    def _describe_mismatch(self) -> str:
        if not all(name.startswith("decode_head.classifier.") for name, _, _ in self.mismatched):
            name, saved, wanted = self.mismatched[0]
            return (
                f"{len(self.mismatched)} tensors have another shape in the checkpoint and were re-initialised "
                f"(e.g. {name}: {list(saved)} vs {list(wanted)}) — the config does not match the weights"
            )
        old, new = self.checkpoint_num_labels, self.num_labels
        text = (
            f"classifier re-initialised ({len(self.mismatched)} tensors): the checkpoint has {old} classes, "
            f"the label map {new} — fine-tune before use"
        )
        if old is not None and abs(old - new) == 1:
            text += "\n" + _off_by_one_note(old, new)
        return text


def _describe_new(names: list[str]) -> list[str]:
    if not names:
        return []
    if all(name.startswith("decode_head.") for name in names):
        return [
            f"decode head newly initialised ({len(names)} tensors): expected for an encoder-only checkpoint "
            "such as nvidia/mit-b0 — fine-tune before use"
        ]
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return [
        f"{len(names)} tensors newly initialised (random, not in the checkpoint: {shown}) — fine-tune before use"
    ]


def _off_by_one_note(checkpoint: int, label_map: int) -> str:
    """The 150-vs-151 explanation: its cause and its fix."""
    if label_map == checkpoint + 1:
        return (
            f'  cause: the label map counts 0 "other" as a class ({label_map} values) while the checkpoint was '
            f"trained with reduce_labels ({checkpoint} classes, 0 ignored); fix: --reduce-labels, or a "
            f"--label-map with the checkpoint's {checkpoint} classes"
        )
    return (
        f'  cause: the checkpoint has {checkpoint} classes including 0 "other" (trained without '
        f"reduce_labels) while the label map was reduced to {label_map}; fix: --no-reduce-labels with a "
        f"{checkpoint}-class --label-map, or fine-tune"
    )


@dataclass
class LoadedModel:
    """A model ready for inference or fine-tuning, with the labels and convention it predicts in."""

    model: SegformerForSemanticSegmentation
    processor: Any
    label_map: LabelMap
    convention: LabelConvention
    report: LoadReport
    source: str

    @property
    def image_size(self) -> tuple[int, int]:
        """The (height, width) images are resized to before the model sees them."""
        return processor_size(self.processor)


def processor_size(processor: Any) -> tuple[int, int]:
    """(height, width) from an image processor's ``size`` (a dict or a SizeDict)."""
    size = processor.size
    get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)
    height, width = get("height"), get("width")
    if height and width:
        return int(height), int(width)
    edge = get("shortest_edge") or DEFAULT_IMAGE_SIZE
    return int(edge), int(edge)


def new_processor(image_size: int = DEFAULT_IMAGE_SIZE) -> SegformerImageProcessorPil:
    """SegFormer's processor defaults (ImageNet mean/std, bilinear), never reducing labels itself."""
    from transformers import SegformerImageProcessorPil

    return SegformerImageProcessorPil(
        size={"height": image_size, "width": image_size}, do_reduce_labels=False
    )


@contextlib.contextmanager
def transformers_bars_off() -> Iterator[None]:
    """No progress bars from transformers (and the Hub) inside: ours report, and theirs would break into them."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars; we print our own report."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with transformers_bars_off():
            yield
    finally:
        hf_logging.set_verbosity(verbosity)


def load_model(
    spec: str,
    *,
    label_map: LabelMap | None = None,
    reduce_labels: bool | None = None,
    image_size: int | None = None,
    revision: str | None = None,
) -> LoadedModel:
    """Load ``demo``, ``scratch``, a local ``save_pretrained`` folder or a Hub id, as float32 on the CPU."""
    spec = str(spec).strip()
    if spec == "scratch":
        return _load_scratch(label_map, reduce_labels, image_size)
    location = locate_model(spec)
    with _quiet_transformers():
        return _load_pretrained(spec, location, label_map, reduce_labels, image_size, revision)


def hub_unreachable(spec: str) -> ModelLoadError:
    """The error for a Hub model that is not cached while the Hub cannot be reached."""
    return ModelLoadError(f"{spec} is not in the local cache and the Hugging Face Hub is unreachable; {_TRY_INSTEAD}")


def loaded_without_transformers(spec: str, location: str, model: Any, processor: Any, raw: dict) -> LoadedModel:
    """A model that the fast path read (``segformer_light.load_light``), with labels chosen as ``load_model``
    chooses them for ``location``."""
    notes: list[str] = []
    chosen, _override, _default_ade = _choose_labels(spec, location, raw, None, notes)
    recorded = processor.do_reduce_labels
    processor.do_reduce_labels = False
    report = LoadReport(
        source=spec, num_labels=chosen.num_labels, notes=notes, checkpoint_num_labels=len(raw["id2label"])
    )
    return LoadedModel(model, processor, chosen, LabelConvention(recorded, recorded_ignore_index(raw)), report, spec)


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from or during (transformers wraps the Hub's typed errors in OSError)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _hub_error(spec: str, location: str, exc: BaseException) -> ModelLoadError:
    """Turn transformers/huggingface_hub errors into one line a person can act on, by their types."""
    from huggingface_hub import errors as hub

    try:  # huggingface_hub's HTTP client, where installed
        import httpx

        network: tuple[type[BaseException], ...] = (httpx.NetworkError, httpx.TimeoutException)
    except ImportError:
        network = ()

    chain = _causes(exc)
    text = " ".join(str(exc).split())

    def raised(*types: type[BaseException]) -> bool:
        return any(isinstance(error, types) for error in chain)

    if Path(location).is_dir():
        if raised(json.JSONDecodeError, UnicodeDecodeError):
            return ModelLoadError(f"the config.json of {spec} is not valid JSON")
        if not any((Path(location) / name).is_file() for name in WEIGHT_FILES):
            return ModelLoadError(f"{spec} has no weights (model.safetensors or pytorch_model.bin)")
        return ModelLoadError(f"cannot load {spec}: {text[:200]}")
    if raised(hub.GatedRepoError):
        return ModelLoadError(f"{spec} is a gated model: accept its terms on the Hub and log in (hf auth login)")
    if raised(hub.RepositoryNotFoundError, hub.RevisionNotFoundError):
        return ModelLoadError(
            f"no model {spec!r} on the Hugging Face Hub and no such local folder; check the name"
        )
    if raised(hub.LocalEntryNotFoundError, hub.OfflineModeIsEnabled, ConnectionError, *network):
        return hub_unreachable(spec)
    return ModelLoadError(f"cannot load {spec}: {text[:200]}")


def _read_config(spec: str, location: str, revision: str | None) -> tuple[dict, SegformerConfig]:
    """The raw config dict (to see which keys were really saved) and the parsed config."""
    from transformers import SegformerConfig

    if Path(location).is_dir():
        if not (Path(location) / "config.json").exists():
            raise ModelLoadError(f"{spec} has no config.json: not a saved model folder")
        raw = read_json_object(Path(location) / "config.json", spec)
    else:
        try:
            raw, _ = SegformerConfig.get_config_dict(location, revision=revision)
        except RecursionError:
            raise too_deep("config.json", spec) from None
        except (OSError, ValueError) as exc:
            raise _hub_error(spec, location, exc) from None
        raw = check_json_object(raw, "config.json", spec)
    model_type = raw.get("model_type")
    if model_type != "segformer":
        raise ModelLoadError(f"{spec} is a {model_type or 'unknown'} model, not SegFormer")
    check_config(raw, spec)
    try:
        config = SegformerConfig.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{spec} has an invalid config.json: {exc}") from None
    return raw, config


def _choose_labels(
    spec: str, location: str, raw: dict, label_map: LabelMap | None, notes: list[str]
) -> tuple[LabelMap, bool, bool]:
    """(label map, override the config's id2label, ADE20K chosen by default) for this checkpoint."""
    segmentation = _SEGMENTATION_ARCH in (raw.get("architectures") or [_SEGMENTATION_ARCH])
    names = _checkpoint_names(raw)
    if label_map is not None:
        same = names == label_map.id2label
        if segmentation and names is not None and not same and len(names) == label_map.num_labels:
            notes.append("class names taken from the given label map (the checkpoint names them differently)")
        return label_map, not same, False
    if not segmentation:
        notes.append("encoder-only checkpoint: using the 150 ADE20K classes (pass --label-map for others)")
        return LabelMap.ade20k(), True, True
    if "id2label" not in raw:
        raise ModelLoadError(f"{spec} has no id2label (class names) in config.json; pass --label-map")
    try:
        from_config = LabelMap.from_id2label(names or {})
    except LabelMapError as exc:
        raise ModelLoadError(f"{spec} has an invalid id2label in config.json ({exc})") from None
    return _saved_label_map(location, from_config), False, False


def _checkpoint_names(raw: dict) -> dict[int, str] | None:
    """The config's id2label with integer keys, or None when it is missing or malformed."""
    try:
        return {int(k): str(v) for k, v in raw["id2label"].items()}
    except (KeyError, ValueError, TypeError, AttributeError):
        return None


def _saved_label_map(location: str, from_config: LabelMap) -> LabelMap:
    """The label map with the palette save_checkpoint kept in labels.json, when it names the same classes."""
    path = Path(location) / "labels.json"
    if not path.is_file():
        return from_config
    try:
        saved = LabelMap.from_json(path)
    except LabelMapError:
        return from_config
    return saved if saved.id2label == from_config.id2label else from_config


def _load_weights(
    spec: str, location: str, config: SegformerConfig, revision: str | None
) -> tuple[SegformerForSemanticSegmentation, dict]:
    from transformers import SegformerForSemanticSegmentation

    try:
        model, info = SegformerForSemanticSegmentation.from_pretrained(
            location,
            config=config,
            revision=revision,
            dtype=torch.float32,
            output_loading_info=True,
            ignore_mismatched_sizes=True,
            weights_only=True,
            trust_remote_code=False,
        )
    except (OSError, ValueError) as exc:
        raise _hub_error(spec, location, exc) from None
    except pickle.UnpicklingError:  # torch's weights-only loader met something other than tensors, and ran nothing
        raise ModelLoadError(
            f"the pytorch_model.bin of {spec} holds pickled objects other than tensors, which SegStudio never runs; "
            "use the model's model.safetensors instead"
        ) from None
    except Exception as exc:  # safetensors raises its own SafetensorError for truncated files
        text = " ".join(str(exc).split())[:200]
        raise ModelLoadError(f"the weights of {spec} are damaged or incomplete ({text})") from None
    return model.to(device="cpu", dtype=torch.float32).eval(), info


def _refuse_foreign_head(spec: str, info: dict, named: int) -> None:
    """A checkpoint whose own id2label does not fit its classifier would predict with a random head: refused."""
    for name, saved, _wanted in info.get("mismatched_keys", ()):
        if name == "decode_head.classifier.bias":
            raise ModelLoadError(
                f"the config.json of {spec} names {named} classes (id2label) but its weights hold a "
                f"{int(saved[0])}-class head; fix id2label to name all {int(saved[0])} classes"
            )


def _load_processor(spec: str, location: str, revision: str | None, notes: list[str]) -> tuple[Any, bool | None]:
    """The PIL processor and the ``do_reduce_labels`` the checkpoint recorded (None if it has no config), legacy
    keys (``reduce_labels``, an int ``size``) read as transformers 4.x read them."""
    from transformers import SegformerImageProcessorPil

    raw = _processor_config(spec, location, revision)
    if raw is None:
        notes.append("no preprocessor_config.json: using SegFormer's default preprocessing (512x512)")
        return new_processor(), None
    try:
        processor = SegformerImageProcessorPil.from_dict(processor_dict(raw, spec))
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{spec} has an invalid preprocessor_config.json: {exc}") from None
    recorded = bool(getattr(processor, "do_reduce_labels", False))
    processor.do_reduce_labels = False
    return processor, recorded


def _processor_config(spec: str, location: str, revision: str | None) -> dict | None:
    """The raw preprocessor_config.json of a local folder or a Hub model, or None when it has none."""
    from transformers import SegformerImageProcessorPil

    path = Path(location) / "preprocessor_config.json"
    if Path(location).is_dir():
        return read_json_object(path, spec) if path.exists() else None
    try:
        raw, _ = SegformerImageProcessorPil.get_image_processor_dict(location, revision=revision)
    except RecursionError:
        raise too_deep(path.name, spec) from None
    except (OSError, ValueError):
        return None
    return check_json_object(raw, path.name, spec)


def _load_pretrained(
    spec: str,
    location: str,
    label_map: LabelMap | None,
    reduce_labels: bool | None,
    image_size: int | None,
    revision: str | None,
) -> LoadedModel:
    notes: list[str] = []
    raw, config = _read_config(spec, location, revision)
    chosen, override, default_ade = _choose_labels(spec, location, raw, label_map, notes)
    if override:
        config.id2label = dict(chosen.id2label)
        config.label2id = chosen.label2id
    processor, recorded = _load_processor(spec, location, revision, notes)
    model, info = _load_weights(spec, location, config, revision)
    if not override:
        _refuse_foreign_head(spec, info, chosen.num_labels)
    if image_size:
        processor.size = {"height": int(image_size), "width": int(image_size)}
    if reduce_labels is None:
        reduce_labels = True if default_ade else bool(recorded)
        if recorded is None and not default_ade:
            notes.append("the checkpoint does not record do_reduce_labels: assuming False")
    report = LoadReport(
        source=spec,
        newly_initialized=sorted(info.get("missing_keys", ())),
        mismatched=sorted((name, tuple(a), tuple(b)) for name, a, b in info.get("mismatched_keys", ())),
        unexpected=sorted(info.get("unexpected_keys", ())),
        num_labels=chosen.num_labels,
        notes=notes,
        checkpoint_num_labels=len(raw["id2label"]) if "id2label" in raw else None,
    )
    return LoadedModel(model, processor, chosen, LabelConvention(bool(reduce_labels), recorded_ignore_index(raw)),
                       report, spec)


def recorded_ignore_index(raw: dict) -> int:
    """The ignore index the checkpoint was trained with (``semantic_loss_ignore_index``, which ``train`` sets to the
    dataset's), so a model of over 255 classes trained with ``--ignore-index 65535`` predicts without the flag
    again; 255 where the config has none or a value no mask can hold."""
    value = raw.get("semantic_loss_ignore_index", IGNORE_INDEX)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    return IGNORE_INDEX


def _load_scratch(
    label_map: LabelMap | None, reduce_labels: bool | None, image_size: int | None
) -> LoadedModel:
    """A randomly initialised mit-b0-sized SegFormer, the same every time (seed 0, global RNG untouched)."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    chosen = label_map or LabelMap.ade20k()
    config = SegformerConfig(id2label=dict(chosen.id2label), label2id=chosen.label2id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SegformerForSemanticSegmentation(config).to(dtype=torch.float32).eval()
    if reduce_labels is None:
        reduce_labels = label_map is None
    report = LoadReport(
        source="scratch",
        newly_initialized=sorted(model.state_dict()),
        num_labels=chosen.num_labels,
        notes=["randomly initialised (mit-b0 architecture): predictions are noise until fine-tuned"],
    )
    processor = new_processor(image_size or DEFAULT_IMAGE_SIZE)
    return LoadedModel(model, processor, chosen, LabelConvention(bool(reduce_labels)), report, "scratch")


def save_checkpoint(
    model: SegformerForSemanticSegmentation,
    processor: Any,
    label_map: LabelMap,
    convention: LabelConvention,
    out_dir: str | Path,
) -> Path:
    """Write config.json, float32 model.safetensors and preprocessor_config.json as one folder, atomically.

    The folder is built beside ``out_dir`` and renamed into place; an existing folder is replaced.
    """
    out_dir = Path(out_dir)
    if model.config.num_labels != label_map.num_labels:
        raise ValueError(
            f"the model has {model.config.num_labels} classes, the label map {label_map.num_labels}"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging-"))
    try:
        _write_checkpoint(model, processor, label_map, convention, staging)
        share_as_umask_allows(staging)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _write_checkpoint(
    model, processor, label_map: LabelMap, convention: LabelConvention, folder: Path
) -> None:
    model.config.id2label = dict(label_map.id2label)
    model.config.label2id = label_map.label2id
    state = None
    if any(t.dtype.is_floating_point and t.dtype != torch.float32 for t in model.state_dict().values()):
        state = {
            k: (v.detach().float() if v.dtype.is_floating_point else v).cpu()
            for k, v in model.state_dict().items()
        }
    with _quiet_transformers():
        model.save_pretrained(folder, state_dict=state)
    if state is not None:  # save_pretrained records the in-memory dtype; the file holds float32
        config_path = folder / "config.json"
        saved_config = json.loads(config_path.read_text(encoding="utf-8"))
        saved_config["dtype"] = "float32"
        config_path.write_text(json.dumps(saved_config, indent=2, sort_keys=True), encoding="utf-8")
    saved = processor.__class__.from_dict(processor.to_dict())
    saved.do_reduce_labels = convention.reduce_labels
    saved.save_pretrained(folder)
    (folder / "labels.json").write_text(
        json.dumps({**label_map.to_json_dict(), **convention.to_json_dict()}, indent=2), encoding="utf-8"
    )


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``, moving an existing folder aside first and deleting it after."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
        os.replace(out_dir, old / out_dir.name)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def resolve_device(name: str) -> torch.device:
    """``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; DeviceError if unavailable."""
    name = (name or "auto").strip().lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                "CUDA is not available here (no NVIDIA GPU or a CPU-only torch); use --device cpu"
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"{name} does not exist: {torch.cuda.device_count()} CUDA device(s) found")
        return device
    if name == "mps":
        if not mps_ok:
            raise DeviceError("MPS (Apple GPU) is not available here; use --device cpu")
        return torch.device("mps")
    raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or mps")

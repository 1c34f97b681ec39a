"""Label maps and the one place that maps dataset ids to model ids and back.

Every other module asks a :class:`LabelConvention` to convert masks; nothing else reduces labels, so the
0 / 255 / reduce_labels / 150-vs-151 trap is handled exactly once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from segstudio.core.errors import SegStudioError

IGNORE_INDEX = 255
ADE20K_RESOURCE = "ade20k-150.json"


class LabelMapError(SegStudioError, ValueError):
    """A label map file is missing, unreadable or malformed."""


def _default_palette(num_labels: int) -> np.ndarray:
    """A deterministic, well-spread palette for label maps that bring none."""
    rng = np.random.default_rng(1234)
    return rng.integers(30, 256, size=(num_labels, 3), dtype=np.uint8)


@dataclass(frozen=True)
class LabelMap:
    """Model class ids 0..K-1 with names and RGB colours."""

    id2label: dict[int, str]
    palette: np.ndarray = field(compare=False)

    def __post_init__(self) -> None:
        ids = sorted(self.id2label)
        if ids != list(range(len(ids))):
            raise LabelMapError(f"class ids must be 0..{len(ids) - 1} without gaps, got {ids[:5]}...")
        palette = np.asarray(self.palette, dtype=np.uint8).reshape(-1, 3)
        if len(palette) < len(ids):
            palette = np.concatenate([palette, _default_palette(len(ids))[len(palette) :]])
        object.__setattr__(self, "palette", palette[: len(ids)])

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in self.id2label.items()}

    def name(self, class_id: int) -> str:
        """The class name, or a readable stand-in for ignore and out-of-range ids."""
        if class_id == IGNORE_INDEX and class_id not in self.id2label:
            return "ignored"
        return self.id2label.get(int(class_id), f"unknown ({class_id})")

    def digest(self) -> str:
        """A short hash of id2label, to trace which label map a result was made with."""
        text = json.dumps({str(k): v for k, v in sorted(self.id2label.items())}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json_dict(self) -> dict:
        return {
            "id2label": {str(k): v for k, v in sorted(self.id2label.items())},
            "palette": self.palette.tolist(),
        }

    @classmethod
    def from_names(cls, names: list[str], palette: np.ndarray | None = None) -> LabelMap:
        id2label = dict(enumerate(names))
        return cls(id2label, palette if palette is not None else ade20k_palette_for(names))

    @classmethod
    def from_synonyms(cls, synonyms: list[tuple[str, ...]]) -> LabelMap:
        """Names from each class's synonyms (objectInfo150.txt): the ADE20K name of the same id where it is one of
        them (so the release's file gives transformers' ADE id2label exactly), else the first synonym."""
        ade = _ade20k().id2label
        names = [
            ade[i] if ade.get(i, "").strip() in {word.strip() for word in words} else words[0]
            for i, words in enumerate(synonyms)
        ]
        return cls.from_names(names)

    @classmethod
    def from_id2label(cls, id2label: Mapping, palette: np.ndarray | None = None) -> LabelMap:
        """From a config's id2label (keys may be strings); ADE20K colours where the names match."""
        mapping = {int(k): str(v) for k, v in id2label.items()}
        if len(mapping) < len(id2label):
            same = sorted(str(k) for k in id2label if sum(int(j) == int(k) for j in id2label) > 1)
            raise LabelMapError(f"the id2label keys {', '.join(repr(k) for k in same)} are the same class id: "
                                "keep one key per id")
        if palette is None:
            palette = ade20k_palette_for(list(mapping[i] for i in sorted(mapping)))
        return cls(mapping, palette)

    @classmethod
    def from_json(cls, path: str | Path) -> LabelMap:
        """Read ``{"id2label": {...}, "palette": [[r, g, b], ...]}`` (palette optional)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"), object_pairs_hook=_no_repeated_keys)
            id2label = data.get("id2label", data)
            palette = data.get("palette")
            return cls.from_id2label(id2label, None if palette is None else _palette_array(palette))
        except FileNotFoundError:
            raise LabelMapError(f"label map not found: {path}") from None
        except RecursionError:
            raise LabelMapError(f"cannot read label map {path}: nested too deeply to be a label map") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LabelMapError(f"cannot read label map {path}: {exc}") from None

    @classmethod
    def ade20k(cls) -> LabelMap:
        """The 150 ADE20K SceneParsing classes (model ids 0..149) with the mmsegmentation palette."""
        return _ade20k()


def _no_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object as a dict; ValueError when a key appears twice (json keeps the last without a word)."""
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice; keep one")
        seen[key] = value
    return seen


def _palette_array(palette) -> np.ndarray:
    """A label map file's palette as uint8 colours; ValueError unless it is [[r, g, b], ...] of whole 0-255."""
    message = "the palette must be a list of [r, g, b] colours, each a whole number from 0 to 255"
    try:
        values = np.asarray(palette, dtype=np.float64)
    except (ValueError, TypeError):
        raise ValueError(message) from None
    if (values.ndim != 2 or values.shape[1] != 3
            or not np.all((values >= 0) & (values <= 255) & (values == np.round(values)))):
        raise ValueError(message)
    return values.astype(np.uint8)


def _ade20k() -> LabelMap:
    text = resources.files("segstudio.resources").joinpath(ADE20K_RESOURCE).read_text(encoding="utf-8")
    data = json.loads(text)
    return LabelMap({int(k): v for k, v in data["id2label"].items()}, np.asarray(data["palette"], np.uint8))


def ade20k_palette_for(names: list[str]) -> np.ndarray:
    """ADE20K colours for names that are ADE20K classes, a stable fallback colour for the rest."""
    ade = _ade20k()
    by_name = {name.strip(): ade.palette[i] for i, name in ade.id2label.items()}
    fallback = _default_palette(len(names))
    return np.stack([by_name.get(n.strip(), fallback[i]) for i, n in enumerate(names)]).astype(np.uint8)


def _narrowest(ids: np.ndarray) -> np.ndarray:
    """uint8 when every id fits (PNG-friendly), uint16 next, else int32."""
    lo, hi = (int(ids.min()), int(ids.max())) if ids.size else (0, 0)
    if lo >= 0 and hi < 256:
        return ids.astype(np.uint8)
    if lo >= 0 and hi < 65536:
        return ids.astype(np.uint16)
    return ids.astype(np.int32)


@dataclass(frozen=True)
class LabelConvention:
    """How a dataset stores class ids, and the conversion to the model's ids.

    ``reduce_labels=True`` (ADE20K): dataset id 0 is "other" and becomes ``ignore_index``; dataset id k+1 is
    model id k. ``reduce_labels=False``: dataset id k is model id k; only ``ignore_index`` is ignored.
    """

    reduce_labels: bool
    ignore_index: int = IGNORE_INDEX

    def to_model_ids(self, dataset_mask: np.ndarray) -> np.ndarray:
        """Dataset ids -> model ids: uint8 when they fit (they do for ADE20K), else int32."""
        mask = np.asarray(dataset_mask)
        if not self.reduce_labels:
            return mask
        wide = mask.astype(np.int32)
        out = wide - 1
        out[wide == 0] = self.ignore_index
        # The ignore value in the dataset stays ignored (255 - 1 must not become class 254).
        out[wide == self.ignore_index] = self.ignore_index
        return _narrowest(out)

    def to_dataset_ids(self, model_ids: np.ndarray) -> np.ndarray:
        """Model ids -> dataset ids, e.g. for export so a predicted PNG compares with its ground truth."""
        ids = np.asarray(model_ids)
        if not self.reduce_labels:
            return ids
        wide = ids.astype(np.int32) + 1
        wide[ids == self.ignore_index] = 0
        return _narrowest(wide)

    def stray_values(self, dataset_mask: np.ndarray, num_labels: int) -> np.ndarray:
        """Dataset ids that map to no class and are not ignored (reported, never clipped)."""
        values = np.unique(np.asarray(dataset_mask))
        model = self.to_model_ids(values)
        bad = (model != self.ignore_index) & ((model < 0) | (model >= num_labels))
        return values[bad]

    def dataset_dtype(self, num_labels: int) -> type:
        """The mask type that holds every dataset id of ``num_labels`` classes: uint8 up to id 255 (8-bit PNG),
        uint16 up to 65535 (16-bit PNG), int32 beyond."""
        top = num_labels if self.reduce_labels else num_labels - 1
        return np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.int32

    def require_ignore_outside(self, num_labels: int) -> None:
        """LabelMapError when the default ignore index 255 is also a class (more than 255 classes): that class
        would be dropped from scores and exported as 0 or as the ignore value."""
        if self.ignore_index == IGNORE_INDEX < num_labels:
            raise LabelMapError(
                f"the ignore index {IGNORE_INDEX} is also class {IGNORE_INDEX} of these {num_labels} classes: "
                f"choose an ignore index outside 0..{num_labels - 1}, e.g. --ignore-index 65535"
            )

    def to_json_dict(self) -> dict:
        return {"reduce_labels": self.reduce_labels, "ignore_index": self.ignore_index}


def labels_json(label_map: LabelMap, convention: LabelConvention) -> dict:
    """The ``labels.json`` written beside exported masks; ``mask_bits`` is the index PNGs' depth (8 or 16)."""
    bits = 8 * np.dtype(convention.dataset_dtype(label_map.num_labels)).itemsize
    return {**label_map.to_json_dict(), **convention.to_json_dict(), "mask_bits": bits}

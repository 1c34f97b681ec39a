"""One image's ground truth being edited (no Qt): the tools as operations on the mask, strokes, and the score.

The mask is edited in place; every operation returns the :class:`MaskChange` it applied, so a caller can undo it.
Values are model ids (the viewer's); the eraser puts back the mask the session started from, "adopt" takes the
model's prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from segstudio.core.review.mask_edit import (
    MaskChange,
    Point,
    Region,
    brush_region,
    change_to,
    connected_region,
    flood_region,
    merge_changes,
    polygon_region,
)

if TYPE_CHECKING:
    from segstudio.core.metrics.confusion import ImageConfusion

BRUSH_TOOLS = ("brush", "eraser", "adopt")  # tools swept along the mouse's path


@dataclass(frozen=True)
class ImageScore:
    """The edited mask scored against the prediction as the evaluation scores an image."""

    mean_iou: float
    pixel_accuracy: float


class MaskEditSession:
    """Edits ``mask`` in place; ``original`` is what the eraser restores, ``prediction`` what "adopt" takes."""

    def __init__(self, mask: np.ndarray, original: np.ndarray, prediction: np.ndarray | None,
                 ignore_index: int) -> None:
        if original.shape != mask.shape or (prediction is not None and prediction.shape != mask.shape):
            raise ValueError("the mask, its original and the prediction must have one shape")
        self.mask, self.original, self.prediction = mask, original, prediction
        self.ignore_index = int(ignore_index)
        self._stroke: list[MaskChange] = []

    def _target(self, tool: str, value: int | None) -> int | np.ndarray:
        if tool == "eraser":
            return self.original
        if tool in ("adopt", "adopt_region"):
            if self.prediction is None:
                raise ValueError("there is no prediction to adopt yet")
            return self.prediction
        if value is None:
            raise ValueError("pick a class first")
        return value

    def _apply(self, region: Region, new: int | np.ndarray) -> MaskChange:
        change = change_to(self.mask, region, new)
        change.apply(self.mask)
        return change

    def dab(self, tool: str, start: Point, end: Point, diameter: float, value: int | None = None) -> MaskChange:
        """Sweep a brush tool from ``start`` to ``end`` as part of the current stroke."""
        if tool not in BRUSH_TOOLS:
            raise ValueError(f"{tool!r} is not a brush tool")
        change = self._apply(brush_region(self.mask.shape, start, end, diameter), self._target(tool, value))
        self._stroke.append(change)
        return change

    def finish_stroke(self) -> MaskChange | None:
        """The current stroke's dabs as one change (None when it changed nothing)."""
        changes, self._stroke = [c for c in self._stroke if c.pixels], []
        return merge_changes(changes) if changes else None

    def fill(self, x: int, y: int, value: int) -> MaskChange:
        """Flood-fill the 4-connected region of equal id under pixel (x, y)."""
        return self._apply(flood_region(self.mask, x, y), self._target("fill", value))

    def polygon(self, points: Sequence[tuple[int, int]], value: int) -> MaskChange:
        """Fill the polygon through these pixels."""
        return self._apply(polygon_region(self.mask.shape, points), self._target("polygon", value))

    def error_region(self, x: int, y: int, suspects: np.ndarray | None = None) -> Region:
        """The connected suspected-label-error region under (x, y); without a suspects map, the connected
        region of labelled pixels that disagree with the prediction."""
        if suspects is None:
            if self.prediction is None:
                raise ValueError("there is no prediction to compare with yet")
            suspects = (self.mask != self.prediction) & (self.mask != self.ignore_index)
        return connected_region(suspects, x, y)

    def adopt_region(self, x: int, y: int, suspects: np.ndarray | None = None) -> MaskChange:
        """Take the prediction over the whole error region under (x, y) (see :meth:`error_region`)."""
        return self._apply(self.error_region(x, y, suspects), self._target("adopt_region", None))

    def changed_pixels(self) -> int:
        """Pixels that differ from the original."""
        return int(np.count_nonzero(self.mask != self.original))

    def confusion(self, num_labels: int) -> ImageConfusion | None:
        """The image's sparse confusion of the prediction against the edited mask, as the evaluation scores an
        image (None without a prediction)."""
        from segstudio.core.metrics.confusion import ConfusionMatrix

        if self.prediction is None:
            return None
        return ConfusionMatrix(num_labels, self.ignore_index).update(self.prediction, self.mask)

    def score(self, num_labels: int) -> ImageScore | None:
        """Mean IoU and pixel accuracy of the prediction against the edited mask (None without a prediction)."""
        confusion = self.confusion(num_labels)
        return None if confusion is None else ImageScore(float(confusion.mean_iou), float(confusion.pixel_accuracy))

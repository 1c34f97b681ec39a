"""The third pane's "Suspected label errors" layer: the shown image's suspected pixels, computed on demand.

The split's per-class thresholds come from the evaluation pass (the core's ``LabelIssueReport``); the map of the
image on screen needs its probabilities again, so it is computed in the job runner once the person has stayed on
the image a moment, only while that layer is shown, as the inspector does for its probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer

JOB = "suspects"
SETTLE_MS = 250


def compute_suspects(predictor: Any, image: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The core's suspected map of one image (worker thread)."""
    from PIL import Image

    from segstudio.core.review import suspected_map

    [(_key, ids, given, top)] = list(predictor.predict_confidence_iter([(0, Image.fromarray(image), labels)]))
    return suspected_map(labels, ids, given, top, thresholds)


class SuspectsController(QObject):
    """Keeps the viewer's suspected-label-error map in step with the image, model and thresholds shown."""

    def __init__(self, viewer: Any, review: Any, jobs_runner: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.review, self.jobs = viewer, review, jobs_runner
        self._pending: tuple | None = None
        self._shown: tuple | None = None
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS, timeout=self.ensure)
        viewer.content_changed.connect(self._settle.start)
        viewer.analysis_changed.connect(lambda _mode: self.ensure())
        review.progress_done.connect(lambda _text: self.ensure())  # an evaluation ended: thresholds may be new

    def _report(self) -> Any:
        results = self.review.results(create=False)
        return results.label_issues if results is not None else None

    def _key(self) -> tuple | None:
        content, bundle, report = self.viewer.content, self.review.bundle, self._report()
        if content is None or bundle is None or report is None or content.ground_truth is None:
            return None
        return bundle.token, id(content.image), id(report)

    def ensure(self) -> None:
        """Compute the shown image's map if the layer is on and it is not there yet."""
        if self.viewer.analysis != "suspects":
            return
        key = self._key()
        if key is None or key == self._pending or (key == self._shown and self.viewer.suspects is not None):
            return
        content, predictor = self.viewer.content, self.review.bundle.predictor
        image, labels, thresholds = content.image, content.ground_truth, self._report().thresholds
        self._pending = key
        self.jobs.submit(JOB, lambda ctx: (key, compute_suspects(predictor, image, labels, thresholds)),
                         on_result=self._on_result, on_error=self._on_error)

    def _on_result(self, value: tuple[tuple, np.ndarray]) -> None:
        key, suspects = value
        if self._pending == key:
            self._pending = None
        if key != self._key():
            self.ensure()  # another image, model or evaluation is on screen now
            return
        self._shown = key
        self.viewer.set_suspects(suspects)

    def _on_error(self, info: Any) -> None:
        self._pending = None
        self.review.status.emit(f"Suspected label errors: {info.message}")

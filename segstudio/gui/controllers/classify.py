"""The Model panel's top-5 classes: when the loaded checkpoint has a classification head (nvidia/mit-b0, say),
its classifier is loaded in the job runner and classifies the image on screen there, never on the GUI thread."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer

from segstudio.gui.widgets.model_panel import TOP_CLASSES, ModelPanel
from segstudio.gui.workers.worker import ErrorInfo

LOAD_JOB, CLASSIFY_JOB = "classifier", "classify"
SETTLE_MS = 250  # as the inspector: an image shown this long is classified


def load_panel_classifier(spec: str, device: str) -> Any:
    """The checkpoint's classifier, or None when it has no classification head (worker)."""
    from segstudio.gui.workers.jobs import import_core

    import_core("model")
    from segstudio.core.inference import (
        NotAClassifierError,
        has_classification_head,
        load_classifier,
    )

    if not has_classification_head(spec):
        return None
    try:
        return load_classifier(spec, device)
    except NotAClassifierError:
        return None


def classify_image(classifier: Any, image: np.ndarray, k: int = TOP_CLASSES) -> list:
    """The top ``k`` classes of an RGB array (worker)."""
    from PIL import Image

    return classifier.top_k([Image.fromarray(image)], k)[0]


class ClassifyController(QObject):
    """Loads the classifier when a model is loaded and classifies the shown image while the panel is visible."""

    def __init__(self, panel: ModelPanel, viewer: Any, review: Any, jobs_runner: Any,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.panel, self.viewer, self.review, self.jobs = panel, viewer, review, jobs_runner
        self.classifier: Any = None
        self.spec: str | None = None
        self.shown: tuple[int, np.ndarray] | None = None  # (classifier id, image) whose classes are on show
        self._running: tuple[int, np.ndarray] | None = None
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS, timeout=self.ensure)
        review.model_loaded.connect(self.model_loaded)
        viewer.content_changed.connect(self._on_content)
        panel.visibility_changed.connect(lambda _shown: self._settle.start())  # once the layout has settled

    def model_loaded(self, spec: str) -> None:
        """Forget the previous classifier; load this checkpoint's, if it has a classification head."""
        self.classifier, self.spec, self.shown = None, spec, None
        self.panel.set_classes(None)
        if spec == "scratch":  # a new segmentation model: no classification head to look for
            return
        device = self.review.bundle.device if self.review.bundle is not None else "auto"
        self.jobs.submit(LOAD_JOB, lambda ctx: (spec, load_panel_classifier(spec, device)),
                         on_result=self._on_classifier, on_error=self._on_load_error)

    def _on_classifier(self, value: tuple[str, Any]) -> None:
        spec, classifier = value
        if spec != self.spec:
            return  # another model was loaded meanwhile
        self.classifier = classifier
        if classifier is not None:
            self.panel.set_classes([], "Classifying the image on screen…")
            self.ensure()

    def _on_content(self) -> None:
        wanted = self._wanted()
        if wanted is not None and not self._same(wanted, self.shown):
            self.panel.set_classes([], "Classifying the image on screen…")  # not the last image's classes
        self._settle.start()

    def _on_load_error(self, info: ErrorInfo) -> None:
        self.panel.set_classes([], f"The classification head could not be loaded: {info.message}")

    def _wanted(self) -> tuple[int, np.ndarray] | None:
        content = self.viewer.content
        if self.classifier is None or content is None or not self.panel.on_screen():
            return None
        return id(self.classifier), content.image

    def ensure(self) -> None:
        """Classify the image on screen, unless its classes are shown or being computed."""
        wanted = self._wanted()
        if wanted is None or self._running is not None or self._same(wanted, self.shown):
            return
        classifier, image = self.classifier, wanted[1]
        self._running = wanted
        worker = self.jobs.submit(CLASSIFY_JOB, lambda ctx: (wanted, classify_image(classifier, image)),
                                  on_result=self._on_scores, on_error=self._on_classify_error)
        if worker is None:  # the window is closing
            self._running = None

    @staticmethod
    def _same(a: tuple[int, np.ndarray] | None, b: tuple[int, np.ndarray] | None) -> bool:
        return a is not None and b is not None and a[0] == b[0] and a[1] is b[1]

    def _on_scores(self, value: tuple[tuple[int, np.ndarray], list]) -> None:
        key, scores = value
        self._running = None
        if self._same(key, self._wanted()):
            self.shown = key
            self.panel.set_classes(scores)
        self.ensure()  # another image (or model) may be on screen by now

    def _on_classify_error(self, info: ErrorInfo) -> None:
        self._running = None
        if self.classifier is not None:
            self.panel.set_classes([], f"Classification failed: {info.message}")

"""The Model panel's top-5 classes through the real window, against transformers' own forward of the image on
screen: shown for a checkpoint with a classification head, computed in a worker, absent for segmentation models."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from imagenet_checkpoint import save_classifier

from segstudio.gui.controllers import classify as classify_job


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_classifier(tmp_path_factory.mktemp("classifier") / "mit-tiny-imagenet10", seed=1)


def reference_top5(folder: Path, image) -> list[str]:
    """The rows the panel should show, from transformers' processor and forward: "name (id)  12.3%"."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(**AutoImageProcessor.from_pretrained(folder)(images=image, return_tensors="pt")).logits[0]
    probs = logits.softmax(-1)
    order = torch.argsort(probs, descending=True)[:5].tolist()
    assert order[0] == int(logits.argmax(-1))
    return [f"{model.config.id2label[i]} ({i})  {100 * float(probs[i]):.1f}%" for i in order]


def wait_for_classes(window, qtbot) -> list[str]:
    controller = window.classify
    qtbot.waitUntil(lambda: controller.shown is not None and controller.shown[1] is window.viewer.content.image
                    and window.model_panel.classes.texts() != [], timeout=60_000)
    return window.model_panel.classes.texts()


def test_the_model_panel_shows_the_top5_of_the_image_on_screen(review_window, checkpoint, qtbot, monkeypatch,
                                                               tmp_path):
    threads = []
    original = classify_job.classify_image

    def recording(classifier, image, k=5):
        threads.append(threading.current_thread())
        return original(classifier, image, k)

    monkeypatch.setattr(classify_job, "classify_image", recording)
    window = review_window
    window.docks["model"].raise_()
    window.open_model(str(checkpoint))
    qtbot.waitUntil(lambda: window.review.bundle.spec == str(checkpoint), timeout=60_000)
    texts = wait_for_classes(window, qtbot)
    assert window.model_panel.classes.isVisible()
    assert texts == reference_top5(checkpoint, window.viewer.content.image)
    assert threads and threading.main_thread() not in threads  # never on the GUI thread
    window.model_panel.grab().save(str(tmp_path / "model-panel.png"))
    assert (tmp_path / "model-panel.png").stat().st_size > 0

    first = window.viewer.content.image
    window.dataset_panel.step(1)
    qtbot.waitUntil(lambda: window.viewer.content.image is not first, timeout=30_000)
    assert wait_for_classes(window, qtbot) == reference_top5(checkpoint, window.viewer.content.image)


def test_a_hidden_panel_classifies_nothing_until_shown(review_window, checkpoint, qtbot):
    window = review_window
    window.docks["classes"].raise_()  # the Model panel is a tab behind it
    window.open_model(str(checkpoint))
    qtbot.waitUntil(lambda: window.classify.classifier is not None, timeout=60_000)
    qtbot.wait(classify_job.SETTLE_MS * 2)
    assert window.classify.shown is None and not window.jobs.is_running(classify_job.CLASSIFY_JOB)
    window.docks["model"].raise_()
    assert wait_for_classes(window, qtbot) == reference_top5(checkpoint, window.viewer.content.image)


def test_a_segmentation_checkpoint_shows_no_classes(review_window, qtbot, tmp_path):
    from segstudio.core.model.loading import save_checkpoint

    window = review_window
    window.docks["model"].raise_()
    bundle = window.review.bundle
    folder = save_checkpoint(bundle.loaded.model, bundle.loaded.processor, bundle.loaded.label_map,
                             bundle.loaded.convention, tmp_path / "segmentation")
    window.open_model(str(folder))
    qtbot.waitUntil(lambda: window.review.bundle.spec == str(folder), timeout=60_000)
    qtbot.waitUntil(lambda: not window.jobs.is_running(classify_job.LOAD_JOB), timeout=30_000)
    assert window.classify.classifier is None and not window.model_panel.classes.isVisible()
    assert window.errors == []

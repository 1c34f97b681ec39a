"""predict against transformers: its input equals SegformerImageProcessorPil's ``pixel_values`` bit for bit, and
its masks equal ``pipeline("image-segmentation")``'s on every pixel whose top-2 logit margin exceeds 1e-3."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SegformerImageProcessorPil
from transformers.image_utils import load_image

from segstudio.core.data.demo_dataset import generate
from segstudio.core.data.imageio import read_image
from segstudio.core.inference.loading import load_for_inference
from segstudio.core.inference.predictor import Predictor
from segstudio.core.model.loading import LoadedModel, load_model
from segstudio.core.model.location import DEMO_MODEL_DIR

DEVKIT = Path(__file__).parents[1] / "fixtures" / "ade20k-devkit"
# (width, height): shrinking, enlarging, unchanged (the demo processor's 192x192), odd and extreme shapes
SHAPES = [(683, 512), (1001, 37), (37, 1001), (513, 512), (512, 513), (193, 191), (192, 192), (50, 30), (1, 1)]
MARGIN = 1e-3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo() -> LoadedModel:
    return load_for_inference(str(DEMO_MODEL_DIR), "cpu")


@pytest.fixture(scope="module")
def reference() -> SegformerImageProcessorPil:
    return SegformerImageProcessorPil.from_pretrained(DEMO_MODEL_DIR)


@pytest.fixture(scope="module")
def scenes() -> list[Image.Image]:
    """Demo scenes (which the demo model segments into several classes), 256x256."""
    _, images, _ = next(generate(3, 256, seed=11, split_id=1))
    return [Image.fromarray(image) for image in images]


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def pixel_values(processor: SegformerImageProcessorPil, image: Image.Image) -> torch.Tensor:
    """The reference: what the image-segmentation pipeline feeds the model (load_image, then the processor)."""
    return processor(load_image(image), return_tensors="pt")["pixel_values"]


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{w}x{h}" for w, h in SHAPES])
def test_input_equals_the_processors_for_every_shape(demo, reference, shape) -> None:
    predictor = Predictor(demo, "cpu")
    images = [noise(*shape, seed=1), noise(*shape, seed=2)]
    ours = predictor.preprocess(images)
    theirs = torch.cat([pixel_values(reference, image) for image in images])
    assert ours.dtype == theirs.dtype == torch.float32 and ours.shape == theirs.shape
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize(
    "settings",
    [
        {"size": {"height": 512, "width": 512}},
        {"size": {"height": 96, "width": 160}, "resample": 3, "image_mean": 0.5, "image_std": 0.25},
        {"size": {"height": 70, "width": 41}, "resample": 0},
        {"resample": 1, "do_normalize": False},
        {"do_rescale": False, "image_mean": [120.0, 110.0, 100.0], "image_std": [60.0, 58.0, 59.0]},
        {"rescale_factor": 1 / 127.5, "image_mean": [1.0, 1.0, 1.0], "image_std": [1.0, 1.0, 1.0]},
    ],
    ids=["512", "bicubic-non-square-scalar-mean", "nearest", "lanczos-no-normalise", "no-rescale", "minus-one-to-one"],
)
def test_input_equals_the_processors_for_other_settings(demo, settings) -> None:
    processor = SegformerImageProcessorPil.from_pretrained(DEMO_MODEL_DIR, **settings)
    predictor = Predictor(dataclasses.replace(demo, processor=processor), "cpu")
    for shape in [(683, 512), (37, 1001), (64, 64)]:
        image = noise(*shape, seed=shape[0])
        assert torch.equal(predictor.preprocess([image]), pixel_values(processor, image).float())


def _modes(base: Image.Image) -> dict[str, Image.Image]:
    with_transparency = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    with_transparency.info["transparency"] = 3
    rgba = base.copy()
    rgba.putalpha(Image.fromarray(np.arange(base.width * base.height, dtype=np.uint8).reshape(base.size[::-1])))
    return {
        "L": base.convert("L"),
        "LA": rgba.convert("LA"),
        "RGBA": rgba,
        "P": base.convert("P", palette=Image.Palette.ADAPTIVE, colors=32),
        "P-transparency": with_transparency,
        "1": base.convert("1"),
        "CMYK": base.convert("CMYK"),
    }


def test_other_modes_are_read_as_the_pipeline_reads_them(demo, reference, scenes, tmp_path) -> None:
    """Images in memory and PNG / JPEG files without EXIF, as predict reads them (alpha dropped, as load_image does)."""
    predictor = Predictor(demo, "cpu")
    base = scenes[0].resize((301, 233), Image.BILINEAR)
    for mode, image in _modes(base).items():
        assert torch.equal(predictor.preprocess([image]), pixel_values(reference, image)), mode
        if mode == "CMYK":  # PNG has no CMYK: read back from a JPEG below
            continue
        path = tmp_path / f"{mode}.png"
        image.save(path)
        from_file = predictor.preprocess([read_image(path)])
        assert torch.equal(from_file, pixel_values(reference, load_image(str(path)))), f"{mode} PNG"
    for mode in ("RGB", "L", "CMYK"):
        path = tmp_path / f"{mode}.jpg"
        base.convert(mode).save(path, quality=90)
        from_file = predictor.preprocess([read_image(path)])
        assert torch.equal(from_file, pixel_values(reference, load_image(str(path)))), f"{mode} JPEG"


def _pipeline_ids(segmenter, image: Image.Image) -> np.ndarray:
    label2id = segmenter.model.config.label2id
    ids = np.full((image.height, image.width), 255, np.uint8)
    for item in segmenter(image, subtask="semantic"):
        ids[np.asarray(item["mask"]) > 0] = label2id[item["label"]]
    return ids


def _devkit_images() -> list[Image.Image]:
    return [read_image(path) for path in sorted(DEVKIT.glob("ADE_val_*.jpg"))]


@pytest.mark.slow
def test_masks_agree_with_the_pipeline_where_the_margin_exceeds_1e_3(demo, reference, scenes) -> None:
    from transformers import pipeline

    segmenter = pipeline("image-segmentation", model=str(DEMO_MODEL_DIR), image_processor=reference, device="cpu")
    images = [scene.resize(shape, Image.BILINEAR) for scene, shape in zip(scenes * 3, SHAPES, strict=False)]
    images += _devkit_images()  # the real ADE20K validation photos, where the test fixtures hold them
    predictors = {"predict (light model)": Predictor(demo, "cpu"), "GUI (transformers model)":
                  Predictor(load_model(str(DEMO_MODEL_DIR)), "cpu")}
    decided_pixels, classes = 0.0, set()
    for image in images:
        theirs = _pipeline_ids(segmenter, image)
        inputs = reference(load_image(image), return_tensors="pt")
        with torch.inference_mode():
            outputs = segmenter.model(**inputs)
        scores = reference.post_process_semantic_segmentation(
            outputs, target_sizes=[image.size[::-1]], return_segmentation_scores=True
        )[0]
        top2 = scores.segmentation_scores.topk(2, dim=0).values
        decided = ((top2[0] - top2[1]) > MARGIN).numpy()
        np.testing.assert_array_equal(theirs, scores.segmentation.numpy())  # what the pipeline does, checked
        decided_pixels, classes = decided_pixels + decided.mean() * image.width * image.height, classes | {*theirs.flat}
        for name, predictor in predictors.items():
            ours = predictor.predict([image])[0]
            mismatched = int((ours != theirs)[decided].sum())
            assert mismatched == 0, f"{name}, {image.size}: {mismatched} decided pixels differ"
    assert decided_pixels > 0.95 * sum(image.width * image.height for image in images) and len(classes) >= 3

"""A small classification checkpoint with real ImageNet-1k class names, saved as transformers saves
nvidia/mit-b0 (the core and GUI tests of ``classify`` load it)."""

from __future__ import annotations

from pathlib import Path

import torch

# The first ten classes of ImageNet-1k as the Hub's huggingface/label-files imagenet-1k-id2label.json names them
# (the id2label that nvidia/mit-b0's config.json carries); no installed package ships the full list of 1,000.
IMAGENET_FIRST_TEN = [
    "tench, Tinca tinca",
    "goldfish, Carassius auratus",
    "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias",
    "tiger shark, Galeocerdo cuvieri",
    "hammerhead, hammerhead shark",
    "electric ray, crampfish, numbfish, torpedo",
    "stingray",
    "cock",
    "hen",
    "ostrich, Struthio camelus",
]


def save_classifier(folder: Path, seed: int = 0) -> Path:
    """A small SegformerForImageClassification (random weights) saved as transformers saves mit-b0."""
    from transformers import SegformerConfig, SegformerForImageClassification, SegformerImageProcessor

    config = SegformerConfig(
        hidden_sizes=[8, 16, 24, 40], num_attention_heads=[1, 2, 2, 4], depths=[1, 1, 2, 1], decoder_hidden_size=32,
        id2label=dict(enumerate(IMAGENET_FIRST_TEN)), label2id={n: i for i, n in enumerate(IMAGENET_FIRST_TEN)})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SegformerForImageClassification(config).eval()
        for parameter in model.classifier.parameters():  # a spread of logits, so the top-k order means something
            parameter.data.normal_(0, 0.2)
    model.save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder

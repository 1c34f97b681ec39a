"""Fixtures the core tests share."""

from __future__ import annotations

import pytest

from segstudio.core.data.demo_dataset import make_demo
from segstudio.core.data.schema import SegDataset


@pytest.fixture(scope="module")
def tiny_demo() -> SegDataset:
    """The demo's classes, small: 6 train and 2 validation images (a module may define its own)."""
    return make_demo(train=6, validation=2, test=0)

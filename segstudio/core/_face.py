"""Package faces: a package names its public objects and the module each lives in; that module loads on first use.

Written by hand because a plain ``from .module import name`` face would import torch, transformers or datasets
with the package, and the command line checks its inputs before any of them load.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_face(package: str, public: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names live in its modules."""

    def __getattr__(name: str) -> object:
        module = public.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        # Looked up on every access (not cached), so a test's monkeypatch of the module is seen through the face.
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__

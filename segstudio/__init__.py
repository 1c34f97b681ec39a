"""SegStudio: fine-tune SegFormer and see exactly where a segmentation model is wrong.

The Python API (``segstudio.load_dataset``, ``load_model``, ``predict``, ``evaluate``, ``compare``, ``check``,
``export_masks``, ``label_issues``, ``train``) lives in :mod:`segstudio.api`; it is imported on first use, so ``import segstudio``
stays instant for the command line.
"""

__version__ = "0.1.0"

_API = ("Model", "check", "compare", "evaluate", "export_masks", "label_issues", "load_dataset", "load_model",
        "predict", "train")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from segstudio import api

        return getattr(api, name)
    raise AttributeError(f"module 'segstudio' has no attribute {name!r}")

"""SegStudio: fine-tune SegFormer and see exactly where a segmentation model is wrong."""

__version__ = "0.1.0"

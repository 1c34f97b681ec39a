"""The Qt layer. Importing it first protects None and True from PySide6 6.12's lost references (refcounts.py)."""

from segstudio.gui.refcounts import add_headroom

add_headroom()

"""The one base class of errors a person can cause and fix (a bad file, a wrong flag, an offline Hub)."""

from __future__ import annotations


class SegStudioError(Exception):
    """Its message is one line: what is wrong and what to do. The CLI prints it and exits 2; the window shows it."""

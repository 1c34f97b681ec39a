"""The command line (``segstudio COMMAND``, ``python -m segstudio``): the same core as the window, headless.

``entry`` parses and dispatches; ``commands`` holds the commands, one function each (``check``, ``classify``,
``compare``, ``info`` and ``label_issues`` have a module of their own); ``report`` is what they print.
"""

from segstudio.cli.entry import build_parser, entry_point, main

__all__ = ["build_parser", "entry_point", "main"]

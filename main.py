"""Launch SegStudio: `python main.py` opens the app on the built-in demo."""

from segstudio.__main__ import main

if __name__ == "__main__":
    raise SystemExit(main())

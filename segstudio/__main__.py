"""`python -m segstudio`: with no arguments the desktop app, with a command the CLI."""

import sys


def main() -> int:
    from segstudio.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())

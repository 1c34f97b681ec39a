"""`python -m segstudio`: with no arguments the desktop app, with a command the CLI."""


def main() -> int:
    from segstudio.cli.entry import entry_point

    return entry_point()


if __name__ == "__main__":
    raise SystemExit(main())

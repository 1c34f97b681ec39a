"""Run every benchmark in this folder and print its figures (`make bench`)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(names: list[str]) -> int:
    results = {}
    for path in sorted(HERE.glob("bench_*.py")):
        if names and path.stem not in names:
            continue
        print(f"== {path.stem}", flush=True)
        results[path.stem] = _load(path).main()
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

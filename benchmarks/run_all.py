"""Run every benchmark in this folder and print its figures (`make bench`).

Each benchmark runs in its own process, as it would alone: one that ran torch on the main thread before (the
floor benchmark) leaves OpenMP threads and memory behind that slowed the next one's GUI worker by ~20%.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _last_json(output: str):
    """The benchmark's figures: its last line of output that is a JSON object, if any."""
    for line in reversed(output.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def main(names: list[str]) -> int:
    results, failed = {}, []
    for path in sorted(HERE.glob("bench_*.py")):
        if names and path.stem not in names:
            continue
        print(f"== {path.stem}", flush=True)
        done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True)
        print(done.stdout, end="", flush=True)
        if done.returncode != 0:
            print(done.stderr, end="", file=sys.stderr)
            failed.append(path.stem)
        results[path.stem] = _last_json(done.stdout)
    print(json.dumps(results, indent=2, default=str))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

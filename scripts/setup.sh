#!/usr/bin/env bash
# Create .venv and install SegStudio with its test tools. Idempotent: a second run does nothing.
# On a machine without an NVIDIA GPU, torch is the CPU build (about 200 MB), never the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
stamp="$VENV/.segstudio-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    :  # keep whatever torch is already there
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "${pip[@]}" "torch==$TORCH_VERSION"
else
    # A CPU wheel that pip finds locally (its find-links) first, alone: its small dependencies come from
    # PyPI with the package below. Otherwise the CPU build from PyTorch's own index.
    "${pip[@]}" --no-index --no-deps "torch==$TORCH_VERSION" 2>/dev/null \
        || "${pip[@]}" "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu \
            --extra-index-url https://pypi.org/simple
fi
"${pip[@]}" -e ".[test]"
touch "$stamp"

#!/usr/bin/env bash
# GPU readiness check, from a fresh checkout on a machine with an NVIDIA GPU (under 5 minutes once set up):
# AMP fine-tuning for 50 steps, predict and evaluate on the demo (CUDA and CPU), throughput and peak memory at
# batch 1/8/32 at 512x512, and CUDA's predictions against the CPU's. One figure per line on stdout.
# Exit status: 0 ok, 1 CUDA and CPU predictions agree on fewer than 99.9% of the pixels, 2 no CUDA (at once).
# Set-up: scripts/setup.sh (.venv, with the CUDA build of torch where nvidia-smi works). SEGSTUDIO_PYTHON=PATH
# uses that interpreter instead, as it is (torch with CUDA, transformers, datasets and accelerate already there);
# SegStudio itself is then installed into it from this checkout without fetching anything.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi is missing or lists no device): run it on a machine with CUDA" >&2
    exit 2
fi
if [ -n "${SEGSTUDIO_PYTHON:-}" ]; then
    PY="$SEGSTUDIO_PYTHON"
    "$PY" -c "import segstudio.resources" 2>/dev/null \
        || "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --no-index --no-build-isolation -e .
else
    bash scripts/setup.sh
    PY=".venv/bin/python"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error HF_DATASETS_DISABLE_PROGRESS_BARS=1 PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_check.py "$@"

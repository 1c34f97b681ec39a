# `make run` sets up .venv (CPU torch without a GPU) and opens SegStudio on the built-in demo.
# `make test` sets up .venv and runs the whole test suite offline.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test test-fast lint bench
setup:
	@bash scripts/setup.sh

run: setup
	$(PY) main.py

test: setup
	HF_HUB_OFFLINE=1 QT_QPA_PLATFORM=offscreen $(PY) -m ruff check segstudio tests benchmarks main.py
	HF_HUB_OFFLINE=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# Everyday work: everything but the tests marked slow (real training, packaging, subprocess runs).
test-fast: setup
	HF_HUB_OFFLINE=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) benchmarks/run_all.py

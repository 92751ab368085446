# Quick start: `make run` (set up and run every built-in experiment), `make test` (set up and run the tests).
# make run installs the cheap extras (legacy, report); make test installs them all (legacy, torch, onnx, jax, report).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0 has a local CPU build on these machines; a bare `torch` would pull several GB of CUDA wheels.
TORCH_PIN ?= torch==2.13.0

.PHONY: run test venv bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[legacy,report]"
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[all,test]"
	touch $@

venv: $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/convdiff run

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n auto

bench: $(VENV)/.installed-test
	for f in benchmarks/bench_*.py benchmarks/calibrate_bound.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done
	echo "== benchmarks/calibrate_models.py --quick"; $(BIN)/python benchmarks/calibrate_models.py --quick

clean:
	rm -rf $(VENV) build *.egg-info

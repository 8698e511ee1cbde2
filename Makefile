# Two commands set up and exercise everything: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit proto mesh bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,fuzz]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python deploy/demo.py

test: $(STAMP)
	$(BIN)/ruff check node tests bench deploy
	$(BIN)/ruff format --check node tests bench deploy
	$(BIN)/mypy
	$(BIN)/python -m pytest

proto: $(STAMP)
	$(BIN)/python -m node.transport.protogen

mesh: $(STAMP)
	bash deploy/mesh.sh

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache

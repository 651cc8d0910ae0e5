# One command sets everything up and runs the job: `make test`, `make demo`, `make docs`.
# The virtual environment is created on first use; TORCH can point at another build.
PYTHON ?= python3
export NO_MKDOCS_2_WARNING := 1
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.genlatent-installed

.PHONY: venv test lint docs demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,docs,train,plot,demo]"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts examples
	$(VENV)/bin/ruff format --check src tests benchmarks scripts examples
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

demo: $(STAMP)
	$(VENV)/bin/genlatent train vae --dataset digits --out runs/demo-vae-$$(date +%Y%m%d-%H%M%S)

# Each benchmark prints a table and writes benchmarks/results/NAME.json (docs/benchmarks.md).
bench: $(STAMP)
	for name in vae_trainer quantizer vqvae_step scaling import_time; do \
		$(PY) -m benchmarks.$$name || exit 1; \
	done

clean:
	rm -rf $(VENV) build dist site .pytest_cache .ruff_cache .mypy_cache

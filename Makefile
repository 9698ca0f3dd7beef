# Two commands on a fresh machine with Python 3.11+:
#   make demo   run the audit of the bundled sample client (data/sample) into reports/sample/
#   make test   run the test suite
# Each creates the virtual environment (.venv) on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck docs sample sample-revisit benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m auditkit run data/sample --out reports

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check auditkit tests devtools benchmarks scripts
	$(VENV)/bin/ruff format --check auditkit

typecheck: $(STAMP)
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(PY) -c "from auditkit.schemas import frames_markdown; open('docs/frames.md','w').write(frames_markdown() + '\n')"

sample: $(STAMP)
	$(PY) scripts/make_sample.py --out data/sample

sample-revisit: $(STAMP)
	$(PY) scripts/make_sample.py --variant revisit --out data/sample-revisit

benchmark: $(STAMP)
	$(PY) benchmarks/digest_vs_pgbadger.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

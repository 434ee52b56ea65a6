# Two commands on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-fast bench lint venv clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,demo,io,mlx,mpi]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m smolgrad.demo

# tests/test_viz_browser.py clicks through the walk-through page in Debian's chromium
# (never a downloaded browser): install it when missing and we may (root, apt-get);
# otherwise that test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
	  || echo "chromium is not installed and could not be: the browser test will be skipped"

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 -q --timeout=900 tests

test-fast: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 -q -m "not slow" tests

# BENCH_ARGS: extra bench/run.py flags, e.g. make bench BENCH_ARGS=--compiled
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info

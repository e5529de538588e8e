# pipnb — the README's two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pipnb-installed

.PHONY: demo test lab bench browser clean

demo: $(STAMP)
	$(BIN)/pipnb demo

# The fork-server kernel tests run alone (they time kernels and read their environment); the rest run on
# two workers, one test file per worker.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q tests/test_kernel.py
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --ignore=tests/test_kernel.py

lab: $(STAMP)
	test -f data/demo/reps.csv || $(BIN)/pipnb demo-data --out data/demo
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_stats.py
	$(BIN)/python benchmarks/bench_fairness.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_index.py

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pipnb.kernel install --sys-prefix
	touch $(STAMP)

# The browser tests and the PDFs drive Debian's Chromium (never a downloaded browser); the PDF tests read the
# PDFs with poppler-utils (pdfinfo, pdftotext).
browser:
	@{ command -v chromium && command -v pdftotext; } >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium and poppler-utils for the browser and PDF tests"; \
	  (apt-get update -qq && apt-get install -y -qq chromium poppler-utils >/dev/null) \
	  || echo "warning: could not install chromium or poppler-utils; the browser and PDF tests will be skipped"; }

clean:
	rm -rf $(VENV) reports/*/ reports/*.html data/demo

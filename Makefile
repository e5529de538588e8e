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
	$(BIN)/python benchmarks/bench_scale.py

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pipnb.kernel install --sys-prefix
	touch $(STAMP)

# The browser test drives Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; the browser test will be skipped"; }

clean:
	rm -rf $(VENV) reports/*/ reports/*.html data/demo

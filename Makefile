# Each target sets up .venv when it is missing or out of date, so a fresh clone needs only
# `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= test,dask,plot,geo,import,milp
DEMO   := networks/demo_town

.PHONY: setup build demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml setup.py | $(PY)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet "Cython>=3.0" "numpy>=1.25"
	$(PY) -m pip install --quiet --no-build-isolation -e ".[$(EXTRAS)]"
	touch $(STAMP)

setup: $(STAMP)

# Rebuilds the Cython core in place when _core.pyx or _core.pxd changed (quick when not).
build: $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace

demo: build
	$(VENV)/bin/cascade info $(DEMO)
	$(VENV)/bin/cascade simulate $(DEMO) --fail P-SUB-T03
	$(VENV)/bin/cascade critical $(DEMO) --top 10

test: build browser
	$(PY) -m pytest

# Headless Chromium renders the HTML report in tests (Debian's package; quiet, only when missing).
.PHONY: browser
browser:
	@test -x /usr/bin/chromium || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null

# Benchmarks (benchmarks/conftest.py explains the conventions).  `bench`: the full suite, saved as
# benchmarks/results/<date>-<commit>.json; `bench-check`: the quick suite against
# benchmarks/floors.toml (CI); `bench-report`: saved runs -> table + PNGs; `bench-scaling`: 10^3..10^6.
.PHONY: bench-check bench-report bench-scaling
BENCH_RAW ?= build/bench-raw.json
bench: build
	mkdir -p $(dir $(BENCH_RAW))
	env -u CASCADE_BENCH_QUICK $(PY) -m pytest benchmarks --benchmark-only --benchmark-json=$(BENCH_RAW)
	$(PY) benchmarks/check.py save $(BENCH_RAW)

bench-check: build
	$(PY) benchmarks/check.py check

bench-report: $(STAMP)
	$(PY) benchmarks/report.py

bench-scaling: build
	$(PY) benchmarks/bench_scaling.py

clean:
	rm -rf build cascade/_core.c cascade/*.so *.egg-info

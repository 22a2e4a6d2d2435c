# Each target sets up .venv when it is missing or out of date, so a fresh clone needs only
# `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= test,dask,plot,geo,import,milp,bench
DEMO   := networks/demo_town
FLOWDEMO := networks/demo_town_flow

.PHONY: setup build demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml setup.py | $(PY)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet "Cython>=3.0" "numpy>=1.25" "scipy>=1.11,<1.17"
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
	@echo "--- the same town with flows (power dcflow, water and gas flow): an overload cascade"
	$(VENV)/bin/cascade simulate $(FLOWDEMO) --fail 'P-SUB-T06->P-SUB-T07'
	@echo "--- a treatment works lost: water only partly served"
	$(VENV)/bin/cascade simulate $(FLOWDEMO) --fail W-TP-2
	$(VENV)/bin/cascade critical $(FLOWDEMO) --layer power --elements edges --top 10 --no-compare

test: build browser
	$(PY) -m pytest

# Headless Chromium renders the HTML report in one test (tests/test_report.py).  Installed with
# apt-get only when missing; when that fails (no root, no network, not Debian) the target says so
# and succeeds: the suite then skips that one test, with the reason in pytest's summary.
CHROMIUM ?= /usr/bin/chromium
APT_GET  ?= apt-get
.PHONY: browser
browser:
	@test -x $(CHROMIUM) || { \
	  echo "make browser: installing Debian's 'chromium' package with $(APT_GET) (headless Chromium renders the HTML report in tests/test_report.py)"; \
	  { DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq chromium; } >/dev/null 2>&1 \
	  && echo "make browser: installed $(CHROMIUM)" \
	  || echo "make browser: WARNING: could not install chromium with $(APT_GET) (needs root and network); tests/test_report.py::test_page_renders_in_headless_chromium will be SKIPPED. Install it yourself: sudo apt-get install chromium" >&2; \
	}

# Benchmarks (benchmarks/conftest.py explains the conventions).  `bench`: the full suite, saved as
# benchmarks/results/<date>-<commit>.json; `bench-check`: the quick suite against
# benchmarks/floors.toml (CI); `bench-report`: saved runs -> table + PNGs; `bench-scaling`: 10^3..10^6.
.PHONY: bench-check bench-report bench-scaling bench-files
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

bench-files: build
	$(PY) benchmarks/bench_files.py

clean:
	rm -rf build cascade/_core.c cascade/*.so *.egg-info

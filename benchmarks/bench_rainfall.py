"""Rainfall through the drainage system vs a plain flood, samples on the demo town.

Kernel ``rainfall``: :func:`cascade.ensemble.run_batch` (the work unit of every executor of
``run_ensemble``; the scenario is prepared once, outside the timing) on one thread of
``scenarios/rainfall_100yr.toml`` (each sample: the storm, ponding per drainage district with
every pump running, the cascade, then again with the pumps that still run, incrementally,
until the working pumps stop changing) on ``networks/demo_town``, for ``N`` samples:
``demo100`` and ``demo1000`` (only ``demo100`` under ``CASCADE_BENCH_QUICK=1``).

Implementations (``extra_info["impl"]``):

``core``
    The rainfall fixpoint.
``flood``
    The same number of samples of the plain flood ``scenarios/flood_heavy_rain.toml`` (a
    water level against node elevations and one cascade per sample), the cost the issue
    compares with, drawn like the rainfall's samples through the Python sampling path
    (``ensemble.COMPILED_SAMPLING = False``): like for like, the ratio flood / core
    (``benchmarks/check.py``) is the cost of the fixpoint itself and should stay at least 1/3.
``flood_compiled``
    The same flood through the compiled sampler (:mod:`cascade._ensemble`, the default for a
    plain hazard), which the rainfall cannot use (its hazard depends on the cascade): what a
    flood sample costs a user today; no floor.

Before timing, the first samples' results are checked to be fixpoints: the workspace equals
a fresh cascade of the final flooded set, and the depths with the pumps that run at the end
flood nothing more.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cascade.compiled import Workspace
from cascade.ensemble import _service, _totals, run_batch
from cascade.hazards import Draws, load_scenario

KERNEL = "rainfall"
QUICK = os.environ.get("CASCADE_BENCH_QUICK", "") not in ("", "0")
SAMPLES = (100,) if QUICK else (100, 1000)
SIZES = [f"demo{n}" for n in SAMPLES]
ROUNDS = {100: 5, 1000: 3}
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _tag(benchmark, size, impl, samples):
    benchmark.group = f"{KERNEL}-{size}"
    benchmark.extra_info.update({"impl": impl, "kernel": KERNEL, "samples": samples})


@pytest.fixture(scope="module")
def rain(demo_system):
    system, compiled = demo_system
    scenario = load_scenario(SCENARIOS / "rainfall_100yr.toml")
    prep = scenario.prepare(system, compiled)
    hazard = scenario.hazard
    ws, fresh = Workspace(compiled), Workspace(compiled)
    chained = 0
    for i in range(20):
        trace = []
        nodes, edges = hazard.settle(prep, Draws.of(scenario.seed, i), compiled, ws, trace=trace)
        fresh.run(nodes, edges)
        assert np.array_equal(ws.working, fresh.working)
        pumps = hazard._pumping(prep, ws, np.isin(prep["fn"], nodes))
        depth = hazard.ponding(prep, hazard.rain(Draws.of(scenario.seed, i)), pumps)
        more_n, more_e = hazard._flooded(prep, depth, prep["fn_thr"], prep["fe_thr"])
        assert np.array_equal(more_n, nodes) and np.array_equal(more_e, edges)
        chained += len(trace) > 1
    assert chained > 0, "no sample of the benchmark runs more than one step of the fixpoint"
    return system, compiled, scenario


@pytest.fixture(scope="module")
def flood(demo_system):
    system, compiled = demo_system
    scenario = load_scenario(SCENARIOS / "flood_heavy_rain.toml")
    scenario.prepare(system, compiled)
    return system, compiled, scenario


def _run(benchmark, case, n, impl, compiled_sampling=True):
    from cascade import ensemble

    system, compiled, scenario = case
    _tag(benchmark, f"demo{n}", impl, n)
    ws = Workspace(compiled)
    ws.run()
    baseline = ws.working.astype(bool)
    service = _service(compiled, baseline, _totals(compiled))
    ensemble.COMPILED_SAMPLING = compiled_sampling
    try:
        start, loss, *_ = benchmark.pedantic(run_batch, args=(compiled, scenario, scenario.seed, 0, n,
                                                              baseline, service),
                                             rounds=ROUNDS[n], iterations=1)
    finally:
        ensemble.COMPILED_SAMPLING = True
    assert start == 0 and len(loss) == n and loss[:, -1].max() > 0


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_rainfall_core(benchmark, rain, n):
    _run(benchmark, rain, n, "core")


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_rainfall_flood(benchmark, flood, n):
    _run(benchmark, flood, n, "flood", compiled_sampling=False)


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_rainfall_flood_compiled(benchmark, flood, n):
    _run(benchmark, flood, n, "flood_compiled")

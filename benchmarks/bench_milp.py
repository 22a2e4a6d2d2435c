"""The ``milp`` repair strategy (cascade/milp.py, HiGHS) on the demo town.

* ``milp-100``: a Shelby-sized problem: 100 failed elements of three lifelines (power, water,
  gas: 90 nodes and 10 edges, seeded) repaired by a shared pool of 6 crews; the MILP with its
  default 60 s limit.  ``extra_info`` holds the proven gap, the solve time, the MILP's
  replayed resilience loss and greedy's.
* ``milp-300``: 300 random failures of the demo town (``failures(system, 300)`` of
  bench_recovery.py, the README's example), three crews per layer, 60 s: the gap reached and
  the resilience loss of milp, greedy, critical and random (seed 1).  The gap is always known:
  the larger of HiGHS's bound and the combinatorial one (cascade/milp_bound.py,
  ``bound_source``); ``loss_bound`` / ``loss_gap`` bound every schedule of the simulation.
  ``milp-300-p24``: the same with ``--period 24`` (milp and greedy only).

* ``milp-flow-30``: a seeded coupled town with flow layers (a ``dcflow`` grid of 40 buses, a
  ``flow`` water network of 40 nodes, pumps that need their bus at half its demand), 30 damaged
  elements, a pool of 3 crews: the program with served amounts as flow variables (transport
  relaxation for ``dcflow``), 60 s; the same figures as above.

Each runs once (``rounds=1``: a minute each).  ``CASCADE_BENCH_QUICK=1`` keeps a 20-element
problem with a 10 s limit instead, to stay short in ``make bench-check``.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from cascade import InfrastructureSystem

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


CASES = [("lifelines", 20, {"pool": 6}, 10.0, None)] if QUICK else \
    [("lifelines", 100, {"pool": 6}, 60.0, None), ("random", 300, 3, 60.0, None),
     ("random", 300, 3, 60.0, 24.0)]


@pytest.mark.parametrize("case, size, crews, limit, period", CASES,
                         ids=[f"{c[1]}" + (f"-p{c[4]:g}" if c[4] else "") for c in CASES])
def test_milp_core(benchmark, demo_system, case, size, crews, limit, period):
    system, compiled = demo_system
    fail = lifeline_failures(system, size) if case == "lifelines" else failures(system, size)
    strategies = ["milp", "greedy"] if case == "lifelines" else ["milp", "greedy", "critical", "random"]
    if period:
        strategies = ["milp", "greedy"]
    benchmark.group = f"milp-{size}" + (f"-p{period:g}" if period else "")
    benchmark.extra_info.update(impl="core", kernel="milp", system=system.name, failed=size,
                                crews=str(crews), time_limit=limit)
    results = benchmark.pedantic(
        recover_many, args=(system, fail, strategies),
        kwargs=dict(crews=crews, seed=1, compiled=compiled, time_limit=limit, period=period),
        rounds=1, iterations=1)
    info = results[0].solver
    benchmark.extra_info.update(
        gap=info["gap"], solve_time=info["solve_time"], status=info["status"],
        period=info["period"], horizon=info["horizon"], binaries=info["binaries"],
        objective=info["objective"], bound=info["bound"], highs_bound=info["highs_bound"],
        bound_source=info["bound_source"], combinatorial_bound=info["combinatorial_bound"],
        loss_bound=info["loss_bound"], loss_gap=info["loss_gap"],
        **{f"loss_{r.strategy}": r.metrics["resilience_loss"] for r in results})
    assert len(results[0].schedule) == size
    assert info["bound"] <= info["objective"] + 1e-6
    # v1 town: the combinatorial bound makes the gap always known.
    assert info["gap"] < 1 and info["loss_gap"] < 1


def flow_town(n_bus: int = 40, n_water: int = 40, seed: int = 4) -> InfrastructureSystem:
    """A seeded coupled town with flow layers: a ``dcflow`` grid (a chain plus random chords,
    four generators, ratings from 25 to 80 MW) and a ``flow`` water network (a tree plus chords,
    three sources, capacities), with every fifth water node needing a bus at half its demand;
    repair times of 2 to 12 h."""
    rng = np.random.default_rng(seed)
    nodes, edges, deps = [], [], []
    for i in range(n_bus):
        gen = i % (n_bus // 4) == 0
        nodes.append(dict(id=f"b{i}", layer="power", supply=200.0 if gen else 0.0,
                          demand=0.0 if gen else float(rng.choice([10, 15, 20])),
                          repair_time=float(rng.integers(1, 7) * 2)))
    for i in range(1, n_bus):
        for j in {int(rng.integers(0, i)), i - 1}:
            edges.append(dict(id=f"l{j}-{i}", source=f"b{j}", target=f"b{i}", reactance=float(rng.choice([0.1, 0.2])),
                              capacity=float(rng.choice([25, 40, 80])), repair_time=float(rng.integers(1, 4) * 2)))
    for i in range(n_water):
        src = i % (n_water // 3) == 0
        nodes.append(dict(id=f"w{i}", layer="water", supply=120.0 if src else 0.0,
                          demand=0.0 if src else float(rng.choice([5, 10, 15])),
                          repair_time=float(rng.integers(1, 7) * 2)))
        if i % 5 == 1:
            deps.append(dict(dependent=f"w{i}", supplier=f"b{int(rng.integers(1, n_bus))}", threshold=0.5))
    for i in range(1, n_water):
        for j in {int(rng.integers(0, i)), i - 1}:
            edges.append(dict(id=f"p{j}-{i}", source=f"w{j}", target=f"w{i}", capacity=float(rng.choice([10, 30, 60])),
                              repair_time=float(rng.integers(1, 4) * 2)))
    return InfrastructureSystem.from_tables(pd.DataFrame(nodes), pd.DataFrame(edges), pd.DataFrame(deps),
                                            rules={"power": "dcflow", "water": "flow"})


FLOW_CASES = [(10, 10.0)] if QUICK else [(30, 60.0)]


@pytest.mark.parametrize("size, limit", FLOW_CASES, ids=[f"flow-{c[0]}" for c in FLOW_CASES])
def test_milp_flow(benchmark, size, limit):
    system = flow_town()
    rng = np.random.default_rng(7)
    ids = list(system.nodes["id"]) + list(system.edges["id"])
    fail = [str(x) for x in rng.choice(ids, size, replace=False)]
    benchmark.group = f"milp-flow-{size}"
    benchmark.extra_info.update(impl="core", kernel="milp", system="flow_town(40, 40)", failed=size,
                                crews="pool=3", time_limit=limit)
    results = benchmark.pedantic(
        recover_many, args=(system, fail, ["milp", "greedy", "critical", "random"]),
        kwargs=dict(crews={"pool": 3}, seed=1, time_limit=limit), rounds=1, iterations=1)
    info = results[0].solver
    benchmark.extra_info.update(
        gap=info["gap"], solve_time=info["solve_time"], status=info["status"], schedule=info["schedule"],
        period=info["period"], horizon=info["horizon"], binaries=info["binaries"],
        objective=info["objective"], bound=info["bound"],
        **{f"loss_{r.strategy}": r.metrics["resilience_loss"] for r in results})
    assert len(results[0].schedule) == size
    assert results[0].metrics["resilience_loss"] <= results[1].metrics["resilience_loss"] + 1e-9

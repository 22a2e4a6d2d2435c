"""Speed of ``cascade.recovery``: a recovery of many failed elements with ``greedy``.

On the demo town (``networks/demo_town``, 4 500 nodes), with 100 and 1 000 failed elements
(seeded, a tenth of them edges) and three crews in every layer.  ``core`` is the greedy as
users run it; ``plain`` scores every waiting element with one fixpoint at every decision
(same schedule, tested equal in tests/test_recovery.py); it takes about a minute at 1 000.
Each measured function follows the benchmarks convention (``test_<kernel>_<impl>[<size>]``,
``benchmark.group``, ``extra_info``).  ``CASCADE_BENCH_QUICK=1`` keeps only the smallest size.

:func:`lifeline_town` is a generated five-lifeline town of about 5 000 nodes for the tests.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse.csgraph  # noqa: F401  (imported before timing: greedy's first call needs it)

from cascade import InfrastructureSystem
from cascade.recovery import _Greedy, _play, _Problem, _result

QUICK = os.environ.get("CASCADE_BENCH_QUICK", "") not in ("", "0")
SIZES = [100] if QUICK else [100, 1000]
CREWS = 3          # crews in every layer

# (layer, [(kind, count), ...] from the sources down); each level hangs off the previous one.
LEVELS = {
    "power": [("source", 2), ("substation", 12), ("distribution", 80), ("feeder", 400), ("consumer", 1300)],
    "water": [("source", 2), ("pump", 24), ("main", 300), ("consumer", 900)],
    "gas": [("source", 1), ("regulator", 12), ("main", 150), ("consumer", 600)],
    "communication": [("source", 2), ("aggregation", 20), ("cell", 250), ("scada", 60)],
    "transport": [("intersection", 900)],
}


def lifeline_town(seed: int = 0) -> InfrastructureSystem:
    """A generated five-lifeline town of about 6 000 nodes (not the demo system).

    Power, water, gas and communication are trees from their sources with a second parent
    for a tenth of the nodes (rule ``source``); transport is a random geometric-like grid
    (rule ``giant``).  Pumps, regulators, aggregation sites and cells depend on a
    distribution substation (cells with 4 h of battery, aggregation sites 8 h, half of the
    pumps 6 h of diesel); distribution substations depend on one of two SCADA sites
    (alternatives); the second power plant depends on the gas source.
    """
    rng = np.random.default_rng(seed)
    nodes, edges, deps = [], [], []
    by_kind: dict[str, list[str]] = {}
    for layer, levels in LEVELS.items():
        prev: list[str] = []
        for depth, (kind, count) in enumerate(levels):
            ids = [f"{layer[0].upper()}-{kind}-{i}" for i in range(count)]
            by_kind[f"{layer}:{kind}"] = ids
            for name in ids:
                nodes.append({"id": name, "layer": layer, "kind": kind,
                              "demand": 1.0 if kind == "consumer" or layer == "communication"
                              and kind == "cell" else 0.0})
            if prev:
                parents = rng.integers(0, len(prev), size=count)
                for name, par in zip(ids, parents):
                    edges.append({"source": prev[par], "target": name, "directed": "false"})
                second = np.flatnonzero(rng.random(count) < 0.1)
                for i in second:
                    edges.append({"source": prev[rng.integers(0, len(prev))], "target": ids[i],
                                  "directed": "false"})
            prev = ids
    streets = by_kind["transport:intersection"]
    side = int(np.ceil(np.sqrt(len(streets))))
    for i in range(len(streets)):
        for j in (i + 1, i + side):
            if j < len(streets) and (j != i + 1 or (i + 1) % side) and rng.random() < 0.9:
                edges.append({"source": streets[i], "target": streets[j], "directed": "false"})
    dist = by_kind["power:distribution"]
    for kind, delay in (("water:pump", 6.0), ("gas:regulator", 0.0), ("communication:aggregation", 8.0),
                        ("communication:cell", 4.0)):
        for k, name in enumerate(by_kind[kind]):
            d = delay if kind != "water:pump" or k % 2 == 0 else 0.0
            deps.append({"dependent": name, "supplier": dist[rng.integers(0, len(dist))], "delay": d})
    scada = by_kind["communication:scada"]
    for name in dist:
        for s in rng.choice(len(scada), size=2, replace=False):
            deps.append({"dependent": name, "supplier": scada[s], "group": "scada", "delay": 2.0})
    deps.append({"dependent": "P-source-1", "supplier": "G-source-0", "delay": 12.0})
    edges = pd.DataFrame(edges).drop_duplicates(["source", "target"])
    return InfrastructureSystem.from_tables(
        pd.DataFrame(nodes), edges,
        pd.DataFrame(deps, columns=["dependent", "supplier", "group", "delay"]).fillna(""),
        name="lifeline-town", rules={"transport": "giant"})


def failures(system: InfrastructureSystem, count: int, seed: int = 1) -> list[str]:
    """``count`` nodes and edges drawn at random (a tenth edges), fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    n_edges = count // 10
    nodes = rng.choice(system.nodes["id"].to_numpy(), size=count - n_edges, replace=False)
    edges = rng.choice(system.edges["id"].to_numpy(), size=n_edges, replace=False)
    return [str(x) for x in nodes] + [str(x) for x in edges]


def _greedy(system, compiled, fail, exhaustive: bool):
    p = _Problem(system, compiled, fail, CREWS)
    policy = _Greedy(p, exhaustive=exhaustive)
    return _result(p, _play(p, policy), "greedy"), policy.evaluations


@pytest.mark.parametrize("size", SIZES)
def test_recovery_core(benchmark, demo_system, size):
    """``greedy`` with its bounds, kept gains and closed-form road gains (what users run)."""
    system, compiled = demo_system
    fail = failures(system, size)
    benchmark.group = f"recovery-{size}"
    benchmark.extra_info.update(impl="core", kernel="recovery", system=system.name,
                                failed=size, crews=CREWS)
    result, evaluations = benchmark.pedantic(_greedy, args=(system, compiled, fail, False),
                                             rounds=1, iterations=1)
    benchmark.extra_info["fixpoints"] = evaluations
    assert len(result.schedule) == size


@pytest.mark.parametrize("size", SIZES)
def test_recovery_plain(benchmark, demo_system, size):
    """The same greedy scoring every waiting element with one fixpoint at every decision
    (the obvious version; same schedule)."""
    system, compiled = demo_system
    fail = failures(system, size)
    benchmark.group = f"recovery-{size}"
    benchmark.extra_info.update(impl="plain", kernel="recovery", system=system.name,
                                failed=size, crews=CREWS)
    result, evaluations = benchmark.pedantic(_greedy, args=(system, compiled, fail, True),
                                             rounds=1, iterations=1)
    benchmark.extra_info["fixpoints"] = evaluations
    assert len(result.schedule) == size

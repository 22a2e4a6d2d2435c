"""N-1 screening of ``dcflow`` layers: DCFlow.screen (first-round flows from LODF columns),
FlowEngine.screen_dc and flow_sweep's shortcut.

Oracles: the plain dense DC cascade of tests/test_flow_dc.py (networkx islands, numpy solves,
written from docs/format.md v2) run with each branch taken out; networkx's bridges; the sweep
without screening (one full cascade per element) and the reference engine's sweep.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import InfrastructureSystem, compile_system
from cascade.criticality import element_indices, flow_sweep
from cascade.flowcore import flow_engine
from cascade.flowkernels import DCFlow

from test_flow_dc import plain_dc_cascade


# ------------------------------------------------------------------------------------------------
# random grids large enough for the LODF path (islands of more than 24 buses)
# ------------------------------------------------------------------------------------------------

@st.composite
def dc_grids(draw):
    """Arrays of a meshed grid of 26-40 buses with radial spurs (bridges), shifts, priorities,
    dispatch or not, a few dead buses and out-of-service branches, and ratings from 1.0x to
    3x the intact flow (so that some losses trip and some do not)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = int(rng.integers(26, 41))
    core = n - int(rng.integers(0, 5))                    # the last buses hang off as spurs
    pairs = [(i, (i + 1) % core) for i in range(core)]
    pairs += [tuple(rng.choice(core, 2, replace=False)) for _ in range(int(rng.integers(2, core // 2)))]
    pairs += [(int(rng.integers(0, core)), v) for v in range(core, n)]
    if draw(st.booleans()):
        pairs.append(pairs[0])                              # a parallel branch
    fr = np.array([p[0] for p in pairs], np.int64)
    to = np.array([p[1] for p in pairs], np.int64)
    m = len(fr)
    x = rng.uniform(0.02, 0.5, m)
    phi = np.where(rng.random(m) < 0.1, 0.05, 0.0)
    demand = rng.integers(0, 30, n).astype(float)
    gens = rng.choice(n, int(rng.integers(2, 6)), replace=False)
    supply = np.zeros(n)
    supply[gens] = demand.sum() * draw(st.sampled_from([0.6, 1.2, 2.0])) / len(gens)
    dispatch = np.full(n, np.nan)
    if draw(st.booleans()):
        dispatch[gens] = supply[gens] * 0.5
    priority = rng.integers(0, 2, n).astype(np.int32)
    alive = np.ones(n, bool)
    usable = np.ones(m, bool)
    if draw(st.booleans()):
        alive[rng.choice(n, 2, replace=False)] = False
        usable[rng.choice(m, 2, replace=False)] = False
    base = draw(st.sampled_from([100.0, 10.0]))
    free = DCFlow(n, fr, to, x, phi, None, base)
    intact = free.cascade(alive, usable, supply, demand, priority, dispatch).flows
    factor = rng.choice([1.0, 1.02, 1.1, 1.5, 3.0, np.inf], m)
    cap = np.where(np.isnan(intact), 50.0,
                   np.where(np.isinf(factor), np.inf, np.abs(np.nan_to_num(intact)) * np.where(
                       np.isinf(factor), 1.0, factor) + 1e-3))
    return dict(n=n, fr=fr, to=to, x=x, phi=phi, cap=cap, supply=supply, demand=demand,
                priority=priority, dispatch=dispatch, alive=alive, usable=usable, base=base)


def bridges_of_supplied_islands(g):
    """Branches whose loss splits an island with supply (networkx, on the active graph)."""
    n, fr, to = g["n"], g["fr"], g["to"]
    active = g["usable"] & (g["cap"] > 0) & g["alive"][fr] & g["alive"][to] & (fr != to)
    graph = nx.MultiGraph()
    graph.add_nodes_from(np.flatnonzero(g["alive"]).tolist())
    for e in np.flatnonzero(active):
        graph.add_edge(int(fr[e]), int(to[e]), key=int(e))
    out = set()
    for comp in nx.connected_components(graph):
        if g["supply"][list(comp)].sum() <= 0:
            continue
        sub = graph.subgraph(comp)
        simple = nx.Graph(sub)
        for u, v in nx.bridges(simple):
            keys = list(sub[u][v])
            if len(keys) == 1:                              # parallel branches are no bridge
                out.add(int(keys[0]))
    return out


@settings(max_examples=40, deadline=None)
@given(g=dc_grids())
def test_a_cleared_loss_ends_like_the_base_case_in_the_plain_cascade(g):
    """Every loss the screen clears trips nothing, splits nothing and keeps served fractions and
    working buses in the plain dense cascade, whose flows equal the screen's LODF flows; every
    loss that trips in the plain cascade, and every bridge, is flagged."""
    n, m = g["n"], len(g["fr"])
    k = DCFlow(n, g["fr"], g["to"], g["x"], g["phi"], g["cap"], g["base"])
    branches = np.arange(m)
    status, base, flows = k.screen(g["alive"], g["usable"], g["supply"], g["demand"], branches,
                                   g["priority"], g["dispatch"], flows=True)
    args = (g["alive"], g["fr"], g["to"], g["x"], g["phi"], g["cap"])
    rest = (g["supply"], g["demand"], g["priority"], g["dispatch"], g["base"])
    plain_base = plain_dc_cascade(*args, g["usable"].copy(), *rest)
    if plain_base[3]:                                        # the base case trips: nothing cleared
        assert status.all()
        return
    scale = max(1.0, np.nanmax(np.abs(np.r_[plain_base[2], 1.0])))
    bridges = bridges_of_supplied_islands(g)
    for b in branches:
        usable = g["usable"].copy()
        usable[b] = False
        served, working, flow, trips = plain_dc_cascade(*args, usable, *rest)
        if b in bridges:
            assert status[b], f"bridge {b} cleared"
        if trips:
            assert status[b], f"loss of {b} trips {trips} but was cleared"
        if not status[b]:
            assert not trips
            assert (working == plain_base[1]).all()
            np.testing.assert_allclose(served, plain_base[0], rtol=1e-12, atol=0)
            row = flows[b]
            computed = ~np.isnan(row)
            assert (np.isnan(flow[computed]) == False).all()        # noqa: E712
            assert np.abs(row[computed] - flow[computed]).max(initial=0) <= 1e-9 * scale


def test_screen_clears_some_and_flags_the_overloads_on_a_fixed_grid():
    """A 30-bus ring with chords, a spur and a self-loop: every loss that trips is flagged,
    the self-loop (never active) is cleared, and so are several others."""
    n = 31
    fr = np.r_[np.arange(29), 29, 0, 5, 28, 3]
    to = np.r_[np.arange(1, 30), 0, 15, 20, 30, 3]             # 28-30: a spur; 3-3: a self-loop
    m = len(fr)
    x = np.full(m, 0.1)
    supply = np.zeros(n)
    supply[0] = 500.0
    demand = np.full(n, 5.0)
    demand[0] = 0
    free = DCFlow(n, fr, to, x)
    intact = free.cascade(np.ones(n, bool), np.ones(m, bool), supply, demand).flows
    cap = np.where(np.isnan(intact), np.inf, 2.0 * np.abs(np.nan_to_num(intact)) + 1.0)
    k = DCFlow(n, fr, to, x, None, cap)
    status, base, _ = k.screen(np.ones(n, bool), np.ones(m, bool), supply, demand, np.arange(m))
    assert not len(base.trip_branch)
    tripping = []
    for b in range(m):
        usable = np.ones(m, bool)
        usable[b] = False
        r = k.cascade(np.ones(n, bool), usable, supply, demand)
        if len(r.trip_branch):
            tripping.append(b)
            assert status[b]
    assert tripping                                          # the case has overloads
    assert not status[m - 1]                                 # the self-loop: inactive, cleared
    assert status[m - 2]                                     # the spur: a bridge
    assert (~status).sum() >= 5


# ------------------------------------------------------------------------------------------------
# flow_sweep: screened == every element in full == the reference engine
# ------------------------------------------------------------------------------------------------

def coupled_from_arrays(g, water=True):
    """The grid as a system: a dcflow layer, and a small flow layer whose source needs bus 1."""
    n, fr, to = g["n"], g["fr"], g["to"]
    buses = [f"b{i}" for i in range(n)]
    nodes = [dict(id=b, layer="power", supply=g["supply"][i], demand=g["demand"][i],
                  priority=int(g["priority"][i]),
                  dispatch=None if np.isnan(g["dispatch"][i]) else g["dispatch"][i])
             for i, b in enumerate(buses)]
    # out-of-service branches and dead buses of the arrays are dropped: the system is intact
    keep = g["usable"] & g["alive"][fr] & g["alive"][to]
    edges = [dict(id=f"l{e}", source=buses[fr[e]], target=buses[to[e]], reactance=g["x"][e],
                  shift=float(np.degrees(g["phi"][e])),
                  capacity=None if np.isinf(g["cap"][e]) else g["cap"][e])
             for e in np.flatnonzero(keep)]
    deps = []
    rules = {"power": "dcflow"}
    if water:
        nodes += [dict(id="w0", layer="water", supply=10.0), dict(id="w1", layer="water", demand=6.0),
                  dict(id="w2", layer="water", demand=6.0)]
        edges += [dict(id="p0", source="w0", target="w1", capacity=8.0),
                  dict(id="p1", source="w1", target="w2", capacity=5.0)]
        # (bus 1, or the first alive bus when hypothesis drew bus 1 dead: a dropped bus
        # cannot be a supplier)
        sup = "b1" if g["alive"][1] else buses[int(np.flatnonzero(g["alive"])[0])]
        deps = [dict(dependent="w0", supplier=sup, threshold=0.9)]
        rules["water"] = "flow"
    dead = [buses[i] for i in np.flatnonzero(~g["alive"])]
    nodes = [v for v in nodes if v["id"] not in dead]
    edges_df = pd.DataFrame(edges)
    return InfrastructureSystem.from_tables(
        pd.DataFrame(nodes), edges_df,
        pd.DataFrame(deps, columns=["dependent", "supplier", "threshold"]), rules=rules,
        bases={"power": g["base"]})


def sweeps(system, elements="all", sample=None):
    c = compile_system(system)
    el_node, el_edge = element_indices(c, elements)
    if sample is not None and len(el_node) > sample:
        pick = np.sort(np.random.default_rng(11).choice(len(el_node), sample, replace=False))
        el_node, el_edge = el_node[pick], el_edge[pick]
    fast = flow_sweep(system, c, el_node, el_edge, threads=1)
    full = flow_sweep(system, c, el_node, el_edge, threads=1, plain=True)
    return c, fast, full


def assert_same_sweep(a, b, rtol=1e-9):
    assert (a[0] == b[0]).all()
    assert (a[2] == b[2]).all()
    scale = max(1.0, np.abs(a[3]).max(initial=0), np.abs(b[3]).max(initial=0))
    assert np.abs(a[3] - b[3]).max(initial=0) <= rtol * scale
    assert np.abs(a[1] - b[1]).max(initial=0) <= rtol * scale


@settings(max_examples=10, deadline=None)
@given(g=dc_grids(), water=st.booleans())
def test_screened_sweep_equals_the_sweep_of_full_cascades(g, water):
    system = coupled_from_arrays(g, water)
    _, fast, full = sweeps(system)
    assert_same_sweep(fast, full, rtol=0)                     # cleared rows are exact zeros


@settings(max_examples=3, deadline=None)
@given(g=dc_grids())
def test_screened_sweep_equals_the_reference_engine(g):
    system = coupled_from_arrays(g, water=True)
    c = compile_system(system)
    el_node, el_edge = element_indices(c, "edges")
    fast = flow_sweep(system, c, el_node, el_edge, threads=1)
    ref = flow_sweep(system, c, el_node, el_edge, engine="reference")
    assert_same_sweep(fast, ref)


def test_a_base_case_that_trips_is_not_screened():
    """Ratings below the intact flows: the intact cascade trips, so every element runs in full
    (and the two sweeps still agree)."""
    rng = np.random.default_rng(5)
    n = 30
    fr = np.r_[np.arange(29), rng.choice(29, 8)]
    to = np.r_[np.arange(1, 30), rng.choice(np.arange(1, 30), 8)]
    keep = fr != to
    fr, to = fr[keep], to[keep]
    m = len(fr)
    supply = np.zeros(n)
    supply[[0, 12]] = 300.0
    demand = np.full(n, 8.0)
    grid = dict(n=n, fr=fr, to=to, x=np.full(m, 0.1), phi=np.zeros(m), cap=np.full(m, 40.0),
                supply=supply, demand=demand, priority=np.zeros(n, np.int32),
                dispatch=np.full(n, np.nan), alive=np.ones(n, bool), usable=np.ones(m, bool),
                base=100.0)
    system = coupled_from_arrays(grid, water=False)
    c, fast, full = sweeps(system, "edges")
    assert_same_sweep(fast, full, rtol=0)


# ------------------------------------------------------------------------------------------------
# real grids: IEEE 118 and PEGASE 1354, imported as a user does
# ------------------------------------------------------------------------------------------------

def _imported(name, tmp_path):
    pp = pytest.importorskip("pandapower")
    pn = pytest.importorskip("pandapower.networks")
    from click.testing import CliRunner

    from cascade import read_system
    from cascade.cli import cli

    src = tmp_path / "net.json"
    pp.to_json(getattr(pn, name)(), str(src))
    root = tmp_path / "sys"
    res = CliRunner().invoke(cli, ["import", "pandapower", str(src), "--layer", "power",
                                   "--into", str(root), "--prefix", ""])
    assert res.exit_code == 0, res.output
    system = read_system(root)
    # ratings 1.1x the intact flow (at least 1 MW): a secure intact grid whose losses overload
    c = compile_system(system)
    flows = flow_engine(c).run([], [])[5]
    edges = system.edges.copy()
    pos = c.edge_index(edges["id"])
    edges["capacity"] = np.maximum(1.1 * np.abs(np.nan_to_num(flows[pos])), 1.0)
    return InfrastructureSystem.from_tables(system.nodes, edges, system.dependencies,
                                            rules={"power": "dcflow"},
                                            bases={"power": system.layer_base("power")})


@pytest.mark.parametrize("name", ["case118", "case1354pegase"])
def test_screened_sweep_equals_full_cascades_on_imported_grids(name, tmp_path):
    """Every branch of IEEE 118; a seeded sample of 300 of PEGASE 1354's 1 991 (time)."""
    system = _imported(name, tmp_path)
    c, fast, full = sweeps(system, "edges", sample=300)
    assert_same_sweep(fast, full, rtol=0)
    assert (fast[1] > 0).any() and (fast[1] == 0).any()      # both kinds of contingencies


def test_screened_sweep_equals_the_reference_on_ieee118(tmp_path):
    system = _imported("case118", tmp_path)
    c = compile_system(system)
    el_node, el_edge = element_indices(c, "edges")
    fast = flow_sweep(system, c, el_node, el_edge, threads=1)
    ref = flow_sweep(system, c, el_node, el_edge, engine="reference")
    assert_same_sweep(fast, ref)

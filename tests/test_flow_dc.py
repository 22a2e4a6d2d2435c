"""DC power flow with overload trips (cascade/_flow.pyx DCFlow) against plain dense solves.

Oracles: numpy.linalg.solve of the reduced B theta = P per island (written here from docs/format.md
v2, independently of the kernel), hand-made cases with flows worked out by hand, and the kernel
with Woodbury updates against the same kernel refactorising every island (kmax = 0).
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.flowkernels import DCFlow, dc_cascade


# ------------------------------------------------------------------------------------------------
# a plain reference: docs/format.md (v2)'s dcflow rule, dense and slow
# ------------------------------------------------------------------------------------------------

def plain_dc_cascade(alive, fr, to, x, phi, cap, usable, supply, demand, priority, dispatch,
                     base=100.0):
    n, m = len(alive), len(fr)
    active = usable & (cap > 0) & alive[fr] & alive[to] & (fr != to)
    trips = []
    step = 0
    while True:
        step += 1
        g = nx.MultiGraph()
        g.add_nodes_from(np.flatnonzero(alive).tolist())
        for e in np.flatnonzero(active):
            g.add_edge(int(fr[e]), int(to[e]), key=int(e))
        frac = np.zeros(n)
        working = np.zeros(n, dtype=bool)
        flow = np.full(m, np.nan)
        for comp in nx.connected_components(g):
            buses = np.array(sorted(comp))
            brs = np.array(sorted({k for _, _, k in g.edges(buses.tolist(), keys=True)}),
                           dtype=int)
            G = supply[buses][supply[buses] > 0].sum()
            if G <= 0:
                if len(brs):
                    flow[brs] = 0.0
                continue
            working[buses] = True
            frac[buses] = 1.0
            rem = G
            for p in sorted(set(priority[buses].tolist()), reverse=True):
                cls = buses[(priority[buses] == p) & (demand[buses] > 0)]
                D = demand[cls].sum()
                if D <= 0:
                    continue
                f = min(1.0, rem / D)
                frac[cls] = f
                rem = max(rem - f * D, 0.0)
            S = G - rem
            gens = buses[supply[buses] > 0]
            if not np.isnan(dispatch[gens]).any():
                P = dispatch[gens]
                if S > P.sum():
                    out = P + (S - P.sum()) * (supply[gens] - P) / (G - P.sum())
                elif S < P.sum():
                    out = S * P / P.sum()
                else:
                    out = P.copy()
            else:
                out = S * supply[gens] / G
            inj = -frac[buses] * demand[buses]
            inj[np.searchsorted(buses, gens)] += out
            if len(buses) == 1:
                continue
            idx = {b: i for i, b in enumerate(buses)}
            nb = len(buses)
            B = np.zeros((nb, nb))
            rhs = inj / base
            for e in brs:
                i, j, b = idx[fr[e]], idx[to[e]], 1.0 / x[e]
                B[i, i] += b
                B[j, j] += b
                B[i, j] -= b
                B[j, i] -= b
                rhs[i] += phi[e] / x[e]
                rhs[j] -= phi[e] / x[e]
            theta = np.zeros(nb)
            theta[1:] = np.linalg.solve(B[1:, 1:], rhs[1:])
            for e in brs:
                flow[e] = base * (theta[idx[fr[e]]] - theta[idx[to[e]]] - phi[e]) / x[e]
        over = [e for e in np.flatnonzero(active) if abs(flow[e]) > cap[e] * (1 + 1e-9)]
        if not over:
            break
        for e in over:
            trips.append((int(e), step, float(flow[e])))
            active[e] = False
    flow[~active] = np.nan
    return frac * working, working, flow, trips


def random_grid(rng, n, extra, loaded=1.0):
    """A connected meshed grid: a random tree plus ``extra`` chords, a few generators."""
    fr, to = [], []
    for v in range(1, n):
        fr.append(int(rng.integers(0, v)))
        to.append(v)
    for _ in range(extra):
        a, b = rng.choice(n, 2, replace=False)
        fr.append(int(a))
        to.append(int(b))
    perm = rng.permutation(n)                  # buses of the tree are not in order
    fr = perm[np.array(fr)]
    to = perm[np.array(to)]
    m = len(fr)
    x = rng.uniform(0.01, 0.3, m)
    phi = np.where(rng.random(m) < 0.1, rng.uniform(-0.1, 0.1, m), 0.0)
    demand = np.where(rng.random(n) < 0.7, rng.uniform(5, 50, n), 0.0)
    supply = np.zeros(n)
    gens = rng.choice(n, max(1, n // 8), replace=False)
    supply[gens] = demand.sum() * loaded * rng.dirichlet(np.ones(len(gens)))
    return fr, to, x, phi, supply, demand


def assert_flows_close(a, b, rel=1e-9):
    both = ~np.isnan(a)
    np.testing.assert_array_equal(both, ~np.isnan(b))
    scale = max(1.0, np.abs(a[both]).max(initial=0.0))
    assert np.abs(a[both] - b[both]).max(initial=0.0) <= rel * scale


# ------------------------------------------------------------------------------------------------
# flows against dense solves
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("n", [12, 60, 300])
def test_flows_equal_dense_solve_on_random_meshed_grids(seed, n):
    rng = np.random.default_rng(seed)
    fr, to, x, phi, supply, demand = random_grid(rng, n, n // 2, loaded=1.2)
    m = len(fr)
    alive = np.ones(n, dtype=bool)
    usable = rng.random(m) > 0.03
    prio = np.zeros(n, dtype=np.int32)
    r = dc_cascade(alive, fr, to, x, phi, np.full(m, np.inf), usable, supply, demand, prio,
                   base=100.0)
    ref = plain_dc_cascade(alive, fr, to, x, phi, np.full(m, np.inf), usable, supply, demand,
                           prio, np.full(n, np.nan))
    assert len(r.trip_branch) == 0
    np.testing.assert_array_equal(r.working, ref[1])
    np.testing.assert_allclose(r.served, ref[0], rtol=1e-12)
    assert_flows_close(r.flows, ref[2])
    # the flows balance the injections at every bus
    net = np.zeros(n)
    f = np.nan_to_num(r.flows)
    np.add.at(net, fr, f)
    np.add.at(net, to, -f)
    load = r.served * demand
    gen = net + load
    assert np.all(gen[supply == 0] == pytest.approx(0.0, abs=1e-8 * demand.sum()))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(5, 80), st.floats(0.6, 2.0))
def test_cascades_equal_the_plain_reference(seed, n, loaded):
    """Random grids with ratings near their base-case flows: trips, steps, flows and service."""
    rng = np.random.default_rng(seed)
    fr, to, x, phi, supply, demand = random_grid(rng, n, n // 3, loaded)
    m = len(fr)
    alive = rng.random(n) > 0.05
    usable = rng.random(m) > 0.05
    prio = rng.integers(0, 3, n).astype(np.int32)
    dispatch = (np.where(supply > 0, supply * rng.uniform(0.3, 1.0, n), np.nan)
                if rng.random() < 0.5 else np.full(n, np.nan))
    base_flow = dc_cascade(np.ones(n, bool), fr, to, x, phi, np.full(m, np.inf),
                           np.ones(m, bool), supply, demand, prio, dispatch).flows
    scale = max(1.0, np.nanmax(np.abs(base_flow), initial=0.0))
    # ratings near the intact flows (away from rounding noise on branches that carry ~0)
    cap = np.abs(np.nan_to_num(base_flow)) * rng.uniform(0.8, 1.6, m) + 1e-6 * scale
    cap[rng.random(m) < 0.2] = np.inf
    ref = plain_dc_cascade(alive, fr, to, x, phi, cap, usable, supply, demand, prio, dispatch)
    for kmax in (32, 0):
        k = DCFlow(n, fr, to, x, phi, cap, base=100.0, kmax=kmax)
        r = k.cascade(alive, usable, supply, demand, prio, dispatch)
        assert [(int(b), int(s)) for b, s in zip(r.trip_branch, r.trip_step)] == \
            [(b, s) for b, s, _ in ref[3]]
        np.testing.assert_allclose(r.trip_flow, [f for _, _, f in ref[3]], rtol=0,
                                   atol=1e-9 * scale)
        np.testing.assert_array_equal(r.working, ref[1])
        np.testing.assert_allclose(r.served, ref[0], rtol=1e-12, atol=1e-12)
        assert_flows_close(r.flows, ref[2])


def test_woodbury_path_equals_refactorisation_on_n_minus_1():
    """Every single-branch outage of a 200-bus grid: the updated factors give the same cascade
    as factorising every island afresh, and the update path is the one taken."""
    rng = np.random.default_rng(3)
    n = 200
    fr, to, x, phi, supply, demand = random_grid(rng, n, 120)
    m = len(fr)
    base_flow = dc_cascade(np.ones(n, bool), fr, to, x, phi, np.full(m, np.inf),
                           np.ones(m, bool), supply, demand).flows
    cap = np.abs(base_flow) * 1.3 + 1.0
    fast = DCFlow(n, fr, to, x, phi, cap, kmax=32)
    slow = DCFlow(n, fr, to, x, phi, cap, kmax=0)
    alive = np.ones(n, dtype=bool)
    n_trips = 0
    for b in range(m):
        usable = np.ones(m, dtype=bool)
        usable[b] = False
        a = fast.cascade(alive, usable, supply, demand)
        c = slow.cascade(alive, usable, supply, demand)
        np.testing.assert_array_equal(a.trip_branch, c.trip_branch)
        np.testing.assert_array_equal(a.trip_step, c.trip_step)
        np.testing.assert_array_equal(a.working, c.working)
        np.testing.assert_allclose(a.served, c.served, rtol=1e-12)
        assert_flows_close(a.flows, c.flows)
        n_trips += len(a.trip_branch)
    assert n_trips > 0                        # the sweep did exercise trips
    assert fast.stats["woodbury"] > 0
    assert fast.stats["factorizations"] < slow.stats["factorizations"]


# ------------------------------------------------------------------------------------------------
# hand-made cases
# ------------------------------------------------------------------------------------------------

def test_two_step_overload_cascade():
    # 100 MW from bus 0 to bus 3 over three parallel paths of reactance 0.1, 0.2 and 0.4:
    # flows 57.14 / 28.57 / 14.29.  Path a (rated 50) trips at step 1; path b then carries
    # 66.67 > 60 and both its branches trip at step 2; path c carries all 100 (rated 120).
    fr = [0, 0, 1, 0, 2]
    to = [3, 1, 3, 2, 3]
    x = [0.1, 0.1, 0.1, 0.2, 0.2]
    cap = [50, 60, 60, 120, 120]
    r = dc_cascade(np.ones(4, bool), fr, to, x, None, cap, np.ones(5, bool),
                   [100, 0, 0, 0], [0, 0, 0, 100])
    np.testing.assert_array_equal(r.trip_branch, [0, 1, 2])
    np.testing.assert_array_equal(r.trip_step, [1, 2, 2])
    np.testing.assert_allclose(r.trip_flow, [100 * 10 / 17.5, 100 * 5 / 7.5, 100 * 5 / 7.5])
    np.testing.assert_allclose(r.flows, [np.nan, np.nan, np.nan, 100, 100])
    # bus 1 is left alone without supply: it stops; the others are served in full
    np.testing.assert_array_equal(r.working, [True, False, True, True])
    np.testing.assert_allclose(r.served, [1, 0, 1, 1])


def test_trip_islands_a_district_with_a_small_generator():
    # 0 (gen 100) - 1 (rated 10) ; 1 - 2 ; 2 - 3 (gen 5); 20 MW at bus 2.  Shared in proportion
    # to supply, bus 0 sends 19.05 > 10: 0-1 trips; the island {1, 2, 3} has 5 MW for 20.
    r = dc_cascade(np.ones(4, bool), [0, 1, 2], [1, 2, 3], [0.1] * 3, None, [10, np.inf, np.inf],
                   np.ones(3, bool), [100, 0, 0, 5], [0, 0, 20, 0])
    np.testing.assert_array_equal(r.trip_branch, [0])
    np.testing.assert_allclose(r.trip_flow, [20 * 100 / 105])
    np.testing.assert_array_equal(r.working, [True, True, True, True])
    np.testing.assert_allclose(r.served, [1, 1, 0.25, 1])
    np.testing.assert_allclose(r.flows, [np.nan, 0, -5], atol=1e-12)


def test_island_without_supply_stops():
    r = dc_cascade([1, 1, 1, 1], [0, 2], [1, 3], [0.1, 0.1], None, None, [1, 1],
                   [50, 0, 0, 0], [0, 10, 10, 10])
    np.testing.assert_array_equal(r.working, [True, True, False, False])
    np.testing.assert_allclose(r.served, [1, 1, 0, 0])
    np.testing.assert_allclose(r.flows, [10, 0])


def test_priority_classes_shed_in_order():
    # one island, 100 MW for 60 (priority 1) + 80 + 20 (priority 0): 1.0, then 40 / 100
    r = dc_cascade(np.ones(4, bool), [0, 0, 0], [1, 2, 3], [0.1] * 3, None, None,
                   np.ones(3, bool), [100, 0, 0, 0], [0, 60, 80, 20], [0, 1, 0, 0])
    np.testing.assert_allclose(r.served, [1, 1, 0.4, 0.4])
    np.testing.assert_allclose(r.flows, [60, 32, 8])


@pytest.mark.parametrize("load, alive1, g0, g1", [
    (80, 1, 50, 30),                             # at the setpoints
    (120, 1, 50 + 40 * 50 / 120, 30 + 40 * 70 / 120),   # more: in proportion to headroom
    (40, 1, 25, 15),                             # less: in proportion to the setpoints
    (80, 0, 80, 0),                              # unit 1 lost: unit 0 makes it up
])
def test_dispatch_sharing(load, alive1, g0, g1):
    r = dc_cascade([1, alive1, 1], [0, 1], [2, 2], [0.1, 0.1], None, None, [1, 1],
                   [100, 100, 0], [0, 0, load], dispatch=[50, 30, np.nan])
    np.testing.assert_allclose(np.nan_to_num(r.flows), [g0, g1])


def test_phase_shift_drives_a_loop_flow():
    # two parallel branches 0-1, no injection: a shift of 0.1 rad on branch 0 circulates
    # base * 0.1 / (x0 + x1) around the loop
    r = dc_cascade([1, 1], [0, 0], [1, 1], [0.1, 0.3], [0.1, 0.0], None, [1, 1], [1, 0], [0, 0])
    np.testing.assert_allclose(r.flows, [-100 * 0.1 / 0.4, 100 * 0.1 / 0.4])


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        dc_cascade([1, 1], [0], [1], [0.0], None, None, [1], [1, 0], [0, 1])
    with pytest.raises(ValueError):
        dc_cascade([1, 1], [0], [5], [0.1], None, None, [1], [1, 0], [0, 1])


def test_no_branches_int32_indices_and_reuse():
    k = DCFlow(3, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    r = k.cascade([1, 1, 0], np.zeros(0, bool), [5, 0, 5], [2, 1, 1])
    np.testing.assert_array_equal(r.working, [True, False, False])
    np.testing.assert_allclose(r.served, [1, 0, 0])
    assert r.flows.shape == (0,) and len(r.trip_branch) == 0
    rng = np.random.default_rng(5)
    fr, to, x, phi, supply, demand = random_grid(rng, 40, 20)
    m = len(fr)
    a = DCFlow(40, fr.astype(np.int32), to.astype(np.int32), x, phi).cascade(
        np.ones(40, bool), np.ones(m, bool), supply, demand)
    b = DCFlow(40, fr, to, x, phi)
    for _ in range(2):                        # the same object twice: no state leaks
        c = b.cascade(np.ones(40, bool), np.ones(m, bool), supply, demand)
        np.testing.assert_array_equal(a.flows, c.flows)

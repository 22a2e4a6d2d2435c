"""Max-min fair allocation by priority (cascade/_flow.pyx MaxMinFlow) against independent oracles.

Oracles: networkx's maximum_flow for the total served (per priority prefix), scipy's HiGHS LP for
max-min fairness (no node's fraction can be raised without lowering one that is not larger, or
one of a higher class), and direct checks of conservation and capacities on the returned flows.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from cascade.flowkernels import MaxMinFlow, maxmin_flow

TOL = 1e-9


# ------------------------------------------------------------------------------------------------
# random layers
# ------------------------------------------------------------------------------------------------

@st.composite
def flow_layers(draw, max_nodes: int = 10):
    n = draw(st.integers(2, max_nodes))
    m = draw(st.integers(0, 2 * n))
    ends = st.integers(0, n - 1)
    src = np.array(draw(st.lists(ends, min_size=m, max_size=m)), dtype=np.int64)
    dst = np.array(draw(st.lists(ends, min_size=m, max_size=m)), dtype=np.int64)
    directed = np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=bool)
    # small integers make equal levels (ties) common; inf = unlimited; 0 = unusable
    caps = st.one_of(st.integers(0, 6).map(float), st.just(np.inf),
                     st.floats(0.1, 5.0, allow_nan=False))
    cap = np.array(draw(st.lists(caps, min_size=m, max_size=m)), dtype=float)
    usable = np.array(draw(st.lists(st.booleans().map(lambda b: b or True), min_size=m,
                                    max_size=m)), dtype=bool)
    if m:
        usable &= np.array(draw(st.lists(st.integers(0, 9), min_size=m, max_size=m))) > 0
    alive = np.array(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))) > 0
    supply = np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 0.0, 2.0, 5.0, 7.5]),
                                    min_size=n, max_size=n)))
    demand = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, 0.5, 4.25]),
                                    min_size=n, max_size=n)))
    priority = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.int32)
    return dict(alive=alive, edge_src=src, edge_dst=dst, edge_directed=directed,
                edge_capacity=cap, edge_usable=usable, supply=supply, demand=demand,
                priority=priority)


def active_edges(L):
    a = L["alive"]
    return (L["edge_usable"] & a[L["edge_src"]] & a[L["edge_dst"]]
            & (L["edge_src"] != L["edge_dst"]) & (L["edge_capacity"] > 0))


def reachable(L) -> np.ndarray:
    g = nx.DiGraph()
    n = len(L["alive"])
    g.add_nodes_from(range(n))
    for e in np.flatnonzero(active_edges(L)):
        u, v = int(L["edge_src"][e]), int(L["edge_dst"][e])
        g.add_edge(u, v)
        if not L["edge_directed"][e]:
            g.add_edge(v, u)
    out = np.zeros(n, dtype=bool)
    for s in np.flatnonzero(L["alive"] & (L["supply"] > 0)):
        out[s] = True
        out[list(nx.descendants(g, int(s)))] = True
    return out


def nx_maxflow(L, sinks: np.ndarray) -> float:
    """networkx max flow from the alive sources to the demands of ``sinks`` (mask)."""
    g = nx.DiGraph()
    n = len(L["alive"])
    g.add_node("S")
    g.add_node("T")

    def add(u, v, c):
        if np.isinf(c):
            g.add_edge(u, v)               # no capacity attribute = unlimited
            g[u][v].pop("capacity", None)
        elif g.has_edge(u, v):
            if "capacity" in g[u][v]:
                g[u][v]["capacity"] += c
        else:
            g.add_edge(u, v, capacity=c)

    for e in np.flatnonzero(active_edges(L)):
        u, v, c = int(L["edge_src"][e]), int(L["edge_dst"][e]), float(L["edge_capacity"][e])
        add(u, v, c)
        if not L["edge_directed"][e]:
            add(v, u, c)
    for i in range(n):
        if L["alive"][i] and L["supply"][i] > 0:
            add("S", i, float(L["supply"][i]))
        if sinks[i] and L["demand"][i] > 0:
            add(i, "T", float(L["demand"][i]))
    return nx.maximum_flow_value(g, "S", "T")


def lp_max(L, working, target: int, lower: dict[int, float]) -> float:
    """Largest x_target deliverable with x_j >= lower[j] (HiGHS LP over arc flows)."""
    act = np.flatnonzero(active_edges(L))
    arcs = []
    for e in act:
        u, v, c = int(L["edge_src"][e]), int(L["edge_dst"][e]), float(L["edge_capacity"][e])
        arcs.append((u, v, c))
        if not L["edge_directed"][e]:
            arcs.append((v, u, c))
    n = len(working)
    na = len(arcs)
    nv = na + 2 * n                       # arc flows, injections s_v, deliveries x_v
    A = np.zeros((n, nv))
    for k, (u, v, _) in enumerate(arcs):
        A[u, k] -= 1
        A[v, k] += 1
    for v in range(n):
        A[v, na + v] = 1
        A[v, na + n + v] = -1
    bounds = [(0, None if np.isinf(c) else c) for (_, _, c) in arcs]
    bounds += [(0, float(L["supply"][v]) if L["alive"][v] else 0.0) for v in range(n)]
    for v in range(n):
        d = float(L["demand"][v]) if working[v] else 0.0
        lo = min(lower.get(v, 0.0), d)
        bounds.append((lo, d))
    c = np.zeros(nv)
    c[na + n + target] = -1
    r = linprog(c, A_eq=A, b_eq=np.zeros(n), bounds=bounds, method="highs")
    assert r.status == 0, r.message
    return -r.fun


def check_flows(L, res):
    """Flow conservation at every node (injection <= supply, delivery = served) and capacities."""
    n = len(L["alive"])
    f = res.edge_flow
    act = active_edges(L)
    assert np.all(f[~act] == 0)
    cap = L["edge_capacity"]
    scale = 1.0 + L["supply"].sum() + L["demand"].sum()
    assert np.all(np.abs(f) <= np.where(np.isinf(cap), np.inf, cap) * (1 + TOL) + TOL * scale)
    assert np.all(f[L["edge_directed"]] >= -TOL * scale)
    net_out = np.zeros(n)
    np.add.at(net_out, L["edge_src"], f)
    np.add.at(net_out, L["edge_dst"], -f)
    inject = net_out + res.served           # what each node injects from its own supply
    assert np.all(inject >= -TOL * scale)
    assert np.all(inject <= np.where(res.working, L["supply"], 0) + TOL * scale)


# ------------------------------------------------------------------------------------------------
# closed-form cases
# ------------------------------------------------------------------------------------------------

def test_chain_and_branch_shares_fairly():
    # 0 (supply 10) -> 1 (cap 6) -> 2 (cap 3); 0 - 3 unlimited.  3 gets all 4; 1 and 2 share the 6.
    r = maxmin_flow([1, 1, 1, 1], [0, 1, 0], [1, 2, 3], [1, 1, 0], [6, 3, np.nan], [1, 1, 1],
                    [10, 0, 0, 0], [0, 5, 5, 4], [0, 0, 0, 0])
    np.testing.assert_allclose(r.served, [0, 3, 3, 4])
    np.testing.assert_allclose(r.edge_flow, [6, 3, 4])
    assert r.working.all()


def test_priority_class_served_first():
    r = maxmin_flow([1, 1, 1, 1], [0, 1, 0], [1, 2, 3], [1, 1, 0], [6, 3, np.nan], [1, 1, 1],
                    [10, 0, 0, 0], [0, 5, 5, 4], [0, 1, 0, 2])
    np.testing.assert_allclose(r.served, [0, 5, 1, 4])


def test_bottleneck_levels_are_nested():
    # star from source 0 (supply 100) through pipes of capacity 1, 2, 3, 50 to demands of 4
    r = maxmin_flow([1] * 5, [0, 0, 0, 0], [1, 2, 3, 4], [0] * 4, [1, 2, 3, 50], [1] * 4,
                    [100, 0, 0, 0, 0], [0, 4, 4, 4, 4], [0] * 5)
    np.testing.assert_allclose(r.served, [0, 1, 2, 3, 4])


def test_short_supply_is_shared_in_proportion_to_demand():
    r = maxmin_flow([1] * 4, [0, 0, 0], [1, 2, 3], [1] * 3, [np.inf] * 3, [1] * 3,
                    [6, 0, 0, 0], [0, 1, 2, 9], [0] * 4)
    np.testing.assert_allclose(r.served, [0, 0.5, 1.0, 4.5])


def test_directed_edge_one_way_and_unreachable_nodes():
    # 1 -> 0 only: node 1 cannot be reached from source 0; node 2 is dead, node 3 alone.
    r = maxmin_flow([1, 1, 0, 1], [1, 0], [0, 2], [1, 0], [5, 5], [1, 1],
                    [5, 0, 0, 0], [1, 1, 1, 1], [0] * 4)
    np.testing.assert_allclose(r.served, [1, 0, 0, 0])
    np.testing.assert_array_equal(r.working, [True, False, False, False])


def test_source_serves_itself_and_zero_capacity_is_unusable():
    r = maxmin_flow([1, 1], [0], [1], [0], [0.0], [1], [3, 0], [2, 2], [0, 0])
    np.testing.assert_allclose(r.served, [2, 0])
    np.testing.assert_array_equal(r.working, [True, False])


def test_empty_and_reuse():
    k = MaxMinFlow(3, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, bool),
                   np.zeros(0))
    r = k.solve([1, 1, 1], np.zeros(0, bool), [0, 1, 0], [1, 1, 1], [0, 0, 0])
    np.testing.assert_allclose(r.served, [0, 1, 0])
    r = k.solve([1, 0, 1], np.zeros(0, bool), [0, 1, 0], [1, 1, 1], [0, 0, 0])
    np.testing.assert_allclose(r.served, [0, 0, 0])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        maxmin_flow([1, 1], [0], [2], [0], [1.0], [1], [1, 0], [0, 1], [0, 0])
    with pytest.raises(ValueError):
        maxmin_flow([1, 1], [0], [1], [0], [1.0], [1], [-1, 0], [0, 1], [0, 0])


# ------------------------------------------------------------------------------------------------
# random layers against the oracles
# ------------------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow_layers())
def test_random_layers_total_and_priority_prefixes_equal_networkx(L):
    r = maxmin_flow(**L)
    work = reachable(L)
    np.testing.assert_array_equal(r.working, work)
    assert np.all(r.served[~work] == 0)
    assert np.all(r.served <= L["demand"] * (1 + TOL))
    scale = 1.0 + L["supply"].sum() + L["demand"].sum()
    # the total is the maximum flow; each prefix of classes gets its own maximum flow
    for p in sorted(set(L["priority"].tolist()), reverse=True):
        prefix = work & (L["priority"] >= p)
        assert abs(r.served[prefix].sum() - nx_maxflow(L, prefix)) <= TOL * scale
    check_flows(L, r)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow_layers(max_nodes=8))
def test_random_layers_are_max_min_fair_by_lp(L):
    r = maxmin_flow(**L)
    work = r.working
    d = L["demand"]
    prio = L["priority"]
    frac = np.where(d > 0, r.served / np.where(d > 0, d, 1), 1.0)
    scale = 1.0 + L["supply"].sum() + d.sum()
    for i in np.flatnonzero(work & (d > 0) & (frac < 1 - TOL)):
        # keep every higher class, and every node of i's class with a fraction not larger
        keep = {int(j): float(r.served[j]) for j in np.flatnonzero(work & (d > 0))
                if prio[j] > prio[i] or (prio[j] == prio[i] and frac[j] <= frac[i] + TOL)
                and j != i}
        best = lp_max(L, work, int(i), keep)
        assert best <= r.served[i] + 1e-7 * scale, (i, best, r.served[i])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_larger_random_graphs_equal_networkx(seed):
    rng = np.random.default_rng(seed)
    n = 60
    m = 150
    L = dict(alive=rng.random(n) > 0.05, edge_src=rng.integers(0, n, m),
             edge_dst=rng.integers(0, n, m), edge_directed=rng.random(m) < 0.3,
             edge_capacity=np.where(rng.random(m) < 0.1, np.inf, rng.random(m) * 5),
             edge_usable=rng.random(m) > 0.05,
             supply=np.where(rng.random(n) < 0.1, rng.random(n) * 30, 0.0),
             demand=rng.random(n) * 2, priority=rng.integers(0, 3, n).astype(np.int32))
    r = maxmin_flow(**L)
    scale = 1.0 + L["supply"].sum() + L["demand"].sum()
    work = reachable(L)
    np.testing.assert_array_equal(r.working, work)
    for p in (2, 1, 0):
        prefix = work & (L["priority"] >= p)
        assert abs(r.served[prefix].sum() - nx_maxflow(L, prefix)) <= TOL * scale
    check_flows(L, r)
    # int32 indices give the same answer
    L32 = dict(L, edge_src=L["edge_src"].astype(np.int32), edge_dst=L["edge_dst"].astype(np.int32))
    np.testing.assert_array_equal(maxmin_flow(**L32).served, r.served)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_warm_starts_repaired_by_push_relabel_keep_totals_flows_and_fairness(seed):
    """Mid-size layers with short supply, where splits' lower parts start from the split's flow
    and push-relabel moves the surplus: totals equal networkx, flows conserve, and no node's
    fraction can be raised by the LP without lowering a smaller one (checked on a sample)."""
    rng = np.random.default_rng(seed)
    n, m = 40, 90
    L = dict(alive=np.ones(n, bool), edge_src=rng.integers(0, n, m), edge_dst=rng.integers(0, n, m),
             edge_directed=rng.random(m) < 0.2, edge_capacity=rng.integers(1, 6, m).astype(float),
             edge_usable=np.ones(m, bool),
             supply=np.where(np.arange(n) < 3, 20.0, 0.0), demand=rng.integers(0, 4, n).astype(float),
             priority=np.zeros(n, np.int32))
    k = MaxMinFlow(n, L["edge_src"], L["edge_dst"], L["edge_directed"], L["edge_capacity"])
    r = k.solve(L["alive"], L["edge_usable"], L["supply"], L["demand"], L["priority"])
    scale = 1.0 + L["supply"].sum() + L["demand"].sum()
    work = reachable(L)
    np.testing.assert_array_equal(r.working, work)
    assert abs(r.served[work].sum() - nx_maxflow(L, work)) <= TOL * scale
    check_flows(L, r)
    d = L["demand"]
    frac = np.where(d > 0, r.served / np.where(d > 0, d, 1), 1.0)
    low = np.flatnonzero(work & (d > 0) & (frac < 1 - TOL))
    for i in low[:4]:
        keep = {int(j): float(r.served[j]) for j in np.flatnonzero(work & (d > 0))
                if frac[j] <= frac[i] + TOL and j != i}
        assert lp_max(L, work, int(i), keep) <= r.served[i] + 1e-7 * scale


def test_push_relabel_repairs_happen_on_the_benchmark_kind_of_layer():
    """The repair path is exercised (not only the plain Dinic): a 2 000-node random layer with
    short supply repairs some warm starts, and its total is networkx's maximum flow."""
    rng = np.random.default_rng(11)
    n = 2000
    m = 2 * n
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    cap = rng.integers(1, 11, m).astype(float)
    demand = rng.integers(1, 4, n).astype(float)
    supply = np.zeros(n)
    supply[:20] = np.floor(0.6 * demand.sum() / 20)
    demand[:20] = 0
    L = dict(alive=np.ones(n, bool), edge_src=src, edge_dst=dst, edge_directed=np.zeros(m, bool),
             edge_capacity=cap, edge_usable=np.ones(m, bool), supply=supply, demand=demand,
             priority=np.zeros(n, np.int32))
    k = MaxMinFlow(n, src, dst, L["edge_directed"], cap)
    r = k.solve(L["alive"], L["edge_usable"], supply, demand, L["priority"])
    assert k.stats["repairs"] > 0 and k.stats["pushes"] > 0
    scale = 1.0 + supply.sum() + demand.sum()
    work = reachable(L)
    assert abs(r.served[work].sum() - nx_maxflow(L, work)) <= TOL * scale
    check_flows(L, r)

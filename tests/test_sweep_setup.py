"""The N-1 sweep's set-up (issue 15): the arcs of each edge found by one counting pass, the
intact fixpoint reused as the start state when nothing is pre-failed, and the timings
``core_sweep(stats=...)`` reports to the benchmarks."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import _core, compile_system
from cascade.criticality import core_sweep, element_indices, synthetic_lifelines
from cascade.generators import coupled_er

from strategies import systems


def same(a, b):
    """Counts equal; demand sums equal up to the order of summation (the modes list failures
    in different orders)."""
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])
    assert np.allclose(a[1], b[1]) and np.allclose(a[3], b[3])


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.integers(0, 30), max_size=80), extra=st.integers(0, 5),
       dtype=st.sampled_from([np.int32, np.int64]))
def test_edge_arcs_is_the_stable_argsort(keys, extra, dtype):
    """Counting pass == np.argsort(kind="stable") for any keys, repeated, missing or single."""
    adj_edge = np.asarray(keys, dtype)
    n_edges = (max(keys) + 1 if keys else 0) + extra
    out = np.full(len(keys), -7, dtype)
    _core.edge_arcs(adj_edge, n_edges, out)
    assert np.array_equal(out, np.argsort(adj_edge, kind="stable"))


@settings(max_examples=100, deadline=None)
@given(case=systems())
def test_edge_arcs_of_compiled_systems(case):
    """On compiled systems (directed edges, self-loops): the two arcs of edge e sit at 2e, 2e+1."""
    c = compile_system(case[0])
    out = np.zeros(len(c.adj_edge), c.index_dtype)
    _core.edge_arcs(c.adj_edge, c.n_edges, out)
    assert np.array_equal(out, np.argsort(np.asarray(c.adj_edge), kind="stable"))
    assert np.array_equal(np.asarray(c.adj_edge)[out], np.repeat(np.arange(c.n_edges), 2))


@settings(max_examples=150, deadline=None)
@given(case=systems(), method=st.sampled_from(["incremental", "local"]), forest=st.booleans())
def test_sweep_with_and_without_prefailures_equals_the_full_sweep(case, method, forest):
    """The start state is the intact fixpoint itself without pre-failures and a cascade of its
    own with them; both give the plain sweep's answers, in the forest order or not."""
    from cascade import criticality

    old = criticality.FOREST_ORDER
    criticality.FOREST_ORDER = forest
    try:
        _prefailures_case(case, method)
    finally:
        criticality.FOREST_ORDER = old


def _prefailures_case(case, method):
    system, failed_nodes, failed_edges = case
    c = compile_system(system)
    el_node, el_edge = element_indices(c, "all")
    pre_nodes = c.node_index(failed_nodes) if failed_nodes else ()
    pre_edges = c.edge_index(failed_edges) if failed_edges else ()
    for pre in (((), ()), (pre_nodes, pre_edges)):
        full = core_sweep(c, el_node, el_edge, *pre, threads=1, plain=True)
        fast = core_sweep(c, el_node, el_edge, *pre, threads=1, method=method)
        same(full, fast)


def test_stats_report_kernel_and_setup_time():
    c = compile_system(synthetic_lifelines(3000, seed=1))
    el_node, el_edge = element_indices(c, "nodes")
    stats = {}
    got = core_sweep(c, el_node, el_edge, threads=1, chunk=500, stats=stats)
    assert stats["kernel_calls"] == -(-len(el_node) // 500)
    assert stats["kernel_s"] > 0 and stats["setup_s"] > 0
    assert stats["redone"] == 0
    # Timing changes no answer.
    for a, b in zip(got, core_sweep(c, el_node, el_edge, threads=1, chunk=500)):
        assert np.array_equal(a, b)
    threaded = {}
    core_sweep(c, el_node, el_edge, threads=2, chunk=500, stats=threaded)
    assert threaded["kernel_calls"] == stats["kernel_calls"] and threaded["setup_s"] is None


def test_stats_count_elements_recomputed_after_a_failed_certificate():
    """On coupled ER `giant` layers with dead nodes some answers are not certified and rerun."""
    c = compile_system(coupled_er(150, 2.5, seed=0))
    el_node, el_edge = element_indices(c, "nodes")
    stats = {}
    got = core_sweep(c, el_node, el_edge, threads=1, stats=stats)
    plain = core_sweep(c, el_node, el_edge, threads=1, plain=True)
    same(got, plain)
    assert 0 < stats["redone"] < len(el_node)     # 22 of 300 on this system


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_edge_arcs_keeps_the_sweep_answers_on_lifelines(dtype):
    c = compile_system(synthetic_lifelines(2000, seed=4), index_dtype=dtype)
    el_node, el_edge = element_indices(c, "all")
    full = core_sweep(c, el_node, el_edge, threads=1, plain=True)
    fast = core_sweep(c, el_node, el_edge, threads=1)
    same(full, fast)


def _forest(c):
    from cascade import Workspace

    ws = Workspace(c)
    ws.run()
    n, idx = c.n_nodes, c.index_dtype
    parent, par_edge = np.zeros(n, idx), np.full(n, -1, idx)
    child_ptr, child_idx = np.zeros(n + 1, idx), np.zeros(n, idx)
    _core.supply_forest(c.adj_ptr, c.adj_nbr, c.adj_edge, c.adj_fwd, c.layer_ptr, c.layer_nodes,
                        c.layer_rule, c.is_source, ws.working, ws.edge_failed, parent, par_edge,
                        child_ptr, child_idx, np.zeros(n, idx))
    return parent, child_ptr, child_idx


@settings(max_examples=150, deadline=None)
@given(case=systems(max_layers=3, max_nodes=10))
def test_forest_rank_is_a_preorder(case):
    """Every node gets one rank; a subtree (counted from ``parent`` by walking up) is the run of
    ranks that starts at its root; nodes outside the forest come last, in node order."""
    c = compile_system(case[0])
    parent, child_ptr, child_idx = _forest(c)
    n = c.n_nodes
    rank = np.full(n, -1, c.index_dtype)
    assert _core.forest_rank(parent, child_ptr, child_idx, np.zeros(n, c.index_dtype), rank) == n
    assert sorted(rank.tolist()) == list(range(n))
    in_forest = [v for v in range(n) if parent[v] != -1]
    outside = [v for v in range(n) if parent[v] == -1]
    assert [rank[v] for v in outside] == list(range(len(in_forest), n))
    for v in in_forest:
        below = set()
        for u in in_forest:          # u is below v when v is on u's path to its root
            w = u
            while True:
                if w == v:
                    below.add(u)
                    break
                if parent[w] == w:
                    break
                w = parent[w]
        assert sorted(rank[u] for u in below) == list(range(rank[v], rank[v] + len(below)))


@pytest.mark.parametrize("forest", [True, False])
def test_sweep_rows_follow_the_callers_order(forest, monkeypatch):
    """With or without the forest order, rows come back in the order asked, duplicates and
    edges mixed in included."""
    from cascade import criticality

    monkeypatch.setattr(criticality, "FOREST_ORDER", forest)
    c = compile_system(synthetic_lifelines(1500, seed=2))
    el_node, el_edge = element_indices(c, "all")
    want = core_sweep(c, el_node, el_edge, threads=1, plain=True)
    pick = np.random.default_rng(0).integers(0, len(el_node), 400)
    got = core_sweep(c, el_node[pick], el_edge[pick], threads=1)
    same(tuple(a[pick] for a in want), got)

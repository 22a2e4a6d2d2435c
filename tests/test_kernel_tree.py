"""The static cascade with local re-checks (``_core._cascade_tree``) against the whole-layer
kernel and the networkx reference: same final state, rounds, causes, groups and ``changed``."""
import numpy as np
import pytest
from hypothesis import given, settings

from cascade import Workspace, _core, compile_system, simulate
from cascade.criticality import synthetic_lifelines
from cascade.generators import coupled_er

from strategies import systems

STATE = ("working", "fail_round", "cause", "via_group", "alive")


def run_both(c, nodes, edges):
    """(whole-layer run, tree run) of the same failures, as tuples of state arrays."""
    out = []
    old = _core.LOCAL_MIN_NODES
    try:
        for threshold in (10**12, 0):
            _core.LOCAL_MIN_NODES = threshold
            ws = Workspace(c)
            k = ws.run(nodes, edges)
            out.append(tuple(getattr(ws, a).copy() for a in STATE) + (ws.changed[:k].copy(),))
    finally:
        _core.LOCAL_MIN_NODES = old
    return out


def assert_same(a, b):
    for name, x, y in zip(STATE + ("changed",), a, b):
        assert np.array_equal(x, y), name


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@settings(max_examples=300, deadline=None)
@given(case=systems())
def test_tree_cascade_equals_whole_layer_cascade(case, index_dtype):
    system, nodes, edges = case
    c = compile_system(system, index_dtype=index_dtype)
    a, b = run_both(c, c.node_index(nodes), c.edge_index(edges))
    assert_same(a, b)


@settings(max_examples=200, deadline=None)
@given(case=systems(max_layers=3, max_nodes=30))
def test_tree_cascade_equals_whole_layer_cascade_larger(case):
    """Layers of up to 30 nodes: more rounds, regions that are re-supplied or split."""
    system, nodes, edges = case
    c = compile_system(system)
    a, b = run_both(c, c.node_index(nodes), c.edge_index(edges))
    assert_same(a, b)


@settings(max_examples=150, deadline=None)
@given(case=systems(max_layers=3, max_nodes=15))
def test_tree_cascade_equals_reference(case):
    system, nodes, edges = case
    c = compile_system(system)
    old = _core.LOCAL_MIN_NODES
    try:
        _core.LOCAL_MIN_NODES = 0
        core = simulate(system, nodes + edges, compiled=c)
    finally:
        _core.LOCAL_MIN_NODES = old
    ref = simulate(system, nodes + edges, compiled=c, engine="reference")
    table_core, table_ref = core.failed(), ref.failed()
    assert table_core.equals(table_ref)
    assert np.array_equal(core.working, ref.working)


@pytest.mark.parametrize("make", [
    lambda: synthetic_lifelines(6000, seed=2),
    lambda: synthetic_lifelines(6000, seed=5, reach=40),
    lambda: coupled_er(3000, 4.0, seed=8),
])
def test_tree_cascade_on_generated_systems(make):
    """Larger generated systems, node and edge removals of several sizes: many rounds, and
    `giant` layers whose root fails or that split (the whole-layer fallback)."""
    c = compile_system(make())
    rng = np.random.default_rng(4)
    rounds = []
    for frac in (0.0005, 0.005, 0.05, 0.2, 0.4):
        nodes = np.sort(rng.choice(c.n_nodes, max(1, int(frac * c.n_nodes)), replace=False))
        edges = np.sort(rng.choice(c.n_edges, int(frac * c.n_edges / 2), replace=False))
        a, b = run_both(c, nodes.astype(c.index_dtype), edges.astype(c.index_dtype))
        assert_same(a, b)
        rounds.append(int(a[1].max()))
    assert max(rounds) >= 3   # not vacuous: cascades that go on after round 1


def test_default_threshold_and_scratch_reuse():
    """Above ``LOCAL_MIN_NODES`` a plain ``Workspace.run`` takes the tree path; runs that
    alternate between two systems (scratch re-allocated per shape) stay right."""
    assert _core.LOCAL_MIN_NODES == 20_000
    big = compile_system(synthetic_lifelines(21_000, seed=1))
    small = compile_system(synthetic_lifelines(20_100, seed=3))
    assert min(big.n_nodes, small.n_nodes) >= _core.LOCAL_MIN_NODES
    rng = np.random.default_rng(0)
    for c in (big, small, big, small):
        nodes = np.sort(rng.choice(c.n_nodes, c.n_nodes // 50, replace=False)).astype(c.index_dtype)
        ws = Workspace(c)
        k = ws.run(nodes)
        old = _core.LOCAL_MIN_NODES
        try:
            _core.LOCAL_MIN_NODES = 10**12
            ref = Workspace(c)
            k_ref = ref.run(nodes)
        finally:
            _core.LOCAL_MIN_NODES = old
        assert k == k_ref and k > len(nodes)
        for name in STATE:
            assert np.array_equal(getattr(ws, name), getattr(ref, name)), name
        assert np.array_equal(ws.changed[:k], ref.changed[:k_ref])


def test_plain_bfs_counts_components():
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    c = compile_system(coupled_er(2000, 1.0, seed=3))
    n = c.n_nodes
    adj = csr_matrix((np.ones(len(c.adj_nbr)), np.asarray(c.adj_nbr), np.asarray(c.adj_ptr)),
                     shape=(n, n))
    expected = connected_components(adj, directed=False)[0]
    got = _core.plain_bfs(c.adj_ptr, c.adj_nbr, np.zeros(n, np.uint8), np.zeros(n, c.index_dtype))
    assert got == expected and 1 < got < n

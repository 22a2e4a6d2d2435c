"""The N-1 sweep on nodes renumbered by the supply forest's preorder (issue 15,
``criticality._Renumbered``, ``RENUMBER``): the same answers, bit for bit, as without it, and a
renumbered copy that is the same system under another numbering."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import _core, compile_system, criticality
from cascade.criticality import _Renumbered, core_sweep, element_indices, synthetic_lifelines
from cascade.generators import coupled_er

from strategies import systems


@pytest.fixture
def renumber(monkeypatch):
    """A function that switches renumbering on (for every size) or off."""
    def switch(on: bool) -> None:
        monkeypatch.setattr(criticality, "RENUMBER", on)
        monkeypatch.setattr(criticality, "RENUMBER_MIN_NODES", 0)
        monkeypatch.setattr(criticality, "RENUMBER_MIN_SHARE", 0.0)
    return switch


def identical(a, b):
    """All four outputs equal exactly, demand sums included (the same order of summation)."""
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y)


def _both(c, el_node, el_edge, *pre, **kw):
    old = (criticality.RENUMBER, criticality.RENUMBER_MIN_NODES, criticality.RENUMBER_MIN_SHARE)
    try:
        criticality.RENUMBER_MIN_NODES, criticality.RENUMBER_MIN_SHARE = 0, 0.0
        criticality.RENUMBER = False
        off = core_sweep(c, el_node, el_edge, *pre, **kw)
        criticality.RENUMBER = True
        on = core_sweep(c, el_node, el_edge, *pre, **kw)
    finally:
        criticality.RENUMBER, criticality.RENUMBER_MIN_NODES, criticality.RENUMBER_MIN_SHARE = old
    return off, on


@settings(max_examples=150, deadline=None)
@given(case=systems(), elements=st.sampled_from(["nodes", "edges", "all"]),
       with_pre=st.booleans(), threads=st.sampled_from([1, 2]))
def test_renumbered_sweep_equals_the_unrenumbered_one(case, elements, with_pre, threads):
    """Random systems (every rule, directed edges, dead nodes, `giant` layers whose answers are
    not certified and are redone): identical rows with and without renumbering, and the plain
    sweep's counts."""
    system, failed_nodes, failed_edges = case
    c = compile_system(system)
    el_node, el_edge = element_indices(c, elements)
    pre = ((c.node_index(failed_nodes) if failed_nodes else (),
            c.edge_index(failed_edges) if failed_edges else ()) if with_pre else ((), ()))
    off, on = _both(c, el_node, el_edge, *pre, threads=threads, chunk=3)
    identical(off, on)
    plain = core_sweep(c, el_node, el_edge, *pre, threads=1, plain=True)
    assert np.array_equal(plain[0], on[0]) and np.array_equal(plain[2], on[2])
    assert np.allclose(plain[1], on[1]) and np.allclose(plain[3], on[3])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_renumbered_sweep_on_lifelines_in_any_order_of_elements(dtype):
    """Lifelines (the benchmarks' system), nodes and edges mixed, repeated and shuffled: rows
    in the order asked, identical to the unrenumbered sweep."""
    c = compile_system(synthetic_lifelines(3000, seed=5), index_dtype=dtype)
    el_node, el_edge = element_indices(c, "all")
    pick = np.random.default_rng(3).integers(0, len(el_node), 2 * len(el_node))
    off, on = _both(c, el_node[pick], el_edge[pick], threads=1)
    identical(off, on)
    assert on[0].sum() > len(pick)      # some elements lose more than themselves


def test_renumbered_sweep_redoes_uncertified_elements_in_the_callers_numbering():
    """Coupled ER `giant` layers with dead nodes: some answers are redone in full (the full
    cascade sums demand in node order, so it runs on the compiled system itself)."""
    c = compile_system(coupled_er(150, 2.5, seed=0))
    el_node, el_edge = element_indices(c, "all")
    stats = {}
    old = (criticality.RENUMBER_MIN_NODES, criticality.RENUMBER_MIN_SHARE)
    criticality.RENUMBER_MIN_NODES, criticality.RENUMBER_MIN_SHARE = 0, 0.0
    try:
        on = core_sweep(c, el_node, el_edge, threads=1, stats=stats)
    finally:
        criticality.RENUMBER_MIN_NODES, criticality.RENUMBER_MIN_SHARE = old
    assert stats["redone"] > 0
    identical(_both(c, el_node, el_edge, threads=1)[0], on)


def test_renumbering_only_where_it_pays(renumber, monkeypatch):
    """Below RENUMBER_MIN_NODES, or for a few elements, the sweep runs on the compiled system."""
    made = []
    real = criticality._Renumbered

    def spy(*args):
        made.append(1)
        return real(*args)

    monkeypatch.setattr(criticality, "_Renumbered", spy)
    c = compile_system(synthetic_lifelines(1000, seed=1))
    el_node, el_edge = element_indices(c, "nodes")
    monkeypatch.setattr(criticality, "RENUMBER_MIN_NODES", 10_000)
    core_sweep(c, el_node, el_edge, threads=1)
    assert made == []
    monkeypatch.setattr(criticality, "RENUMBER_MIN_NODES", 0)
    monkeypatch.setattr(criticality, "RENUMBER_MIN_SHARE", 0.5)
    core_sweep(c, el_node[:100], el_edge[:100], threads=1)
    assert made == []
    core_sweep(c, el_node, el_edge, threads=1)
    assert made == [1]
    monkeypatch.setattr(criticality, "RENUMBER", False)
    core_sweep(c, el_node, el_edge, threads=1)
    assert made == [1]


def _lists(c, v):
    """Node v's arcs, groups (with their suppliers' count) and dependants' groups."""
    arcs = [(int(c.adj_nbr[j]), int(c.adj_edge[j]), int(c.adj_fwd[j]))
            for j in range(c.adj_ptr[v], c.adj_ptr[v + 1])]
    groups = list(range(c.grp_ptr[v], c.grp_ptr[v + 1]))
    return arcs, groups, [int(g) for g in c.rdep_grp[c.rdep_ptr[v]:c.rdep_ptr[v + 1]]]


@settings(max_examples=150, deadline=None)
@given(case=systems(), seed=st.integers(0, 2**32 - 1))
def test_renumbered_copy_is_the_same_system(case, seed):
    """Under any permutation: every node's arcs, groups and dependants, in the same order, with
    nodes mapped by ``rank`` and groups by ``grank``; layers keep their order of nodes; edges
    keep their ends; groups keep owner and supplier count."""
    c = compile_system(case[0])
    n = c.n_nodes
    rank = np.random.default_rng(seed).permutation(n).astype(c.index_dtype)
    r = _Renumbered(c, rank)
    assert sorted(r.grank.tolist()) == list(range(c.n_groups))
    assert np.array_equal(r.layer_nodes, rank[c.layer_nodes])
    assert np.array_equal(r.edge_src, rank[c.edge_src]) and np.array_equal(r.edge_dst, rank[c.edge_dst])
    for v in range(n):
        nv = rank[v]
        assert r.node_layer[nv] == c.node_layer[v] and r.is_source[nv] == c.is_source[v]
        assert r.demand[nv] == c.demand[v]
        arcs, groups, deps = _lists(c, v)
        arcs_r, groups_r, deps_r = _lists(r, nv)
        assert arcs_r == [(int(rank[w]), e, f) for w, e, f in arcs]
        assert groups_r == [int(r.grank[g]) for g in groups]
        assert deps_r == [int(r.grank[g]) for g in deps]
    for g in range(c.n_groups):
        h = r.grank[g]
        assert r.group_owner[h] == rank[c.group_owner[g]]
        assert r.sup_ptr[h + 1] - r.sup_ptr[h] == c.sup_ptr[g + 1] - c.sup_ptr[g]


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(0, 4), max_size=30), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.int32, np.int64]), mapped=st.booleans())
def test_gather_ranges_is_the_numpy_concatenation(lengths, seed, dtype, mapped):
    rng = np.random.default_rng(seed)
    ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(dtype)
    rank = rng.permutation(len(lengths)).astype(dtype)   # old row v becomes row rank[v]
    perm = np.argsort(rank)                                # new row i was old row perm[i]
    vals = rng.integers(0, 50, int(ptr[-1])).astype(dtype)
    vmap = rng.integers(-5, 100, 50).astype(dtype) if mapped else np.zeros(0, dtype)
    new_ptr, out = np.zeros(len(lengths) + 1, dtype), np.zeros(int(ptr[-1]), dtype)
    _core.gather_ranges(ptr, rank, new_ptr, vals, vmap, out)
    want = [vals[ptr[i]:ptr[i + 1]] for i in perm]
    want = np.concatenate(want).astype(dtype) if want else np.zeros(0, dtype)
    assert np.array_equal(out, vmap[want] if mapped else want)
    assert np.array_equal(np.diff(new_ptr), np.asarray(lengths, dtype)[perm])
    positions = np.zeros(int(ptr[-1]), dtype)
    _core.gather_ranges(ptr, rank, new_ptr, np.zeros(0, dtype), np.zeros(0, dtype), positions)
    assert np.array_equal(positions, np.concatenate(
        [np.arange(ptr[i], ptr[i + 1]) for i in perm] + [np.zeros(0, int)]).astype(dtype))


@pytest.mark.parametrize("elements", ["nodes", "all"])
def test_ranking_and_greedy_worst_set_are_unchanged(renumber, elements):
    """The user-facing tables (the N-1 ranking with its ties, and a greedy N-3 whose steps
    sweep on top of pre-failures) are the same frames with and without renumbering."""
    from cascade.criticality import greedy_worst_set, sweep

    system = synthetic_lifelines(2500, seed=7)
    got = {}
    for on in (False, True):
        renumber(on)
        got[on] = (sweep(system, elements, threads=2),
                   greedy_worst_set(system, 3, elements, threads=2))
    for a, b in zip(got[False], got[True]):
        assert not a.empty
        assert a.equals(b)

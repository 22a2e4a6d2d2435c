"""The Cython core against the networkx reference engine, and closed-form cases."""
import numpy as np
import pytest
from hypothesis import given, settings

from cascade import Workspace, compile_system, simulate
from cascade.reference import run_cascade

from strategies import systems


def trace(result):
    """{node: (round, cause, group label, via)} of a CascadeResult."""
    table = result.failed()
    return {r.id: (r.round, r.cause, r.group, r.via) for r in table.itertuples(index=False)}


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@settings(max_examples=300, deadline=None)
@given(case=systems())
def test_core_equals_reference(case, index_dtype):
    system, nodes, edges = case
    compiled = compile_system(system, index_dtype=index_dtype)
    core = simulate(system, nodes + edges, compiled=compiled)
    ref = simulate(system, nodes + edges, compiled=compiled, engine="reference")
    assert trace(core) == trace(ref)
    assert np.array_equal(core.working, ref.working)


@settings(max_examples=150, deadline=None)
@given(case=systems())
def test_reference_via_is_the_core_via(case):
    """The reference finds the emptied group and the last supplier on its own."""
    system, nodes, edges = case
    core = simulate(system, nodes + edges)
    failures = run_cascade(system, nodes, edges)
    c = core.compiled
    for name, f in failures.items():
        v = c.node_index([name])[0]
        assert core.fail_round[v] == f.round
        if f.cause == "dependency":
            assert core.via_group[v] == c.grp_ptr[v] + f.group
            assert c.node_ids[core.via_supplier[v]] == f.via


@settings(max_examples=150, deadline=None)
@given(case=systems())
def test_incremental_from_baseline_then_undo(case):
    """Failing on top of the intact fixpoint, then undoing, restores the fixpoint exactly."""
    system, nodes, edges = case
    c = compile_system(system)
    ws = Workspace(c)
    ws.run()
    snapshot = [a.copy() for a in (ws.working, ws.fail_round, ws.cause, ws.via_group, ws.alive)]
    ws.run(c.node_index(nodes), c.edge_index(edges), incremental=True)
    # Layers with only `source`/`none` rules reach the same fixpoint as a run from scratch.
    if all(r != 2 for r in c.layer_rule):
        full = Workspace(c)
        full.run(c.node_index(nodes), c.edge_index(edges))
        assert np.array_equal(ws.working, full.working)
    ws.undo(c.edge_index(edges))
    for before, after in zip(snapshot, (ws.working, ws.fail_round, ws.cause, ws.via_group, ws.alive)):
        assert np.array_equal(before, after)
    assert not ws.edge_failed.any()

"""The N-1 sweep on flow layers (cascade.criticality.flow_sweep): elements proven inert by
FlowEngine.inert are answered from the base cascade without one of their own; the answers equal
a full cascade per element (``plain=True``) and the reference engine's."""
import numpy as np
import pandas as pd
from hypothesis import given, settings

from cascade import compile_system, read_system
from cascade.criticality import element_indices, greedy_worst_set, sweep
from cascade.flowcore import flow_engine

from test_flow_reference import build, flow_layers, flow_systems

FLOW_TOWN = "networks/flow_town"


def same_rows(a: pd.DataFrame, b: pd.DataFrame):
    """Same elements with the same counts; scores and demands to rounding (the shortcut's
    allocation can come from a different decomposition than the element's own cascade)."""
    key = ["id", "element"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert list(a["id"]) == list(b["id"]) and list(a["element"]) == list(b["element"])
    ints = ["nodes_lost", "cross_layer_lost"] + [c for c in a.columns if c.startswith("lost_")]
    np.testing.assert_array_equal(a[ints].to_numpy(), b[ints].to_numpy())
    floats = ["score"] + [c for c in a.columns if c.startswith("demand_lost_")]
    np.testing.assert_allclose(a[floats].to_numpy(float), b[floats].to_numpy(float), rtol=1e-9, atol=1e-9)


def inert_ids(system):
    c = compile_system(system)
    el_node, el_edge = element_indices(c, "all", None)
    record: list = []
    engine = flow_engine(c)
    engine.run([], [], record=record)
    mask = engine.inert(record, el_node, el_edge)
    return {str(c.node_ids[v]) if v >= 0 else str(c.edge_ids[e])
            for v, e in zip(el_node[mask], el_edge[mask])}


def test_inert_elements_of_a_hand_made_layer():
    """s (supply 10) feeds a (demand 4) over p1; a spur p2 to an empty junction j; a second pipe
    p3 from s to a (parallel to p1, so one of the two is the forest's arc and counts as used);
    p4 from j to a dead-end b without demand; p5 from b back to s, directed; the dependant node
    x of layer 'other' needs j.  Inert: b and p5 (no flow, nobody reached through them).  Not
    inert: s (source), a (served), j (supplies x, and b is reached through it), p2 and p4 (j
    and b are reached through them), p1 or p3 (flow or the forest)."""
    system = build([dict(id="s", layer="water", supply=10), dict(id="a", layer="water", demand=4),
                    dict(id="j", layer="water"), dict(id="b", layer="water"),
                    dict(id="x", layer="other")],
                   [dict(id="p1", source="s", target="a", capacity=3), dict(id="p2", source="s", target="j"),
                    dict(id="p3", source="s", target="a", capacity=3), dict(id="p4", source="j", target="b"),
                    dict(id="p5", source="b", target="s", directed=True)],
                   [dict(dependent="x", supplier="j")], rules={"water": "flow", "other": "none"})
    assert inert_ids(system) == {"p5", "b"}
    fast = sweep(system, "all", threads=1)
    same_rows(fast, sweep(system, "all", threads=1, plain=True))
    same_rows(fast, sweep(system, "all", engine="reference"))
    row = fast.set_index("id").loc["b"]
    assert row["nodes_lost"] == 1 and row["demand_lost_water"] == 0
    assert fast.set_index("id").loc["p5", "nodes_lost"] == 0
    assert fast.set_index("id").loc["p4", "nodes_lost"] == 1


def test_flow_town_sweep_equals_the_full_cascades():
    system = read_system(FLOW_TOWN)
    assert inert_ids(system)                      # the shortcut is taken on the demo town
    fast = sweep(system, "all", threads=1)
    same_rows(fast, sweep(system, "all", threads=1, plain=True))
    same_rows(fast, sweep(system, "all", engine="reference"))


@settings(max_examples=60, deadline=None)
@given(system=flow_layers())
def test_random_flow_layers_sweep_equals_the_full_cascades(system):
    fast = sweep(system, "all", threads=1)
    same_rows(fast, sweep(system, "all", threads=1, plain=True))
    same_rows(fast, sweep(system, "all", engine="reference"))


@settings(max_examples=60, deadline=None)
@given(case=flow_systems())
def test_random_coupled_systems_sweep_equals_the_full_cascades(case):
    system, _ = case
    fast = sweep(system, "all", threads=1)
    same_rows(fast, sweep(system, "all", threads=1, plain=True))


@settings(max_examples=25, deadline=None)
@given(case=flow_systems())
def test_worst_set_with_the_shortcut_equals_plain(case):
    """Steps after the first sweep on top of chosen failures: the base cascade has them."""
    system, _ = case
    fast = greedy_worst_set(system, 3, elements="all", threads=1)
    plain = greedy_worst_set(system, 3, elements="all", threads=1, plain=True)
    assert list(fast["id"]) == list(plain["id"])
    np.testing.assert_allclose(fast["score"].to_numpy(float), plain["score"].to_numpy(float), rtol=1e-9, atol=1e-9)

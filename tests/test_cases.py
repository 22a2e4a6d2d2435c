"""Closed-form cascades: each case's answer follows from docs/format.md by hand.

Every case runs on both engines, so a mistake in either shows up here.
"""
import networkx as nx
import numpy as np
import pytest

from cascade import InfrastructureSystem, simulate

ENGINES = ["core", "reference"]


def build(layers, deps=(), rules=None):
    return InfrastructureSystem.from_networkx(layers, deps, rules=rules)


def chain(prefix, n, directed=False, source=True):
    g = (nx.DiGraph if directed else nx.Graph)()
    nx.add_path(g, [f"{prefix}{i}" for i in range(n)])
    for v in g:
        g.nodes[v]["demand"] = 1
    if source:
        g.nodes[f"{prefix}0"]["kind"] = "source"
    return g


def outcome(result):
    return {r.id: (r.round, r.cause, r.via) for r in result.failed().itertuples()}


@pytest.mark.parametrize("engine", ENGINES)
def test_chain_cut_in_the_middle(engine):
    s = build({"power": chain("p", 5)})
    r = simulate(s, ["p2"], engine=engine)
    assert outcome(r) == {"p2": (0, "initial", None), "p3": (1, "disconnected", None),
                          "p4": (1, "disconnected", None)}
    assert r.layers().loc["power", "service"] == pytest.approx(2 / 5)


@pytest.mark.parametrize("engine", ENGINES)
def test_directed_edge_carries_supply_one_way_only(engine):
    g = nx.DiGraph([("b", "a")])        # points at the source: no supply reaches b
    g.nodes["a"]["kind"] = "source"
    r = simulate(build({"power": g}), [], engine=engine)
    assert outcome(r) == {"b": (1, "disconnected", None)}


@pytest.mark.parametrize("engine", ENGINES)
def test_star_hub_failure_isolates_every_leaf(engine):
    s = build({"comm": nx.star_graph(6)}, rules={"comm": "giant"})
    r = simulate(s, ["0"], engine=engine)
    # Six singletons tie for the largest component: the first listed ("1") wins.
    assert r.working.tolist() == [False, True, False, False, False, False, False]
    assert outcome(r)["2"] == (1, "disconnected", None)


@pytest.mark.parametrize("engine", ENGINES)
def test_edge_failure_cuts_like_a_node(engine):
    s = build({"power": chain("p", 4)})
    r = simulate(s, ["p1->p2"], engine=engine)
    assert sorted(outcome(r)) == ["p2", "p3"]
    assert r.to_dict()["initial_failures"] == {"nodes": [], "edges": ["p1->p2"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_two_layer_chain_reaction_with_via(engine):
    # plant - sub (power); pump - tap (water); pump needs sub; cell (comm, rule none) needs tap.
    s = build({"power": chain("p", 2), "water": chain("w", 2), "comm": nx.Graph([("cell", "cell2")])},
              [("w0", "p1"), ("cell", "w1")], rules={"comm": "none"})
    r = simulate(s, ["p0"], engine=engine)
    assert outcome(r) == {"p0": (0, "initial", None), "p1": (1, "disconnected", None),
                          "w0": (2, "dependency", "p1"), "w1": (2, "disconnected", None),
                          "cell": (3, "dependency", "w1")}
    assert r.rounds == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_alternative_suppliers_need_all_to_fail(engine):
    power = nx.Graph()
    power.add_nodes_from(["s1", "s2"], kind="source")
    water = nx.Graph()
    water.add_node("pump", kind="source", demand=5)
    deps = [("pump", "s1", {"group": "feed"}), ("pump", "s2", {"group": "feed"})]
    s = build({"power": power, "water": water}, deps)
    assert outcome(simulate(s, ["s1"], engine=engine)) == {"s1": (0, "initial", None)}
    r = simulate(s, ["s1", "s2"], engine=engine)
    assert outcome(r)["pump"] == (1, "dependency", "s1")      # both failed in round 0: first listed
    assert r.failed().set_index("id").loc["pump", "group"] == "feed"


@pytest.mark.parametrize("engine", ENGINES)
def test_plain_rows_mean_needs_all(engine):
    power = nx.Graph()
    power.add_nodes_from(["s1", "s2"], kind="source")
    water = nx.Graph()
    water.add_node("pump", kind="source")
    s = build({"power": power, "water": water}, [("pump", "s1"), ("pump", "s2")])
    assert outcome(simulate(s, ["s2"], engine=engine))["pump"] == (1, "dependency", "s2")


@pytest.mark.parametrize("engine", ENGINES)
def test_dependency_cycle_collapses_together(engine):
    # a <-> b depend on each other across layers, c depends on b; failing a takes all.
    la, lb = nx.Graph(), nx.Graph()
    la.add_node("a", kind="source")
    lb.add_node("b", kind="source")
    lb.add_node("c", kind="source")
    s = build({"A": la, "B": lb}, [("a", "b"), ("b", "a"), ("c", "b")])
    assert outcome(simulate(s, ["a"], engine=engine)) == {
        "a": (0, "initial", None), "b": (1, "dependency", "a"), "c": (2, "dependency", "b")}
    # Nothing failed: the cycle holds itself up.
    assert outcome(simulate(s, [], engine=engine)) == {}


@pytest.mark.parametrize("engine", ENGINES)
def test_giant_tie_goes_to_the_first_listed_node(engine):
    g = nx.Graph([("x1", "x2"), ("y1", "y2")])
    s = InfrastructureSystem.from_networkx({"t": g})
    r = simulate(s, [], engine=engine)
    assert outcome(r) == {"y1": (1, "disconnected", None), "y2": (1, "disconnected", None)}


@pytest.mark.parametrize("engine", ENGINES)
def test_source_layer_without_source_never_works(engine):
    s = build({"power": chain("p", 3, source=False)}, rules={"power": "source"})
    assert simulate(s, [], engine=engine).working.sum() == 0


def test_nodes_that_never_work_are_failed_before_too():
    g = chain("p", 3)
    g.add_node("island", demand=1)
    r = simulate(build({"power": g}), ["p1"])
    assert not r.baseline_working[r.compiled.node_index(["island"])[0]]
    assert r.layers(before=True).loc["power", "service"] == pytest.approx(3 / 4)
    assert r.layers().loc["power", "service"] == pytest.approx(1 / 4)


def test_service_uses_demand_and_falls_back_to_counts():
    g = chain("p", 3)
    nx.set_node_attributes(g, {"p0": 0, "p1": 0, "p2": 6}, "demand")
    roads = nx.path_graph(["r0", "r1", "r2", "r3"])
    s = build({"power": g, "roads": roads})
    r = simulate(s, ["p1", "r0"])
    layers = r.layers()
    assert layers.loc["power", "service"] == 0.0                  # the only demand is lost
    assert layers.loc["roads", "service"] == pytest.approx(3 / 4)  # no demand: share of nodes
    assert layers.loc["power", "demand_served"] == 0.0

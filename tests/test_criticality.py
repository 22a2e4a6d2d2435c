"""N-1 sweep and greedy N-k (cascade.criticality): the fast core sweep against the plain sweep
and the networkx reference engine, closed-form cases, and comparisons."""
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import InfrastructureSystem, InputError, compile_system, simulate
from cascade.criticality import (blind_spots, compare_rankings, core_sweep, element_indices,
                                 greedy_worst_set, incremental_is_exact, sweep)
from cascade.generators import coupled_er

from strategies import systems

INT_COLUMNS = ["nodes_lost", "cross_layer_lost"]


def assert_same(a: pd.DataFrame, b: pd.DataFrame):
    """Same rows in the same order; demand compared to rounding (sums in different orders)."""
    assert list(a.columns) == list(b.columns)
    assert list(a["id"]) == list(b["id"])
    assert list(a["element"]) == list(b["element"])
    assert list(a["layer"]) == list(b["layer"])
    ints = [col for col in a.columns if col in INT_COLUMNS or col.startswith("lost_")]
    assert np.array_equal(a[ints].to_numpy(), b[ints].to_numpy())
    floats = ["score"] + [col for col in a.columns if col.startswith("demand_lost_")]
    assert np.allclose(a[floats].to_numpy(float), b[floats].to_numpy(float), rtol=1e-12, atol=1e-9)


def plain_python_sweep(system, elements):
    """The obvious definition: one simulate() per element, losses against the intact state."""
    c = compile_system(system)
    intact = simulate(system, compiled=c).working
    rows = []
    names = (list(c.node_ids) if elements in ("nodes", "all") else []) + \
            (list(c.edge_ids) if elements in ("edges", "all") else [])
    kinds = (["node"] * c.n_nodes if elements in ("nodes", "all") else []) + \
            (["edge"] * c.n_edges if elements in ("edges", "all") else [])
    for name, kind in zip(names, kinds):
        if kind == "node":
            working = simulate(system, [name], compiled=c).working
            layer = c.node_layer[c.node_index([name])[0]]
        else:
            # simulate() takes a name that is both a node and an edge as the node: go direct.
            from cascade.compiled import Workspace
            ws = Workspace(c)
            e = c.edge_index([name])[0]
            ws.run((), [e])
            working = ws.working.astype(bool)
            layer = c.node_layer[c.edge_src[e]]
        lost = intact & ~working
        per = np.bincount(c.node_layer[lost], minlength=len(c.layer_names))
        row = {"id": name, "element": kind, "layer": c.layer_names[layer],
               "nodes_lost": int(lost.sum()), "cross_layer_lost": int(lost.sum() - per[layer])}
        row.update({f"lost_{n}": int(per[i]) for i, n in enumerate(c.layer_names)})
        # The score by its definition: weighted lost fraction of each layer's demand (of its
        # nodes where the layer has no demand).
        score = 0.0
        for i, n in enumerate(c.layer_names):
            in_layer = c.node_layer == i
            lost_demand = float(c.demand[lost & in_layer].sum())
            row[f"demand_lost_{n}"] = lost_demand
            total = float(c.demand[in_layer].sum())
            fraction = lost_demand / total if total > 0 else per[i] / in_layer.sum()
            score += system.layer_weight(n) * fraction
        row["score"] = score
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(sweep(system, elements).columns))
    return table.sort_values(["score", "nodes_lost", "id", "element"],
                             ascending=[False, False, True, True], kind="mergesort").reset_index(drop=True)


# ------------------------------------------------------------------ against oracles

@settings(max_examples=120, deadline=None)
@given(case=systems(), elements=st.sampled_from(["nodes", "edges", "all"]))
def test_core_sweep_equals_reference_sweep(case, elements):
    system, _, _ = case
    assert_same(sweep(system, elements), sweep(system, elements, engine="reference"))


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@settings(max_examples=80, deadline=None)
@given(case=systems(max_layers=4, max_nodes=9))
def test_fast_sweep_equals_plain_sweep(case, index_dtype):
    system, _, _ = case
    c = compile_system(system, index_dtype=index_dtype)
    fast = sweep(system, "all", compiled=c, threads=1)
    assert_same(fast, sweep(system, "all", compiled=c, threads=1, plain=True))
    assert_same(fast, plain_python_sweep(system, "all"))


@st.composite
def connected_systems(draw, max_layers=3, max_nodes=12):
    """Every layer a random tree from its first node (a source in `source` layers) plus extra
    edges, so that every node works intact: the sweep's incremental and local modes apply,
    `giant` layers included."""
    nodes, edges, deps, rules = [], [], [], {}
    all_ids = []
    for li in range(draw(st.integers(1, max_layers))):
        layer = f"L{li}"
        size = draw(st.integers(1, max_nodes))
        members = [f"{layer}n{i}" for i in range(size)]
        rule = draw(st.sampled_from(["source", "giant", "none"]))
        rules[layer] = rule
        for i, name in enumerate(members):
            # Node 0 roots the tree; other sources anywhere (a `giant` layer ignores them).
            source = (i == 0 and rule == "source") or draw(st.integers(0, 5)) == 0
            nodes.append({"id": name, "layer": layer, "kind": "source" if source else "",
                          "demand": draw(st.integers(0, 3))})
        for i in range(1, size):
            parent = draw(st.integers(0, i - 1))
            directed = draw(st.booleans())
            edges.append({"id": f"{layer}t{i}", "source": members[parent], "target": members[i],
                          "directed": directed})
        for e in range(draw(st.integers(0, size))):
            edges.append({"id": f"{layer}x{e}", "source": draw(st.sampled_from(members)),
                          "target": draw(st.sampled_from(members)), "directed": draw(st.booleans())})
        all_ids += members
    if len(all_ids) > 1:
        for _ in range(draw(st.integers(0, len(all_ids)))):
            dependent = draw(st.sampled_from(all_ids))
            supplier = draw(st.sampled_from([x for x in all_ids if x != dependent]))
            deps.append({"dependent": dependent, "supplier": supplier,
                         "group": draw(st.sampled_from(["", "", "g1", "g2"]))})
    return InfrastructureSystem.from_tables(
        pd.DataFrame(nodes), pd.DataFrame(edges, columns=["id", "source", "target", "directed"]),
        pd.DataFrame(deps, columns=["dependent", "supplier", "group"]), rules=rules)


def all_modes_equal(system, index_dtype=np.int32):
    c = compile_system(system, index_dtype=index_dtype)
    el_node, el_edge = element_indices(c, "all")
    full = core_sweep(c, el_node, el_edge, threads=1, plain=True)
    modes = [("full", True)] + [(m, skip) for m in ("incremental", "local") for skip in (False, True)]
    for method, skip in modes:
        other = core_sweep(c, el_node, el_edge, threads=1, method=method, skip=skip)
        for a, b in zip(full, other):
            assert np.allclose(a, b), (method, skip)
    return incremental_is_exact(c)


@settings(max_examples=300, deadline=None)
@given(system=connected_systems())
def test_every_kernel_mode_equals_the_full_sweep_connected(system):
    assert all_modes_equal(system)


@settings(max_examples=60, deadline=None)
@given(system=connected_systems(max_layers=2, max_nodes=8))
def test_local_sweep_equals_reference_connected(system):
    assert_same(sweep(system, "all"), sweep(system, "all", engine="reference"))


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@settings(max_examples=200, deadline=None)
@given(case=systems(max_layers=4, max_nodes=9))
def test_every_kernel_mode_equals_the_full_sweep(case, index_dtype):
    all_modes_equal(case[0], index_dtype)


@settings(max_examples=100, deadline=None)
@given(case=systems(max_layers=3, max_nodes=9), threads=st.integers(2, 4), chunk=st.integers(1, 5))
def test_threaded_equals_serial(case, threads, chunk):
    system, _, _ = case
    c = compile_system(system)
    el_node, el_edge = element_indices(c, "all")
    serial = core_sweep(c, el_node, el_edge, threads=1)
    threaded = core_sweep(c, el_node, el_edge, threads=threads, chunk=chunk)
    for a, b in zip(serial, threaded):
        assert np.array_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(case=systems(max_nodes=6), k=st.integers(1, 3))
def test_greedy_core_equals_reference(case, k):
    system, _, _ = case
    core = greedy_worst_set(system, k, elements="all")
    ref = greedy_worst_set(system, k, elements="all", engine="reference")
    plain = greedy_worst_set(system, k, elements="all", plain=True)
    for other in (ref, plain):
        assert list(core["id"]) == list(other["id"])
        assert np.allclose(core["score"], other["score"])
        assert list(core["nodes_lost"]) == list(other["nodes_lost"])


@settings(max_examples=60, deadline=None)
@given(case=systems(max_nodes=6))
def test_greedy_steps_are_the_joint_cascade(case):
    """Each step's totals are those of simulating the whole chosen set at once."""
    system, _, _ = case
    c = compile_system(system)
    worst = greedy_worst_set(system, 3, elements="nodes")
    intact = simulate(system, compiled=c).working
    for step in range(len(worst)):
        chosen = list(worst["id"].iloc[:step + 1])
        lost = intact & ~simulate(system, chosen, compiled=c).working
        assert worst["nodes_lost"].iloc[step] == lost.sum()
        for i, name in enumerate(c.layer_names):
            assert np.isclose(worst[f"demand_lost_{name}"].iloc[step],
                              c.demand[lost & (c.node_layer == i)].sum())
    if len(worst) < 3:   # stopped early: no remaining node adds a loss
        chosen = list(worst["id"])
        before = (intact & ~simulate(system, chosen, compiled=c).working).sum()
        for v in c.node_ids:
            if v not in chosen:
                after = intact & ~simulate(system, chosen + [v], compiled=c).working
                assert after.sum() <= before   # (giant layers: a failure can also revive nodes)


@pytest.mark.parametrize("n, k, seed", [(60, 2.0, 3), (80, 4.0, 1), (40, 1.5, 2), (200, 3.0, 4)])
def test_giant_layers_with_dead_nodes_are_certified_or_recomputed(n, k, seed):
    """Coupled ER layers lose their small components in the intact state: order dependent.
    Every element is either certified or recomputed, and equals the reference; sparse
    layers (k = 1.5, 2) exercise the recomputation."""
    system = coupled_er(n, k=k, seed=seed)
    c = compile_system(system)
    assert not incremental_is_exact(c)
    fast = sweep(system, "all", compiled=c)
    assert_same(fast, sweep(system, "all", compiled=c, plain=True))
    if n <= 80:
        assert_same(fast, sweep(system, "all", compiled=c, engine="reference"))


def test_connected_giant_layers_use_the_incremental_sweep():
    a = nx.cycle_graph([f"a{i}" for i in range(6)])
    b = nx.path_graph([f"b{i}" for i in range(6)])
    system = InfrastructureSystem.from_networkx({"A": a, "B": b},
                                                [(f"a{i}", f"b{i}") for i in range(6)] +
                                                [(f"b{i}", f"a{i}") for i in range(6)],
                                                rules={"A": "giant", "B": "giant"})
    c = compile_system(system)
    assert incremental_is_exact(c)
    assert_same(sweep(system, "all", compiled=c), sweep(system, "all", compiled=c, engine="reference"))


# ------------------------------------------------------------------ closed-form cases

def one_layer(graph, sources, demand=1.0, rule=None):
    for v in graph.nodes:
        graph.nodes[v]["demand"] = demand
        graph.nodes[v]["kind"] = "source" if v in sources else ""
    return InfrastructureSystem.from_networkx({"power": graph}, rules={"power": rule} if rule else None)


def by_id(table):
    return table.set_index("id")


def test_star():
    """A source hub with 6 leaves: the hub takes all 7 nodes, a leaf only itself."""
    g = nx.star_graph(6)
    g = nx.relabel_nodes(g, {i: f"n{i}" for i in g.nodes})
    t = sweep(one_layer(g, {"n0"}), "all")
    assert t["id"].iloc[0] == "n0"
    assert by_id(t).loc["n0", "nodes_lost"] == 7
    assert by_id(t).loc["n0", "demand_lost_power"] == 7.0
    assert by_id(t).loc["n0", "score"] == 1.0   # the whole layer's demand
    for i in range(1, 7):
        assert by_id(t).loc[f"n{i}", "nodes_lost"] == 1
        assert by_id(t).loc[f"n0->n{i}", "nodes_lost"] == 1  # the leaf is cut off
    assert (t["cross_layer_lost"] == 0).all()


def test_chain():
    """source - n1 - ... - n9: failing n_i loses n_i..n9; the edge n_i-n_{i+1} loses n_{i+1}.."""
    names = [f"n{i}" for i in range(10)]
    t = by_id(sweep(one_layer(nx.path_graph(names), {"n0"}), "all"))
    for i in range(10):
        assert t.loc[f"n{i}", "nodes_lost"] == 10 - i
    for i in range(9):
        assert t.loc[f"n{i}->n{i + 1}", "nodes_lost"] == 9 - i


def test_chain_giant_rule():
    """In a giant layer a path splits in two; the larger part (first listed on a tie) stays."""
    names = [f"n{i}" for i in range(7)]
    t = by_id(sweep(one_layer(nx.path_graph(names), set(), rule="giant"), "nodes"))
    # Removing n_i leaves parts of i and 6 - i nodes; the larger (or the first) survives.
    for i in range(7):
        left, right = i, 6 - i
        expected = 1 + (min(left, right) if left != right else right)
        assert t.loc[f"n{i}", "nodes_lost"] == expected


def two_layers():
    """Power: plant -> sub1 -> sub2 (directed); water: pump - tap1 - tap2; the pump needs sub2,
    and tap2 also needs sub1 or sub2 (alternatives)."""
    power = nx.DiGraph([("plant", "sub1"), ("sub1", "sub2")])
    water = nx.Graph([("pump", "tap1"), ("tap1", "tap2")])
    for g, src in ((power, "plant"), (water, "pump")):
        for v in g.nodes:
            g.nodes[v]["kind"] = "source" if v == src else ""
    demand = {"plant": 0, "sub1": 10, "sub2": 5, "pump": 0, "tap1": 7, "tap2": 3}
    for g in (power, water):
        for v in g.nodes:
            g.nodes[v]["demand"] = demand[v]
    deps = [("pump", "sub2"), ("tap2", "sub1", {"group": "g"}), ("tap2", "sub2", {"group": "g"})]
    return InfrastructureSystem.from_networkx({"power": power, "water": water}, deps)


def test_two_layers_known_answers():
    t = by_id(sweep(two_layers(), "all"))
    # plant: all of power, then the pump, then water.
    cols = ["nodes_lost", "demand_lost_power", "demand_lost_water", "cross_layer_lost"]
    assert t.loc["plant", cols + ["lost_power", "lost_water"]].tolist() == [6, 15.0, 10.0, 3, 3, 3]
    assert t.loc["sub2", cols].tolist() == [4, 5.0, 10.0, 3]
    assert t.loc["tap1", cols].tolist() == [2, 0.0, 10.0, 0]
    assert t.loc["tap2", cols].tolist() == [1, 0.0, 3.0, 0]
    assert t.loc["sub1->sub2", cols[:3] + ["lost_power"]].tolist() == [4, 5.0, 10.0, 1]
    # score: power demand 15, water demand 10, weights 1
    assert t.loc["plant", "score"] == pytest.approx(15 / 15 + 10 / 10)
    assert t.loc["sub2", "score"] == pytest.approx(5 / 15 + 10 / 10)
    assert t.loc["tap1", "score"] == pytest.approx(10 / 10)
    assert t.index[0] == "plant"


def test_score_ranks_by_fractions_not_raw_amounts():
    """Power in MW (demand 15) and water in L/s (demand 1000): the v1 sum of raw demands put
    the water tap first; the score puts the substation that loses all of power first."""
    power = nx.DiGraph([("plant", "sub")])
    water = nx.Graph([("pump", "tap"), ("pump", "tap2")])
    nx.set_node_attributes(power, {"plant": "source"}, "kind")
    nx.set_node_attributes(water, {"pump": "source"}, "kind")
    nx.set_node_attributes(power, {"plant": 0, "sub": 15}, "demand")
    nx.set_node_attributes(water, {"pump": 0, "tap": 400, "tap2": 600}, "demand")
    s = InfrastructureSystem.from_networkx({"power": power, "water": water},
                                           units={"power": "MW", "water": "L/s"})
    t = sweep(s)
    # v1 order by raw demand was pump (1000), tap2 (600), tap (400), plant (15), sub (15).
    assert list(t["id"]) == ["pump", "plant", "sub", "tap2", "tap"]   # 1.0: all of a layer
    assert by_id(t).loc["tap2", "score"] == pytest.approx(0.6)
    # A weight moves a layer up: water counts three times.
    s.weights["water"] = 3.0
    t = by_id(sweep(s))
    assert t.index[0] == "pump"
    assert t.loc["pump", "score"] == pytest.approx(3.0)
    assert t.loc["tap2", "score"] == pytest.approx(1.8)
    # Weight 0 leaves a layer out of the score (the nodes still count as lost).
    s.weights["water"] = 0.0
    t = by_id(sweep(s))
    assert t.loc["pump", "score"] == 0.0 and t.loc["pump", "nodes_lost"] == 3


def test_never_working_node_loses_nothing():
    g = nx.Graph([("plant", "a"), ("b", "c")])
    s = one_layer(g, {"plant"})
    t = by_id(sweep(s, "all"))
    assert t.loc["b", "nodes_lost"] == 0 and t.loc["b->c", "nodes_lost"] == 0
    assert t.loc["a", "nodes_lost"] == 1


def test_layer_filter_and_columns():
    s = two_layers()
    t = sweep(s, "all", layer="water")
    assert set(t["layer"]) == {"water"}
    assert list(t.columns) == ["id", "element", "layer", "score", "nodes_lost", "cross_layer_lost",
                               "lost_power", "lost_water", "demand_lost_power", "demand_lost_water"]
    assert len(t) == 3 + 2


def test_greedy_known_set():
    """A and B both feed u1..u4; only A feeds w.  N-1 ranks B last (it loses only itself), but
    once A is gone, B takes all four u's: the greedy pair is (A, B)."""
    g = nx.Graph([("A", f"u{i}") for i in range(1, 5)] + [("B", f"u{i}") for i in range(1, 5)] + [("A", "w")])
    s = one_layer(g, {"A", "B"})
    for v in ("A", "B"):
        s.nodes.loc[s.nodes["id"] == v, "demand"] = 0.0
    n1 = sweep(s)
    assert n1["id"].iloc[-1] == "B"
    worst = greedy_worst_set(s, 2)
    assert list(worst["id"]) == ["A", "B"]
    assert list(worst["demand_lost_power"]) == [1.0, 5.0]
    assert list(worst["score"]) == [0.2, 1.0]
    assert list(worst["nodes_lost"]) == [2, 7]
    assert worst["score_added"].tolist() == pytest.approx([0.2, 0.8])
    assert list(worst["step"]) == [1, 2]
    # More steps than elements: after A and B every node is lost, so N-k stops there.
    assert len(greedy_worst_set(s, 50)) == 2
    # Without B's loops the chain goes on while each step loses a node.
    line = one_layer(nx.path_graph(["s", "a", "b"]), {"s"})
    assert list(greedy_worst_set(line, 5, elements="nodes")["id"]) == ["s"]


def test_greedy_zero_and_bad_k():
    s = two_layers()
    assert len(greedy_worst_set(s, 0)) == 0
    with pytest.raises(InputError):
        greedy_worst_set(s, -1)


def test_bad_arguments():
    s = two_layers()
    with pytest.raises(InputError, match="elements"):
        sweep(s, "wires")
    with pytest.raises(InputError, match="layer"):
        sweep(s, layer="sewage")
    with pytest.raises(InputError, match="engine"):
        sweep(s, engine="fast")


def test_empty_selection():
    g = nx.Graph()
    g.add_node("lonely", kind="source")
    s = InfrastructureSystem.from_networkx({"power": g})
    t = sweep(s, "edges")
    assert len(t) == 0 and "lost_power" in t.columns


# ------------------------------------------------------------------ comparisons

def test_compare_rankings_on_a_star():
    g = nx.relabel_nodes(nx.star_graph(5), {i: f"n{i}" for i in range(6)})
    s = one_layer(g, {"n0"})
    c = compile_system(s)
    t = sweep(s, compiled=c)
    cmp = compare_rankings(c, t, top=1).set_index("measure")
    assert cmp.loc["degree", "overlap"] == 1.0
    assert cmp.loc["betweenness", "overlap"] == 1.0
    assert cmp.loc["degree", "spearman"] == pytest.approx(1.0)


def test_compare_rankings_disagree_on_a_chain():
    """On a chain from its end, the source end is the most critical but has degree 1."""
    names = [f"n{i}" for i in range(8)]
    s = one_layer(nx.path_graph(names), {"n0"})
    c = compile_system(s)
    cmp = compare_rankings(c, sweep(s, compiled=c), top=1).set_index("measure")
    assert cmp.loc["degree", "overlap"] == 0.0
    assert cmp.loc["degree", "spearman"] < 0.5


def test_blind_spot_is_named():
    """sub2 matters in power for 5 demand, but it runs the pump: coupled it takes all water."""
    s = two_layers()
    spots = blind_spots(s, sweep(s), top=3)
    assert list(spots["id"]) == ["sub2"]
    assert spots["alone_score"].iloc[0] == pytest.approx(5 / 15)
    assert spots["score"].iloc[0] == pytest.approx(5 / 15 + 1.0)


# ------------------------------------------------------------------ larger systems

@pytest.mark.parametrize("reach", [None, 30])
def test_synthetic_lifelines_local_sweep_equals_full(reach):
    """A mid-size five-lifeline system: every node works intact, and the local, incremental
    and full kernels agree on every node and edge, serial and threaded."""
    from cascade.criticality import synthetic_lifelines

    system = synthetic_lifelines(1500, seed=3, reach=reach)
    c = compile_system(system)
    assert incremental_is_exact(c) and simulate(system, compiled=c).working.all()
    el_node, el_edge = element_indices(c, "all")
    full = core_sweep(c, el_node, el_edge, threads=1, plain=True)
    for method in ("incremental", "local"):
        for threads in (1, 3):
            got = core_sweep(c, el_node, el_edge, threads=threads, method=method, chunk=97)
            for a, b in zip(full, got):
                assert np.allclose(a, b)
    # The sweep does find cross-lifeline losses here (the test is not vacuous).
    assert full[0].max() > 100 and ((full[2] > 0).sum(axis=1) >= 2).any()


def test_demo_town_sample_equals_reference():
    """Ten elements of the demo town (nodes and edges), core sweep against networkx."""
    from pathlib import Path

    from cascade import read_system
    from cascade.criticality import reference_sweep

    demo = Path(__file__).resolve().parent.parent / "networks" / "demo_town"
    system = read_system(demo)
    c = compile_system(system)
    el_node, el_edge = element_indices(c, "all")
    full = core_sweep(c, el_node, el_edge)
    # The ten worst plus ten seeded others: big cascades and ordinary ones.
    worst = np.argsort(-full[1], kind="stable")[:10]
    others = np.random.default_rng(1).choice(len(el_node), 10, replace=False)
    pick = np.unique(np.concatenate([worst, others]))
    ref = reference_sweep(system, c, el_node[pick], el_edge[pick])
    assert np.array_equal(ref[0], full[0][pick])
    assert np.allclose(ref[1], full[1][pick])
    assert np.array_equal(ref[2], full[2][pick])


def test_core_sweep_rejects_bad_indices():
    c = compile_system(two_layers())
    with pytest.raises(ValueError):
        core_sweep(c, np.array([99]), np.array([-1]))
    with pytest.raises(ValueError):
        core_sweep(c, np.array([0]), np.array([0]))      # both a node and an edge
    with pytest.raises(ValueError):
        core_sweep(c, np.array([0]), np.array([-1]), pre_edges=[42])

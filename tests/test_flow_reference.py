"""Flow layers (docs/format.md (v2)) in the reference engine: loader, compiled arrays, hand-made cases
worked out in the docstrings, and random systems against independent oracles (networkx's maximum
flow, an LP check of max-min fairness, a plain numpy solve of the DC power flow)."""
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from cascade import InfrastructureSystem, InputError, compile_system, read_system, simulate, write_system
from cascade.compiled import Workspace
from cascade.reference import run_cascade
from cascade.reference_flow import run_flow_cascade

from conftest import write_dir
from strategies import systems


def build(nodes, edges=(), deps=(), rules=None, **settings_):
    return InfrastructureSystem.from_tables(
        pd.DataFrame(nodes), pd.DataFrame(list(edges), columns=None if edges else ["source", "target"]),
        pd.DataFrame(list(deps), columns=None if deps else ["dependent", "supplier"]), rules=rules, **settings_)


def ref(system, fail=()):
    return simulate(system, list(fail), engine="reference")


def served(result):
    """{node: served fraction} of every working node of a flow layer with demand."""
    return result.to_dict()["served"]


def flows(result):
    return result.to_dict()["flows"]


def failed(result):
    return {r.id: (r.round, r.cause, r.via) for r in result.failed().itertuples()}


# --------------------------------------------------------------------------- hand-made cases
def test_priority_classes_in_a_dcflow_island():
    """Supply 100.  Class 2 (a, 40) is served in full; class 1 (b 40, c 80) shares the 60 left
    at 60/120 = 0.5 each; class 0 (d, 10) gets nothing but stays working at fraction 0, and its
    dependent x (threshold 1) stops in round 2 via d."""
    s = build([dict(id="g", layer="power", supply=100), dict(id="a", layer="power", demand=40, priority=2),
               dict(id="b", layer="power", demand=40, priority=1),
               dict(id="c", layer="power", demand=80, priority=1),
               dict(id="d", layer="power", demand=10, priority=0), dict(id="x", layer="other")],
              [dict(source="g", target=v, reactance=0.1) for v in "abcd"],
              [dict(dependent="x", supplier="d")], rules={"power": "dcflow", "other": "none"})
    r = ref(s)
    assert served(r) == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.0})
    assert failed(r) == {"x": (2, "dependency", "d")}
    assert r.working[list(r.compiled.node_ids).index("d")]
    assert flows(r) == pytest.approx({"g->a": 40, "g->b": 20, "g->c": 40, "g->d": 0}, abs=1e-9)


def test_priority_classes_in_a_flow_layer():
    """A source of 10 feeds A (priority 1, demand 8) and B (priority 0, demand 8) over unlimited
    pipes: A gets its 8, B the 2 left = 0.25."""
    s = build([dict(id="src", layer="water", supply=10), dict(id="A", layer="water", demand=8, priority=1),
               dict(id="B", layer="water", demand=8, priority=0)],
              [dict(source="src", target="A"), dict(source="src", target="B")], rules={"water": "flow"})
    assert served(ref(s)) == pytest.approx({"A": 1.0, "B": 0.25})


def test_default_priority_protects_suppliers_of_other_lifelines():
    """Without a priority column a node that supplies another lifeline has priority 1: the
    substation feeding the pump (demand 30) is served in full from 50, the houses get 20/40."""
    s = build([dict(id="g", layer="power", supply=50), dict(id="sub", layer="power", demand=30),
               dict(id="houses", layer="power", demand=40), dict(id="pump", layer="water")],
              [dict(source="g", target="sub", reactance=0.1), dict(source="g", target="houses", reactance=0.1)],
              [dict(dependent="pump", supplier="sub")], rules={"power": "dcflow", "water": "none"})
    assert served(ref(s)) == pytest.approx({"sub": 1.0, "houses": 0.5})
    assert not failed(ref(s))


@pytest.mark.parametrize("threshold, stops", [(0.8, True), (0.5, False), (0.6, False)])
def test_threshold_dependency(threshold, stops):
    """A bus fed at 60 % (supply 60, demand 100): a pump with threshold 0.8 stops in round 2
    (the shortage found in round 1 reaches dependents in round 2); with 0.5 or exactly 0.6 it
    keeps working."""
    s = build([dict(id="g", layer="power", supply=60), dict(id="b", layer="power", demand=100),
               dict(id="pump", layer="water")],
              [dict(source="g", target="b", reactance=0.1)],
              [dict(dependent="pump", supplier="b", threshold=threshold)],
              rules={"power": "dcflow", "water": "none"})
    r = ref(s)
    assert served(r) == pytest.approx({"b": 0.6})
    assert failed(r) == ({"pump": (2, "dependency", "b")} if stops else {})


def test_islanding_strands_a_bus_without_supply():
    """g (100) - a (30) - b (30) - c (20) - h (supply 10).  Failing a-b and b-c leaves b alone
    without supply: disconnected in round 1.  Island {g, a} serves a in full (flow 30 on g-a);
    island {c, h} serves c at 10/20 = 0.5, carried from h to c (flow -10 on c-h)."""
    s = build([dict(id="g", layer="power", supply=100), dict(id="a", layer="power", demand=30),
               dict(id="b", layer="power", demand=30), dict(id="c", layer="power", demand=20),
               dict(id="h", layer="power", supply=10)],
              [dict(id=f"{u}{v}", source=u, target=v, reactance=0.2) for u, v in ["ga", "ab", "bc", "ch"]],
              rules={"power": "dcflow"})
    r = ref(s, ["ab", "bc"])
    assert failed(r) == {"b": (1, "disconnected", None)}
    assert served(r) == pytest.approx({"a": 1.0, "c": 0.5})
    assert flows(r) == pytest.approx({"ga": 30.0, "ch": -10.0})
    assert r.to_dict()["layers"]["power"]["demand_served"] == pytest.approx(40.0)


def test_two_step_overload_cascade():
    """G (supply 200) feeds L (demand 100) over three parallel lines: l1 and l2 (x = 0.1,
    capacity 60) and l3 (x = 0.2, capacity 90).  Intact, flows split by admittance 10:10:5:
    40, 40, 20.  Losing l1: l2 carries 100·10/15 = 66.7 > 60 and trips (step 1); then l3 carries
    100 > 90 and trips (step 2); L is stranded without supply: disconnected in round 1."""
    s = build([dict(id="G", layer="power", supply=200), dict(id="L", layer="power", demand=100)],
              [dict(id="l1", source="G", target="L", reactance=0.1, capacity=60),
               dict(id="l2", source="G", target="L", reactance=0.1, capacity=60),
               dict(id="l3", source="G", target="L", reactance=0.2, capacity=90)],
              rules={"power": "dcflow"})
    assert flows(ref(s)) == pytest.approx({"l1": 40, "l2": 40, "l3": 20})
    r = ref(s, ["l1"])
    trips = r.to_dict()["tripped"]
    assert [(t["id"], t["round"], t["step"]) for t in trips] == [("l2", 1, 1), ("l3", 1, 2)]
    assert trips[0]["flow"] == pytest.approx(200 / 3) and trips[0]["capacity"] == 60
    assert trips[1]["flow"] == pytest.approx(100) and trips[1]["capacity"] == 90
    assert failed(r) == {"L": (1, "disconnected", None)}
    assert r.rounds == 1 and flows(r) == {}


def test_trip_in_a_later_round():
    """A gas-fired unit g2 (supply 50) needs the compressor; losing the gas pipe disconnects the
    compressor in round 1 and stops g2 in round 2; then g1 (supply 100, line capacity 70) must
    carry the 90 of demand alone and trips in round 2, step 1, stranding the load in round 2."""
    s = build([dict(id="g1", layer="power", supply=100), dict(id="g2", layer="power", supply=50),
               dict(id="L", layer="power", demand=90), dict(id="gs", layer="gas", kind="source"),
               dict(id="comp", layer="gas")],
              [dict(id="e1", source="g1", target="L", reactance=0.1, capacity=70),
               dict(id="e2", source="g2", target="L", reactance=0.1, capacity=70),
               dict(id="pipe", source="gs", target="comp")],
              [dict(dependent="g2", supplier="comp")], rules={"power": "dcflow"})
    assert flows(ref(s)) == pytest.approx({"e1": 60, "e2": 30})
    r = ref(s, ["pipe"])
    assert [(t["id"], t["round"], t["step"]) for t in r.to_dict()["tripped"]] == [("e1", 2, 1)]
    assert r.to_dict()["tripped"][0]["flow"] == pytest.approx(90)
    assert failed(r) == {"comp": (1, "disconnected", None), "g2": (2, "dependency", "comp"),
                         "L": (2, "disconnected", None)}
    assert r.rounds == 2


def test_partial_supply_with_a_capacity_bottleneck():
    """A source of 60 feeds d1 (demand 50) through a pipe of capacity 30 and d2 (demand 40)
    through an unlimited one.  Max-min fair: d1 cannot pass 30/50 = 0.6 and freezes there; d2
    takes the 30 left = 0.75.  With a source of 100, d2 is served in full and d1 stays at 0.6."""
    def town(supply):
        return build([dict(id="s", layer="water", supply=supply), dict(id="d1", layer="water", demand=50),
                      dict(id="d2", layer="water", demand=40)],
                     [dict(source="s", target="d1", capacity=30), dict(source="s", target="d2")],
                     rules={"water": "flow"}, units={"water": "m3/h"})
    assert served(ref(town(60))) == pytest.approx({"d1": 0.6, "d2": 0.75})
    assert served(ref(town(100))) == pytest.approx({"d1": 0.6, "d2": 1.0})
    assert ref(town(60)).to_dict()["layers"]["water"]["demand_served"] == pytest.approx(60)


def test_flow_layer_follows_directed_pipes_and_ignores_zero_capacity():
    """Directed pipe t->s carries nothing from s; a pipe of capacity 0 is unusable: both
    demands are unreachable, so their nodes are disconnected."""
    s = build([dict(id="s", layer="water", supply=5), dict(id="t", layer="water", demand=1),
               dict(id="u", layer="water", demand=1)],
              [dict(source="t", target="s", directed=True), dict(source="s", target="u", capacity=0)],
              rules={"water": "flow"})
    assert failed(ref(s)) == {"t": (1, "disconnected", None), "u": (1, "disconnected", None)}


def test_generators_share_the_served_total():
    """g1 (supply 100) - L - g2 (supply 50), radial, so the flows on e1 and e2 are the outputs.
    Without dispatch the 90 served splits by supply: 60 and 30.  With dispatch 60 and 20 and a
    demand of 110, the 30 above the setpoints goes by headroom 40:30 (77.1 and 32.9); with a
    demand of 40 the outputs scale the setpoints down by 40/80 (30 and 10)."""
    def grid(demand, dispatch=(None, None)):
        return build([dict(id="g1", layer="power", supply=100, dispatch=dispatch[0]),
                      dict(id="g2", layer="power", supply=50, dispatch=dispatch[1]),
                      dict(id="L", layer="power", demand=demand)],
                     [dict(id="e1", source="g1", target="L", reactance=0.3),
                      dict(id="e2", source="g2", target="L", reactance=0.1)],
                     rules={"power": "dcflow"})
    assert flows(ref(grid(90))) == pytest.approx({"e1": 60, "e2": 30})
    assert flows(ref(grid(110, (60, 20)))) == pytest.approx({"e1": 60 + 30 * 40 / 70, "e2": 20 + 30 * 30 / 70})
    assert flows(ref(grid(40, (60, 20)))) == pytest.approx({"e1": 30, "e2": 10})
    assert flows(ref(grid(80, (60, 20)))) == pytest.approx({"e1": 60, "e2": 20})


def test_phase_shift_drives_a_loop_flow():
    """Two buses, two parallel lines of x = 0.1 on base 100, no injection; the second has a
    shift of 5.73 degrees (0.1 rad).  θ_a − θ_b = 0.05 balances them: flows +50 and −50."""
    s = build([dict(id="a", layer="power", supply=1), dict(id="b", layer="power")],
              [dict(id="p", source="a", target="b", reactance=0.1),
               dict(id="q", source="a", target="b", reactance=0.1, shift=math.degrees(0.1))],
              rules={"power": "dcflow"})
    assert flows(ref(s)) == pytest.approx({"p": 50, "q": -50})


def test_v1_layers_beside_flow_layers_keep_their_rules():
    """A `source` layer next to a flow layer: its nodes work as in v1 at fraction 1."""
    s = build([dict(id="plant", layer="power", kind="source"), dict(id="sub", layer="power", demand=3),
               dict(id="w", layer="water", supply=1), dict(id="tap", layer="water", demand=4)],
              [dict(source="plant", target="sub"), dict(source="w", target="tap")],
              [dict(dependent="w", supplier="sub", threshold=0.9)], rules={"water": "flow"})
    r = ref(s)
    assert served(r) == pytest.approx({"tap": 0.25})
    assert r.to_dict()["layers"]["power"]["demand_served"] == 3
    assert failed(ref(s, ["plant"])) == {"plant": (0, "initial", None), "sub": (1, "disconnected", None),
                                         "w": (2, "dependency", "sub"), "tap": (2, "disconnected", None)}


# --------------------------------------------------------------------------- v1 unchanged
@settings(max_examples=150, deadline=None)
@given(case=systems())
def test_v2_reference_on_v1_systems_is_the_v1_reference(case):
    """On systems without flow layers the v2 fixpoint (fractions all 1, thresholds 1) fails the
    same nodes in the same rounds with the same causes, groups and via as the v1 reference."""
    system, nodes, edges = case
    v1 = run_cascade(system, nodes, edges)
    v2 = run_flow_cascade(system, nodes, edges)
    assert v1 == v2.failures
    assert set(v2.served.values()) <= {1.0} and not v2.flows and not v2.trips


def test_v1_json_has_no_flow_keys(town):
    system = read_system(town)
    for engine in ("core", "reference"):
        data = simulate(system, ["plant"], engine=engine).to_dict()
        assert not {"served", "flows", "tripped"} & set(data)
    assert not {"supply", "dispatch", "priority"} & set(system.nodes)        # v1 tables as before
    assert not {"reactance", "shift"} & set(system.edges) and "threshold" not in system.dependencies
    assert (system.units, system.weights, system.bases) == ({}, {}, {})


# --------------------------------------------------------------------------- random flow layers
@st.composite
def flow_layers(draw):
    n = draw(st.integers(2, 8))
    nodes = [dict(id=f"n{i}", layer="water", supply=draw(st.sampled_from([0, 0, 0, 1, 2.5, 5, 10])),
                  demand=draw(st.sampled_from([0, 1, 2, 3, 7.5])), priority=draw(st.sampled_from([0, 0, 1, 2])))
             for i in range(n)]
    edges = []
    for k in range(draw(st.integers(0, 2 * n))):
        u, v = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        edges.append(dict(id=f"e{k}", source=f"n{u}", target=f"n{v}", directed=draw(st.booleans()),
                          capacity=draw(st.sampled_from([None, 0, 1, 2, 3.5, 6]))))
    return build(nodes, edges, rules={"water": "flow"})


def networkx_max_flow(system):
    """Maximum flow from every source (≤ supply) to every demand (≤ demand), built here."""
    g = nx.DiGraph()
    g.add_nodes_from(["S", "T"])
    for v, s, d in zip(system.nodes["id"], system.nodes["supply"], system.nodes["demand"]):
        g.add_edge("S", v, capacity=s)
        g.add_edge(v, "T", capacity=d)
    caps = {}
    for u, v, directed, cap in zip(system.edges["source"], system.edges["target"], system.edges["directed"],
                                   system.edges["capacity"]):
        for a, b in [(u, v)] + ([] if directed else [(v, u)]):
            if a != b:
                caps[a, b] = caps.get((a, b), 0.0) + (math.inf if np.isnan(cap) else cap)
    for (a, b), c in caps.items():
        g.add_edge(a, b, **({} if math.isinf(c) else {"capacity": c}))
    return nx.maximum_flow_value(g, "S", "T")


class Deliverable:
    """Feasible served vectors as an LP, formulated independently of the engine: one flow per
    edge (in [-c, c] when undirected), one injection per node, one amount per node."""

    def __init__(self, system):
        self.ids = list(system.nodes["id"])
        pos = {v: i for i, v in enumerate(self.ids)}
        n, m = len(self.ids), len(system.edges)
        self.n, self.m = n, m
        self.a_eq = np.zeros((n, m + 2 * n))
        self.bounds = []
        for k, (u, v, directed, cap) in enumerate(zip(system.edges["source"], system.edges["target"],
                                                      system.edges["directed"], system.edges["capacity"])):
            self.a_eq[pos[u], k] -= 1
            self.a_eq[pos[v], k] += 1
            c = None if np.isnan(cap) else cap
            self.bounds.append((0 if directed else (None if c is None else -c), c))
        for i in range(n):
            self.a_eq[i, m + i] = 1          # injection
            self.a_eq[i, m + n + i] = -1     # served amount
        self.bounds += [(0, s) for s in system.nodes["supply"]]
        self.demand = system.nodes["demand"].to_numpy(float)
        self.bounds += [(0, d) for d in self.demand]

    def most(self, i, lower):
        """The largest amount for node i with every other node j at least lower[j]."""
        bounds = list(self.bounds)
        for j, lo in lower.items():
            bounds[self.m + self.n + j] = (min(max(lo, 0.0), self.demand[j]), self.demand[j])
        c = np.zeros(self.m + 2 * self.n)
        c[self.m + self.n + i] = -1
        res = linprog(c, A_eq=self.a_eq, b_eq=np.zeros(self.n), bounds=bounds, method="highs")
        return None if res.status == 2 else -res.fun


@settings(max_examples=80, deadline=None)
@given(system=flow_layers())
def test_served_total_is_the_maximum_flow(system):
    r = ref(system)
    d = r.compiled.demand
    total = float((r.served * d * r.working).sum())
    assert total == pytest.approx(networkx_max_flow(system), rel=1e-7, abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(system=flow_layers())
def test_allocation_is_max_min_fair_by_priority(system):
    """Checked by LP: the served vector is deliverable, and no node can get more without taking
    from a node of a higher class or of its class at a served fraction no larger than its own."""
    r = ref(system)
    lp = Deliverable(system)
    amount = r.served * r.compiled.demand * r.working
    fraction = np.where(r.working, r.served, 0.0)
    prio = r.compiled.priority
    tol = 1e-7
    assert lp.most(0, {j: a - tol for j, a in enumerate(amount)}) is not None   # deliverable
    for i in np.flatnonzero(lp.demand > 0):
        if fraction[i] >= 1 - 1e-9:
            continue
        keep = {j: amount[j] - tol for j in range(lp.n) if j != i and lp.demand[j] > 0 and
                (prio[j] > prio[i] or (prio[j] == prio[i] and fraction[j] <= fraction[i] + 1e-9))}
        assert lp.most(i, keep) <= amount[i] + 1e-6


# --------------------------------------------------------------------------- random DC grids
@st.composite
def meshed_grids(draw):
    n = draw(st.integers(2, 9))
    buses = [f"b{i}" for i in range(n)]
    gens = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
    demand = [draw(st.sampled_from([0, 5, 10, 20])) for _ in buses]
    supply = [0.0] * n
    for g in gens:
        supply[g] = draw(st.sampled_from([10, 40, 100]))
    scale = max(1.0, sum(demand) / sum(supply))          # enough supply: no shedding
    supply = [s * scale for s in supply]
    pairs = [(i, (i + 1) % n) for i in range(n if n > 2 else 1)]
    pairs += [tuple(draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True)))
              for _ in range(draw(st.integers(0, n)))]
    edges = [dict(id=f"e{k}", source=buses[u], target=buses[v],
                  reactance=draw(st.floats(0.01, 1.0)), shift=draw(st.sampled_from([0, 0, 0, -7.5, 3, 30])))
             for k, (u, v) in enumerate(pairs)]
    base = draw(st.sampled_from([100.0, 1.0, 250.0]))
    nodes = [dict(id=b, layer="power", supply=supply[i], demand=demand[i]) for i, b in enumerate(buses)]
    return build(nodes, edges, rules={"power": "dcflow"}, bases={"power": base})


@settings(max_examples=100, deadline=None)
@given(system=meshed_grids())
def test_dc_flows_solve_b_theta_equals_p(system):
    """Injections P = output − demand with outputs in proportion to supply; angles from
    numpy.linalg.solve of B θ = P/base + Aᵀ D φ with the LAST bus fixed at 0 (the engine fixes
    the first); flow = base·D(Aθ − φ)."""
    r = ref(system)
    nodes, edges = system.nodes, system.edges
    n, m = len(nodes), len(edges)
    pos = {v: i for i, v in enumerate(nodes["id"])}
    a = np.zeros((m, n))
    a[np.arange(m), edges["source"].map(pos)] += 1
    a[np.arange(m), edges["target"].map(pos)] -= 1
    y = 1 / edges["reactance"].to_numpy()
    phi = np.radians(edges["shift"].to_numpy())
    base = system.layer_base("power")
    supply, demand = nodes["supply"].to_numpy(), nodes["demand"].to_numpy()
    p = supply / supply.sum() * demand.sum() - demand
    b = a.T @ np.diag(y) @ a
    rhs = p / base + a.T @ (y * phi)
    theta = np.zeros(n)
    theta[:-1] = np.linalg.solve(b[:-1, :-1], rhs[:-1])
    expect = base * y * (a @ theta - phi)
    got = np.array([flows(r)[e] for e in edges["id"]])
    assert np.allclose(got, expect, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(expect).max()))
    assert not r.to_dict()["tripped"] and all(v == pytest.approx(1.0) for v in served(r).values())


# --------------------------------------------------------------------------- loader, compile
FLOW_NODES = """id,layer,kind,demand,supply,dispatch,priority
                g,power,source,0,100,60,
                h,power,,0,50,20,
                b,power,,80,,,2
                w,water,source,0,10,,
                t,water,,5,,,"""
FLOW_EDGES = """id,source,target,reactance,capacity,shift
                gb,g,b,0.1,70,
                hb,h,b,0.2,,-3
                wt,w,t,,4,"""
FLOW_DEPS = """dependent,supplier,threshold
               w,b,0.8
               t,b,"""
FLOW_TOML = """[layers.power]
               rule = "dcflow"
               unit = "MW"
               base = 50
               [layers.water]
               rule = "flow"
               unit = "m3/h"
               weight = 2"""


def flow_dir(tmp_path, nodes=FLOW_NODES, edges=FLOW_EDGES, deps=FLOW_DEPS, toml=FLOW_TOML):
    return write_dir(tmp_path / "flow", nodes, edges, deps, toml)


def test_reads_the_v2_columns(tmp_path):
    s = read_system(flow_dir(tmp_path))
    assert s.nodes["supply"].tolist() == [100, 50, 0, 10, 0]
    assert s.nodes["priority"].tolist() == [0, 0, 2, 0, 0]       # b explicit; no other node supplies
    assert np.isnan(s.nodes["dispatch"][2]) and s.nodes["dispatch"][0] == 60
    assert s.edges["shift"].tolist() == [0, -3, 0] and np.isnan(s.edges["reactance"][2])
    assert s.dependencies["threshold"].tolist() == [0.8, 1.0]
    assert (s.layer_unit("power"), s.layer_unit("gas"), s.layer_weight("water"), s.layer_weight("power"),
            s.layer_base("power"), s.layer_base("water")) == ("MW", "", 2.0, 1.0, 50.0, 100.0)
    assert s.flow_layers() == ["power", "water"]


def test_default_priority_is_one_for_suppliers(tmp_path):
    s = read_system(flow_dir(tmp_path, nodes=FLOW_NODES.replace(",,,2", ",,,")))
    assert dict(zip(s.nodes["id"], s.nodes["priority"])) == {"g": 0, "h": 0, "b": 1, "w": 0, "t": 0}


def test_write_then_read_round_trips_a_flow_system(tmp_path):
    s = read_system(flow_dir(tmp_path))
    write_system(s, tmp_path / "copy")
    t = read_system(tmp_path / "copy")
    pd.testing.assert_frame_equal(s.nodes, t.nodes)
    pd.testing.assert_frame_equal(s.edges, t.edges)
    pd.testing.assert_frame_equal(s.dependencies, t.dependencies)
    assert (s.rules, s.units, s.weights, s.bases) == (t.rules, t.units, t.weights, t.bases)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_compiled_flow_arrays(tmp_path, dtype):
    c = compile_system(read_system(flow_dir(tmp_path)), index_dtype=dtype)
    assert c.supply.dtype == np.float64 and c.supply.tolist() == [100, 50, 0, 10, 0]
    assert c.dispatch[:2].tolist() == [60, 20] and np.isnan(c.dispatch[2:]).all()
    assert c.priority.dtype == np.int32 and c.priority.tolist() == [0, 0, 2, 0, 0]
    assert c.edge_capacity.tolist() == [70, math.inf, 4]
    assert c.edge_reactance[:2].tolist() == [0.1, 0.2] and np.isnan(c.edge_reactance[2])
    assert c.edge_shift == pytest.approx([0, math.radians(-3), 0])
    assert c.is_source.tolist() == [1, 1, 0, 1, 0]                 # h: supply without kind = source
    assert c.sup_threshold.tolist() == [0.8, 1.0]
    assert list(c.node_ids[c.sup_idx]) == ["b", "b"]
    assert c.layer_names == ["power", "water"] and c.layer_base.tolist() == [50, 100]
    assert c.layer_rule.tolist() == [4, 3] and c.has_flow_layers


def test_compiled_v1_defaults(town):
    c = compile_system(read_system(town))
    assert not c.has_flow_layers
    assert (c.supply == 0).all() and np.isnan(c.dispatch).all() and np.isinf(c.edge_capacity).all()
    assert np.isnan(c.edge_reactance).all() and (c.edge_shift == 0).all() and (c.sup_threshold == 1).all()
    assert c.priority.tolist() == [int(v in {"sub1"}) for v in c.node_ids]


def test_duplicate_supplier_rows_keep_the_smallest_threshold():
    s = build([dict(id="g", layer="p", supply=10), dict(id="b", layer="p", demand=20), dict(id="x", layer="o")],
              [dict(source="g", target="b", reactance=1)],
              [dict(dependent="x", supplier="b", group="k", threshold=0.9),
               dict(dependent="x", supplier="b", group="k", threshold=0.4)], rules={"p": "dcflow", "o": "none"})
    assert compile_system(s).sup_threshold.tolist() == [0.4]
    assert not failed(ref(s))                                      # b at 0.5 counts for 0.4


@pytest.mark.parametrize("change, file, line, words", [
    (("edges", "gb,g,b,0.1,70,", "gb,g,b,,70,"), "edges.csv", 2, "edge 'gb' of dcflow layer 'power' has no reactance"),
    (("edges", "gb,g,b,0.1,70,", "gb,g,b,0,70,"), "edges.csv", 2, "'reactance' must not be 0"),
    (("nodes", "w,water,source,0,10,,", "w,water,source,0,-10,,"), "nodes.csv", 5, "'supply' is negative"),
    (("nodes", "w,water,source,0,10,,", "w,water,source,0,lots,,"), "nodes.csv", 5, "'supply' is not a number"),
    (("deps", "w,b,0.8", "w,b,1.5"), "dependencies.csv", 2, "'threshold' must be in (0, 1], not 1.5"),
    (("deps", "w,b,0.8", "w,b,0"), "dependencies.csv", 2, "'threshold' must be in (0, 1], not 0"),
    (("deps", "w,b,0.8", "w,b,-0.2"), "dependencies.csv", 2, "'threshold' is negative"),
    (("nodes", "g,power,source,0,100,60,", "g,power,source,0,100,160,"), "nodes.csv", 2,
     "node 'g': dispatch 160 is above its supply 100"),
    (("nodes", "h,power,,0,50,20,", "h,power,,0,50,,"), "nodes.csv", 3,
     "node 'h' has no dispatch while other sources of layer 'power' have one"),
    (("nodes", "w,water,source,0,10,,", "w,water,source,0,,,"), "nodes.csv", 5,
     "node 'w' has kind = source but no supply"),
    (("nodes", "b,power,,80,,,2", "b,power,,80,,,high"), "nodes.csv", 4, "'priority' is not an integer: 'high'"),
    (("nodes", "b,power,,80,,,2", "b,power,,80,,,1.5"), "nodes.csv", 4, "'priority' is not an integer: '1.5'"),
    (("toml", 'rule = "flow"', 'rule = "flows"'), "system.toml", None,
     "unknown rule 'flows' (use source, giant, none, flow or dcflow)"),
    (("toml", "weight = 2", "weight = -1"), "system.toml", None, "layer 'water': weight must be >= 0"),
    (("toml", "base = 50", "base = 0"), "system.toml", None, "layer 'power': base must be > 0"),
    (("toml", 'unit = "MW"', "unit = 3"), "system.toml", None, "layer 'power': unit must be a string"),
    (("toml", 'unit = "MW"', 'units = "MW"'), "system.toml", None, "unknown key 'units' in [layers.power]"),
])
def test_bad_v2_input_names_file_line_and_problem(tmp_path, change, file, line, words):
    texts = dict(nodes=FLOW_NODES, edges=FLOW_EDGES, deps=FLOW_DEPS, toml=FLOW_TOML)
    which, old, new = change
    assert old in texts[which]
    texts[which] = texts[which].replace(old, new)
    with pytest.raises(InputError) as err:
        read_system(flow_dir(tmp_path, **texts))
    assert err.value.file.endswith(file) and err.value.line == line
    assert words in err.value.message


def test_v1_layers_ignore_supply_and_dispatch_checks_of_flow_layers(tmp_path):
    """kind = source without supply is fine in a v1 layer; dispatch for some sources only is
    checked in dcflow layers alone."""
    nodes = FLOW_NODES.replace("h,power,,0,50,20,", "h,power,,0,50,,").replace("w,water,source,0,10,,",
                                                                                "w,water,source,0,,,")
    s = read_system(flow_dir(tmp_path, nodes=nodes, toml='[layers.power]\nrule = "source"'))
    assert s.layer_rules() == {"power": "source", "water": "source"}
    assert s.nodes["supply"].tolist() == [100, 50, 0, 0, 0]


def test_v1_workspace_refuses_flow_layers_with_one_line(tmp_path):
    """The v1 kernel's Workspace cannot run flow layers (cascade/flowcore.py does): one line."""
    s = read_system(flow_dir(tmp_path))
    with pytest.raises(InputError) as err:
        Workspace(compile_system(s))
    assert "flow" in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- random coupled systems
@st.composite
def flow_systems(draw):
    """A dcflow grid (capacities tight enough to trip, dispatch or not, priorities), a flow
    network (capacities, directed pipes), a v1 `none` layer, dependencies across them with
    thresholds, and initial failures of nodes and edges."""
    nodes, edges, deps = [], [], []
    nb = draw(st.integers(2, 7))
    buses = [f"b{i}" for i in range(nb)]
    gens = draw(st.lists(st.sampled_from(buses), min_size=1, max_size=3, unique=True))
    with_dispatch = draw(st.booleans())
    for b in buses:
        supply = draw(st.sampled_from([20, 50, 100])) if b in gens else 0
        nodes.append(dict(id=b, layer="power", supply=supply, demand=draw(st.sampled_from([0, 10, 30])),
                          priority=draw(st.sampled_from([0, 0, 1])),
                          dispatch=(supply * draw(st.sampled_from([0, 0.5, 1]))) if with_dispatch and supply else None))
    for k in range(draw(st.integers(1, 2 * nb))):
        u, v = draw(st.sampled_from(buses)), draw(st.sampled_from(buses))
        edges.append(dict(id=f"pl{k}", source=u, target=v, reactance=draw(st.sampled_from([0.05, 0.1, 0.3])),
                          capacity=draw(st.sampled_from([None, 0, 5, 15, 30, 60])),
                          shift=draw(st.sampled_from([0, 0, 0, 10]))))
    nw = draw(st.integers(2, 6))
    taps = [f"w{i}" for i in range(nw)]
    for i, w in enumerate(taps):
        nodes.append(dict(id=w, layer="water", supply=draw(st.sampled_from([0, 0, 5, 20])) if i else 15,
                          demand=draw(st.sampled_from([0, 4, 9])), priority=draw(st.sampled_from([0, 1]))))
    for k in range(draw(st.integers(1, 2 * nw))):
        edges.append(dict(id=f"wp{k}", source=draw(st.sampled_from(taps)), target=draw(st.sampled_from(taps)),
                          directed=draw(st.booleans()), capacity=draw(st.sampled_from([None, 0, 3, 8]))))
    others = [f"x{i}" for i in range(draw(st.integers(0, 3)))]
    nodes += [dict(id=x, layer="other") for x in others]
    everyone = buses + taps + others
    for _ in range(draw(st.integers(0, 8))):
        dependent = draw(st.sampled_from(everyone))
        supplier = draw(st.sampled_from([v for v in everyone if v != dependent]))
        deps.append(dict(dependent=dependent, supplier=supplier, group=draw(st.sampled_from(["", "", "g"])),
                         threshold=draw(st.sampled_from([None, 1, 0.5, 0.9]))))
    system = build(nodes, edges, deps, rules={"power": "dcflow", "water": "flow", "other": "none"},
                   bases={"power": draw(st.sampled_from([100, 10]))})
    fail = draw(st.lists(st.sampled_from(everyone + [e["id"] for e in edges]), max_size=3, unique=True))
    return system, fail


@settings(max_examples=120, deadline=None)
@given(case=flow_systems())
def test_random_coupled_systems_end_in_a_consistent_state(case):
    """Whatever happens, the final state obeys docs/format.md (v2): fractions in [0, 1]; every working
    node's groups hold under the final fractions and thresholds; no usable branch above its
    capacity; every trip was an overload; at every working bus, generation = served demand + net
    outflow with 0 ≤ generation ≤ supply (and none at buses without supply); the JSON is finite."""
    system, fail = case
    r = ref(system, fail)
    c = r.compiled
    data = strict_json_dict(r.to_dict())
    assert ((r.served >= -1e-12) & (r.served <= 1 + 1e-12)).all() and (r.served[~r.working] == 0).all()
    for g in range(c.n_groups):
        owner = c.group_owner[g]
        if r.working[owner]:
            members = c.sup_idx[c.sup_ptr[g]:c.sup_ptr[g + 1]]
            thresholds = c.sup_threshold[c.sup_ptr[g]:c.sup_ptr[g + 1]]
            assert any(r.working[s] and r.served[s] >= t - 1e-9 for s, t in zip(members, thresholds))
    for t in data["tripped"]:
        assert abs(t["flow"]) > t["capacity"] * (1 + 1e-9)
    net = np.zeros(c.n_nodes)
    for e, f in data["flows"].items():
        k = c.edge_index([e])[0]
        assert abs(f) <= c.edge_capacity[k] * (1 + 1e-9) + 1e-9
        net[c.edge_src[k]] += f
        net[c.edge_dst[k]] -= f
    power = np.flatnonzero((c.node_layer == c.layer_names.index("power")) & r.working)
    generation = r.served[power] * c.demand[power] + net[power]
    scale = 1e-7 * max(1.0, c.supply.sum())
    assert (generation >= -scale).all() and (generation <= c.supply[power] + scale).all()
    assert set(data["flows"]) == {e for k, e in enumerate(c.edge_ids)
                                  if c.layer_names[c.node_layer[c.edge_src[k]]] == "power"
                                  and r.working[c.edge_src[k]] and r.working[c.edge_dst[k]]
                                  and c.edge_capacity[k] > 0 and e not in fail
                                  and e not in {t["id"] for t in data["tripped"]}}


def strict_json_dict(data):
    import json

    def refuse(name):
        raise ValueError(name)
    return json.loads(json.dumps(data), parse_constant=refuse)

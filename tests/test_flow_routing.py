"""Pipe loading of flow layers (cascade/routing.py) and its map, against independent oracles.

Bottlenecks: a pipe is at capacity in every routing of the served amounts iff lowering its
capacity by a small ε makes those amounts undeliverable, i.e. lowers the maximum flow (networkx)
from the sources (each at most its supply) to the nodes (each at most its served amount) below
their sum.  That brute force is checked against the residual-graph test on random layers.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascade import read_system, simulate
from cascade.cli import cli
from cascade.compiled import compile_system
from cascade.flowkernels import maxmin_flow
from cascade.reference_flow import run_flow_cascade
from cascade.report import draw_map, flow_state
from cascade.routing import bottlenecks, flow_routing

from conftest import write_dir

ROOT = Path(__file__).resolve().parent.parent
FLOW_DEMO = ROOT / "networks" / "demo_town_flow"
FLOW_TOWN = ROOT / "networks" / "flow_town"
CASCADE = str(Path(sys.executable).parent / "cascade")
EPS = 1e-7


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@st.composite
def layers(draw, max_nodes: int = 8):
    """Random flow layers with integer capacities (so that ε = 1e-7 is far below any slack)."""
    n = draw(st.integers(2, max_nodes))
    m = draw(st.integers(1, 2 * n + 2))
    ends = st.integers(0, n - 1)
    src = np.array(draw(st.lists(ends, min_size=m, max_size=m)), np.int64)
    dst = np.array(draw(st.lists(ends, min_size=m, max_size=m)), np.int64)
    directed = np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), bool)
    cap = np.array(draw(st.lists(st.one_of(st.integers(0, 6).map(float), st.just(np.inf)),
                                 min_size=m, max_size=m)), float)
    usable = np.array(draw(st.lists(st.integers(0, 5), min_size=m, max_size=m))) > 0
    alive = np.array(draw(st.lists(st.integers(0, 7), min_size=n, max_size=n))) > 0
    supply = np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 0.0, 2.0, 5.0, 7.5]), min_size=n,
                                    max_size=n)))
    demand = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, 0.5, 4.25]), min_size=n,
                                    max_size=n)))
    priority = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), np.int32)
    return dict(alive=alive, edge_src=src, edge_dst=dst, edge_directed=directed, edge_capacity=cap,
                edge_usable=usable, supply=supply, demand=demand, priority=priority)


def deliverable(L, served, cap) -> float:
    """networkx max flow from the alive sources (each <= supply) to every node (<= served)."""
    g = nx.DiGraph()
    a = L["alive"]
    for j, (u, v) in enumerate(zip(L["edge_src"], L["edge_dst"])):
        if not (L["edge_usable"][j] and a[u] and a[v] and u != v and cap[j] > 0):
            continue
        # one private node per pipe and way keeps parallel pipes apart
        ways = [(int(u), int(v))] + ([] if L["edge_directed"][j] else [(int(v), int(u))])
        for k, (x, y) in enumerate(ways):
            mid = ("pipe", j, k)
            g.add_edge(x, mid, **({} if np.isinf(cap[j]) else {"capacity": float(cap[j])}))
            g.add_edge(mid, y)
    g.add_nodes_from(["S", "T"])
    for i in range(len(a)):
        if a[i] and L["supply"][i] > 0:
            g.add_edge("S", i, capacity=float(L["supply"][i]))
        if served[i] > 0:
            g.add_edge(i, "T", capacity=float(served[i]))
    return nx.maximum_flow_value(g, "S", "T")


def kernel_bottlenecks(L):
    r = maxmin_flow(**L)
    a = L["alive"]
    usable = (L["edge_usable"] & a[L["edge_src"]] & a[L["edge_dst"]] & (L["edge_capacity"] > 0))
    neck = bottlenecks(len(a), L["edge_src"], L["edge_dst"], L["edge_directed"], L["edge_capacity"],
                       usable, r.edge_flow, L["supply"], r.served)
    return r, usable, neck


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers())
def test_bottlenecks_are_the_pipes_whose_capacity_limits_the_served_amounts(L):
    r, usable, neck = kernel_bottlenecks(L)
    total = r.served.sum()
    assert deliverable(L, r.served, L["edge_capacity"]) == pytest.approx(total, abs=1e-9)
    for j in range(len(neck)):
        cap = L["edge_capacity"].copy()
        if not (usable[j] and np.isfinite(cap[j]) and L["edge_src"][j] != L["edge_dst"][j]):
            assert not neck[j]
            continue
        cap[j] -= EPS
        lowered = deliverable(L, r.served, cap) < total - EPS / 2
        assert neck[j] == lowered, (j, neck[j], lowered)
        if neck[j]:                      # a bottleneck is at capacity in the kernel's routing too
            assert abs(r.edge_flow[j]) == pytest.approx(L["edge_capacity"][j], rel=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers(), st.data())
def test_a_non_bottleneck_pipe_can_lose_some_capacity_without_changing_the_allocation(L, data):
    """The other side of the definition, through the kernel itself: lowering the capacity of a
    pipe that is not a bottleneck by less than its slack leaves every served amount unchanged,
    lowering a bottleneck's changes some."""
    r, usable, neck = kernel_bottlenecks(L)
    cand = np.flatnonzero(usable & np.isfinite(L["edge_capacity"]) & (L["edge_src"] != L["edge_dst"]))
    if not len(cand):
        return
    j = data.draw(st.sampled_from(list(cand)))
    lower = dict(L, edge_capacity=L["edge_capacity"].copy())
    lower["edge_capacity"][j] -= 1e-6
    again = maxmin_flow(**lower)
    changed = not np.allclose(again.served, r.served, rtol=0, atol=1e-12)
    assert changed == bool(neck[j])


def test_the_flow_town_losing_its_tank_has_three_bottleneck_pipes():
    """flow_town without its tank: 500 m3/h from the works reach east (300) and west (200); west
    can only get them through P3 (150) and P5 (50), so both run full, and east's 300 then need
    all of P2 (350 = 300 + the 50 passed on over P5): every routing is this one."""
    town = read_system(FLOW_TOWN)
    result = simulate(town, ["tank"])
    r = result.routing()
    c = result.compiled
    assert sorted(c.edge_ids[r.bottleneck]) == ["P2", "P3", "P5"]
    flows = {str(c.edge_ids[e]): r.flows[e] for e in np.flatnonzero(~np.isnan(r.flows))}
    assert flows == pytest.approx({"P1": 500.0, "P2": 350.0, "P3": 150.0, "P5": -50.0})
    data = result.to_dict()
    assert sorted(data["bottlenecks"]) == ["P2", "P3", "P5"] and data["routing"] == pytest.approx(flows)
    assert "L1" not in data["routing"] and "L1" in data["flows"]     # dcflow flows stay in "flows"


@pytest.mark.parametrize("fail", [[], ["W-TP-2"], ["P-SUB-T06->P-SUB-T07"], ["G-GATE-1"]])
def test_the_routing_delivers_the_served_amounts_of_either_engine(fail):
    """On the flow demo town: the routing of each flow layer stays within capacities, conserves
    flow and delivers what the cascade served (the reference engine's amounts too)."""
    town = read_system(FLOW_DEMO)
    c = compile_system(town)
    core = simulate(town, fail, compiled=c)
    ref = run_flow_cascade(town, *(([f for f in fail if f in set(town.nodes["id"])],
                                    [f for f in fail if f in set(town.edges["id"])])))
    r = flow_routing(c, core.working, core.initial_edges)
    flow_node = np.asarray(c.layer_rule)[np.asarray(c.node_layer)] == 3
    demand = np.asarray(c.demand)
    for v in np.flatnonzero(flow_node & core.working & (demand > 0)):
        assert r.served[v] == pytest.approx(ref.served[str(c.node_ids[v])] * demand[v], rel=1e-9, abs=1e-9)
    ok = ~np.isnan(r.flows)
    cap = np.asarray(c.edge_capacity)
    assert (np.abs(r.flows[ok]) <= cap[ok] * (1 + 1e-12)).all()
    src, dst = np.asarray(c.edge_src)[ok], np.asarray(c.edge_dst)[ok]
    net = (np.bincount(dst, weights=r.flows[ok], minlength=c.n_nodes)
           - np.bincount(src, weights=r.flows[ok], minlength=c.n_nodes))
    sink = flow_node & ~(np.asarray(c.supply) > 0)
    np.testing.assert_allclose(net[sink], r.served[sink], atol=1e-6)
    assert not (r.bottleneck & ~ok).any()


# ------------------------------------------------------------------------------------ the map
def _collection(fig, gid):
    return [c for ax in fig.axes for c in ax.collections if c.get_gid() == gid]


def test_map_colours_the_pipes_by_the_routing_and_marks_the_bottlenecks():
    import matplotlib.pyplot as plt

    town = read_system(FLOW_DEMO)
    for fail in ([], ["W-TP-2"]):
        fig = draw_map(town, flow_state(town, fail))
        r = simulate(town, fail).routing()
        cap = town.edges["capacity"].to_numpy(float)
        rated = ~np.isnan(r.flows) & np.isfinite(cap) & (cap > 0)
        plain = rated & ~r.bottleneck
        (lines,) = _collection(fig, "flow-routing")
        np.testing.assert_allclose(np.sort(np.asarray(lines.get_array(), float)),
                                   np.sort(np.minimum(np.abs(r.flows[plain]) / cap[plain], 1.0)), rtol=1e-12)
        necks = _collection(fig, "flow-bottleneck")
        assert len(necks) == (1 if r.bottleneck.any() else 0)
        if necks:
            assert len(necks[0].get_segments()) == int(r.bottleneck.sum())
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert f"bottleneck pipe: full in every routing ({int(r.bottleneck.sum())})" in labels
        bars = [ax.get_ylabel() for ax in fig.axes[1:]]
        assert any("one routing of the served amounts (not unique)" in b and "m3/h" in b for b in bars)
        assert any(b.startswith("line loading") for b in bars)        # the dcflow bar as before
        plt.close(fig)
    assert int(r.bottleneck.sum()) >= 1                                  # W-TP-2 lost: some pipe limits


def _town_with_xy(tmp_path):
    """networks/flow_town with made-up coordinates (it has none)."""
    town = tmp_path / "town"
    town.mkdir()
    for name in ("system.toml", "edges.csv", "dependencies.csv"):
        (town / name).write_text((FLOW_TOWN / name).read_text())
    rows = (FLOW_TOWN / "nodes.csv").read_text().splitlines()
    (town / "nodes.csv").write_text("\n".join([rows[0] + ",x,y"] + [f"{r},{100 * i},{(i * 37) % 200}"
                                                                     for i, r in enumerate(rows[1:])]) + "\n")
    return town


def test_map_result_of_a_flow_town_draws_the_same_as_fail(tmp_path):
    """`map --result` of a simulate JSON and `map --fail` give byte-identical figures; a JSON
    naming a pipe the system lacks is exit 2 in one line, nothing written."""
    sim = tmp_path / "sim.json"
    assert run("simulate", FLOW_TOWN, "--fail", "tank", "--format", "json", "-o", sim).exit_code == 0
    town = _town_with_xy(tmp_path)
    a, b = tmp_path / "fail.png", tmp_path / "result.png"     # (an SVG holds its date)
    assert run("map", town, "--fail", "tank", "-o", a).exit_code == 0
    assert run("map", town, "--result", sim, "-o", b).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    data = json.loads(sim.read_text())
    data["bottlenecks"].append("NO-SUCH-PIPE")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "bad.png"
    proc = subprocess.run([CASCADE, "map", str(town), "--result", str(bad), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "NO-SUCH-PIPE" in proc.stderr
    assert not out.exists()


def test_map_of_flow_pipes_draws_odd_ids_as_written(tmp_path):
    """Ids and names with $, quotes, <, & and unicode: the SVG is written, names drawn as given."""
    root = write_dir(tmp_path / "odd", """
        id,layer,kind,demand,supply,x,y
        "$w^$",wa$ter,source,0,20,0,0
        "a""b",wa$ter,,6,,100,0
        <ç>,wa$ter,,8,,100,100
        """, """
        id,source,target,capacity
        p$1$,"$w^$","a""b",4
        'p2',"$w^$",<ç>,20
        p&3,"a""b",<ç>,1
        """, None, '[system]\nname = "ç$^$ <town>"\n[layers."wa$ter"]\nrule = "flow"\nunit = "m³/h"')
    out = tmp_path / "odd.svg"
    proc = subprocess.run([CASCADE, "map", str(root), "-o", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    svg = out.read_text(encoding="utf-8")
    assert "<svg" in svg and "m³/h" in svg and "ç$^$ &lt;town&gt;" in svg
    system = read_system(root)
    r = simulate(system).routing()
    c = compile_system(system)
    # 20 m3/h for 14 demanded: a"b can get at most 4 over p$1$ plus 1 over p&3 (through <ç>), so
    # both run full in every routing; 'p2' carries <ç>'s 8 and the 1 passed on: 9 of its 20
    assert sorted(map(str, c.edge_ids[r.bottleneck])) == ["p$1$", "p&3"]
    fig = draw_map(system, flow_state(system))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "bottleneck pipe: full in every routing (2)" in labels
    assert any(label.startswith("wa$ter (3 nodes") for label in labels)
    (lines,) = _collection(fig, "flow-routing")
    assert np.asarray(lines.get_array(), float).tolist() == pytest.approx([9 / 20])
    assert any("m³/h" in ax.get_ylabel() for ax in fig.axes[1:])
    import matplotlib.pyplot as plt
    plt.close(fig)


# ------------------------------------------------------------------- the commands, as a user
def test_simulate_table_lists_the_bottleneck_pipes_with_their_capacity():
    res = run("simulate", FLOW_TOWN, "--fail", "tank")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    at = lines.index("Bottleneck pipes (3; at capacity in every routing of the served amounts, a smaller "
                     "capacity would serve some node less):")
    assert lines[at + 1] == "  P2 [water] 350.0 m3/h, P3 [water] 150.0 m3/h, P5 [water] 50.0 m3/h"
    intact = run("simulate", FLOW_TOWN)
    assert intact.exit_code == 0 and "Bottleneck pipes" not in intact.output


def _threshold_town(tmp_path):
    """A pump (water source) near a substation that gets 8 of its 10 MW (served fraction 0.8)."""
    return write_dir(tmp_path / "t", """
        id,layer,kind,demand,supply,x,y
        gen,power,source,0,8,0,0
        sub,power,,10,,10,0
        pump,water,source,0,5,12,0
        tap,water,,5,,20,0
        """, """
        id,source,target,capacity
        l1,gen,sub,
        p1,pump,tap,
        """, None, '[system]\nname = "t"\n[layers.power]\nrule = "flow"\nunit = "MW"\n'
                   '[layers.water]\nrule = "flow"\nunit = "m3/h"')


def test_couple_threshold_lets_a_partly_served_supplier_count(tmp_path):
    for threshold, pump_works in ((None, False), ("0.7", True), ("0.8", True), ("0.9", False)):
        root = _threshold_town(tmp_path / str(threshold))
        extra = [] if threshold is None else ["--threshold", threshold]
        res = run("couple", root, "--dependent", "water", "--supplier", "power", "--nearest", "1", *extra)
        assert res.exit_code == 0, res.output
        header, row = (root / "dependencies.csv").read_text().splitlines()[:2]
        assert ("threshold" in header.split(",")) == (threshold is not None)
        if threshold is not None:
            assert float(row.split(",")[header.split(",").index("threshold")]) == float(threshold)
        data = json.loads(run("simulate", root, "--format", "json").output)
        assert data["layers"]["water"]["service"] == (1.0 if pump_works else 0.0)


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2", "nan", "x"])
def test_couple_bad_threshold_is_exit_2_in_one_line_and_writes_nothing(tmp_path, bad):
    root = _threshold_town(tmp_path)
    proc = subprocess.run([CASCADE, "couple", str(root), "--dependent", "water", "--supplier", "power",
                           "--nearest", "1", "--threshold", bad], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "threshold" in proc.stderr
    if bad != "x":                                          # click's own usage error for a non-number
        assert proc.stderr.count("\n") == 1
    assert not (root / "dependencies.csv").exists()


def test_export_result_carries_the_routing_and_the_bottlenecks(tmp_path):
    sim = tmp_path / "sim.json"
    assert run("simulate", FLOW_TOWN, "--fail", "tank", "--format", "json", "-o", sim).exit_code == 0
    out = tmp_path / "town.geojson"
    assert run("export", FLOW_TOWN, "--result", sim, "-o", out).exit_code == 0
    props = {f["properties"]["id"]: f["properties"] for f in json.loads(out.read_text())["features"]
             if f["properties"].get("feature") == "edge"}
    assert [props[p]["bottleneck"] for p in ("P1", "P2", "P3", "P4", "P5")] == [False, True, True, False, True]
    assert props["P4"]["routing"] is None and props["P2"]["routing"] == pytest.approx(350.0)
    assert props["L1"]["routing"] is None and props["L1"]["flow"] is not None


@pytest.mark.parametrize("key, value, message", [
    ("routing", {"P2": "abc"}, "'routing' of the result: 'P2' is not a number: 'abc'"),
    ("routing", [1], "'routing' of the result is not an object of id -> number"),
    ("bottlenecks", 5, "'bottlenecks' of the result is not a list of edge ids"),
    ("flows", {"L1": "x"}, "'flows' of the result: 'L1' is not a number: 'x'"),
    ("served", {"east": [0.5]}, "'served' of the result: 'east' is not a number: [0.5]"),
])
def test_a_broken_simulate_result_is_exit_2_in_one_line(tmp_path, key, value, message):
    """map and export read a simulate JSON whose numbers are not numbers: one line naming the
    file and the key, exit 2, no file (before, a ValueError traceback)."""
    sim = tmp_path / "sim.json"
    assert run("simulate", FLOW_TOWN, "--fail", "tank", "--format", "json", "-o", sim).exit_code == 0
    data = json.loads(sim.read_text())
    data[key] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "town.geojson"
    proc = subprocess.run([CASCADE, "export", str(FLOW_TOWN), "--result", str(bad), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr == f"error: {bad}: {message}\n"
    assert not out.exists()
    proc = subprocess.run([CASCADE, "map", str(_town_with_xy(tmp_path)), "--result", str(bad), "-o",
                           str(tmp_path / "m.png")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr == f"error: {bad}: {message}\n"
    assert not (tmp_path / "m.png").exists()


def test_info_names_the_pipes_that_keep_a_flow_layer_short(tmp_path):
    """A water layer of 5 L/s supply behind a 2 L/s pipe serves 20 % of 10 L/s: info names the
    pipe; a gas layer short of supply (its pipe has room) gets the warning without pipes."""
    root = write_dir(tmp_path / "short", """
        id,layer,kind,demand,supply
        s,water,source,0,5
        a,water,,10,
        g,gas,source,0,1
        b,gas,,4,
        """, """
        id,source,target,capacity
        p,s,a,2
        q,g,b,3
        """, None, '[layers.water]\nrule = "flow"\nunit = "L/s"\n[layers.gas]\nrule = "flow"\nunit = "m3/h"')
    res = run("info", root, "--format", "json")
    assert res.exit_code == 0, res.output
    warnings = json.loads(res.output)["warnings"]
    assert "layer 'water' serves 20.0% of its demand with nothing failed; bottleneck pipe(s), full in every " \
           "routing: p" in warnings
    assert "layer 'gas' serves 25.0% of its demand with nothing failed" in warnings

"""Redundancy on flow layers: capacity, supply and line measures, the served metric on served
amounts, and the one-line errors of bad rows (library, CliRunner and a real process).

Oracles: networkx's maximum flow (the served total of a ``flow`` layer is the maximum flow,
docs/format.md (v2)) and the reference engine's plain DC power flow (``engine="reference"``).
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cascade import InfrastructureSystem, compile_system, read_system, simulate
from cascade.cli import cli
from cascade.ensemble import run_ensemble
from cascade.errors import InputError
from cascade.hazards import load_scenario
from cascade.io import write_system
from cascade.redundancy import (Evaluator, FixedSampler, ScenarioSampler, analyse, apply_measures,
                                parse_candidates, write_candidates)

ROOT = Path(__file__).resolve().parent.parent
FLOW_TOWN = ROOT / "networks" / "flow_town"
CASCADE = str(Path(sys.executable).parent / "cascade")

# A water network: source S feeds A, B, C; e2 (A-B, 20) and e4 (C-B, 10) bound what reaches B.
NODES = [("S", "source", 0, 100), ("A", "", 30, 0), ("B", "", 40, 0), ("C", "", 30, 0)]
EDGES = [("e1", "S", "A", 80), ("e2", "A", "B", 20), ("e3", "S", "C", 40), ("e4", "C", "B", 10),
         ("e5", "A", "C", 15)]
SETS = [[], ["e3"], ["e1"], ["e5"], ["A"], ["e2", "e4"], ["S"]]


def water(supply=100.0) -> InfrastructureSystem:
    nodes = pd.DataFrame([dict(id=i, layer="water", kind=k, demand=d, supply=supply if i == "S" else s)
                          for i, k, d, s in NODES])
    edges = pd.DataFrame([dict(id=i, source=a, target=b, capacity=c) for i, a, b, c in EDGES])
    return InfrastructureSystem.from_tables(nodes, edges, name="pipes", rules={"water": "flow"},
                                            units={"water": "m3/h"})


def max_flow(system: InfrastructureSystem, failed) -> float:
    """networkx's maximum flow from a super source (each node's supply) to a super sink (each
    node's demand) over the edges that did not fail, between nodes that did not fail."""
    nodes, edges = system.nodes, system.edges
    failed = set(failed)
    g = nx.DiGraph()
    for r in nodes.itertuples():
        if r.id in failed:
            continue
        if r.supply > 0:
            g.add_edge("_s", r.id, capacity=float(r.supply))
        if r.demand > 0:
            g.add_edge(r.id, "_t", capacity=float(r.demand))
    for r in edges.itertuples():
        if r.id in failed or r.source in failed or r.target in failed:
            continue
        cap = np.inf if np.isnan(r.capacity) else float(r.capacity)
        for a, b in ((r.source, r.target), (r.target, r.source)):
            if g.has_edge(a, b):            # parallel pipes add up
                g[a][b]["capacity"] += cap
            else:
                g.add_edge(a, b, capacity=cap)
    if "_s" not in g or "_t" not in g:
        return 0.0
    return nx.maximum_flow_value(g, "_s", "_t")


def rows(system, table):
    return parse_candidates(pd.DataFrame(table, dtype=object).fillna(""), system)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def expected_benefit(before: InfrastructureSystem, after: InfrastructureSystem) -> float:
    demand = before.nodes["demand"].sum()
    return float(np.mean([(max_flow(after, s) - max_flow(before, s)) / demand for s in SETS]))


# ------------------------------------------------------------------ measures against max flow
def test_capacity_measure_gains_what_networkx_max_flow_predicts():
    system = water()
    [m] = rows(system, [dict(id="up-e2", type="capacity", cost="10", element="e2", capacity="45")])
    after = apply_measures(system, [m])
    assert after.edges.set_index("id").loc["e2", "capacity"] == 45
    assert system.edges.set_index("id").loc["e2", "capacity"] == 20          # input untouched
    want = expected_benefit(system, after)
    assert want > 0.04                                                       # e2 is a bottleneck
    result = analyse(system, [m], FixedSampler(SETS), len(SETS))
    row = result.ranking.iloc[0]
    assert row["benefit"] == pytest.approx(want, abs=1e-9)
    # the base loss is 1 - max flow / demand, averaged over the samples
    assert result.base_loss == pytest.approx(np.mean([1 - max_flow(system, s) / 100 for s in SETS]), abs=1e-9)
    assert "m3/h served" in row["why"]


def test_supply_measure_and_a_new_source_gain_what_max_flow_predicts():
    system = water(supply=55.0)
    table = [dict(id="more-S", type="supply", cost="10", node="S", supply="90"),
             dict(id="new-C", type="supply", cost="10", node="C", supply="25")]
    ms = rows(system, table)
    result = analyse(system, ms, FixedSampler(SETS), len(SETS)).ranking.set_index("id")
    for m in ms:
        want = expected_benefit(system, apply_measures(system, [m]))
        assert want > 0
        assert result.loc[m.id, "benefit"] == pytest.approx(want, abs=1e-9)
    both = Evaluator(system, FixedSampler(SETS), len(SETS)).benefit(ms).mean
    assert both == pytest.approx(expected_benefit(system, apply_measures(system, ms)), abs=1e-9)


def test_a_new_line_gains_what_max_flow_predicts_and_parallel_measures_keep_the_larger():
    system = water()
    ms = rows(system, [dict(id="S-B", type="line", cost="5", source="S", target="B", capacity="12"),
                       dict(id="up1", type="capacity", cost="1", element="e4", capacity="30"),
                       dict(id="up2", type="capacity", cost="1", element="e4", capacity="25")])
    after = apply_measures(system, ms)
    assert list(after.edges["id"]) == [*system.edges["id"], "S-B"]            # new edges come last
    assert after.edges.set_index("id").loc["e4", "capacity"] == 30
    result = analyse(system, ms[:1], FixedSampler(SETS), len(SETS))
    assert result.ranking["benefit"].iloc[0] == pytest.approx(expected_benefit(system, apply_measures(system, ms[:1])),
                                                                abs=1e-9)


# ------------------------------------------------------------------ dcflow: a line removes trips
def test_a_new_line_relieves_the_overloaded_branches_and_removes_the_trips():
    """flow_town without L1: L2 (96 MW on 60) and L3 (-60 on 40) trip, north is stranded and the
    pump stops.  A second plant-north line (x 0.1, 80 MW) carries what L1 carried: no trip."""
    town = read_system(FLOW_TOWN)
    [line] = rows(town, [dict(id="L1b", type="line", cost="40", source="plant", target="north",
                              capacity="80", reactance="0.1")])
    after = apply_measures(town, [line])
    before_run, after_run = simulate(town, ["L1"]), simulate(after, ["L1"])
    assert sorted(before_run.trips["id"]) == ["L2", "L3"]
    assert len(after_run.trips) == 0
    ref = simulate(after, ["L1"], engine="reference")
    assert len(ref.trips) == 0 and ref.flows[list(after.edges["id"]).index("L1b")] == pytest.approx(63.0)

    def loss(r):                           # the reference engine, layers weighted equally
        c = r.compiled
        demand = np.bincount(c.node_layer, weights=c.demand)
        served = np.bincount(c.node_layer, weights=c.demand * r.served)
        return float(np.mean(1 - served / demand))

    want = loss(simulate(town, ["L1"], engine="reference")) - loss(ref)
    result = analyse(town, [line], FixedSampler([["L1"], []]), 2)
    assert result.ranking["benefit"].iloc[0] == pytest.approx(want / 2, abs=1e-9)
    assert want == pytest.approx(0.5 * (80 / 120 + 400 / 500))


def test_a_feed_in_a_flow_system_takes_the_groups_threshold():
    town = read_system(FLOW_TOWN)
    [feed] = rows(town, [dict(id="f", type="feed", cost="1", node="pump", supplier="north")])
    deps = apply_measures(town, [feed]).dependencies
    new = deps[deps["supplier"] == "north"].iloc[0]
    assert new["threshold"] == 0.8 and new["group"] == deps[deps["supplier"] == "south"]["group"].iloc[0]
    # south lost, north fully served: the new row counts (a row without a threshold would not)
    base = simulate(town, ["south"])
    fed = simulate(apply_measures(town, [feed]), ["south"])
    pump = list(town.nodes["id"]).index("pump")
    assert not base.working[pump] and fed.working[pump]


def test_served_loss_per_sample_equals_the_scenario_ensemble(tmp_path):
    """flow_town serves all its demand intact, so 1 - service (redundancy) equals the ensemble's
    intact - service (scenario) per sample."""
    path = tmp_path / "s.toml"
    path.write_text(RANDOM)
    town = read_system(FLOW_TOWN)
    scenario = load_scenario(path)
    ens = run_ensemble(town, scenario, 30, threads=2)
    ev = Evaluator(town, ScenarioSampler(load_scenario(path), town), 30, threads=2)
    loss, per_layer = ev.losses([])
    assert loss == pytest.approx(ens.loss[:, -1], abs=1e-12)
    assert per_layer == pytest.approx(ens.loss[:, :2], abs=1e-12)
    assert (loss > 0).sum() > 5


RANDOM = """[scenario]
name = "random flow"
seed = 3
samples = 30
[hazard]
type = "random"
elements = "all"
[hazard.fraction]
power = 0.1
water = 0.1
"""


# ------------------------------------------------------------------ CLI
@pytest.fixture
def pipes(tmp_path):
    d = tmp_path / "pipes"
    write_system(water(), d)
    sets = tmp_path / "sets.txt"
    sets.write_text("\n".join(" ".join(s) for s in SETS) + "\n")
    return d, sets


def test_cli_json_and_a_real_process_agree_with_max_flow(pipes, tmp_path):
    d, sets = pipes
    cands = tmp_path / "c.csv"
    cands.write_text("id,type,cost,element,capacity,node,supply\n"
                     "up-e2,capacity,10,e2,45,,\n"
                     "more-S,supply,5,,,S,150\n")
    # a blank line of SETS is skipped by --failure-sets: compare with the non-empty sets
    sets.write_text("\n".join(" ".join(s) for s in SETS if s) + "\n")
    used = [s for s in SETS if s]
    system = water()
    want = np.mean([(max_flow(apply_measures(system, rows(system, [dict(
        id="up-e2", type="capacity", cost="10", element="e2", capacity="45")])), s) - max_flow(system, s)) / 100
        for s in used])
    res = run("redundancy", d, "--candidates", cands, "--failure-sets", sets, "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    by_id = {r["id"]: r for r in data["ranking"]}
    assert by_id["up-e2"]["benefit"] == pytest.approx(want, abs=1e-9)
    assert by_id["more-S"]["benefit"] == 0.0                 # supply was never short
    assert data["intact_loss"] == pytest.approx(1 - max_flow(system, []) / 100, abs=1e-12)
    assert data["intact_loss"] > 0                           # e2 and e4 hold B at 30 of 40
    assert by_id["up-e2"]["measure"] == {"id": "up-e2", "type": "capacity", "cost": 10.0, "element": "e2",
                                         "capacity": 45.0}
    proc = subprocess.run([CASCADE, "redundancy", str(d), "--candidates", str(cands), "--failure-sets",
                           str(sets), "--budget", "12"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "capacity of e2 to 45" in proc.stdout and "Best plan under budget 12" in proc.stdout
    assert "the intact system already lacks 10.000 % of its service" in proc.stdout


def test_cli_flow_town_line_ranks_first(tmp_path):
    cands = tmp_path / "c.csv"
    cands.write_text("id,type,cost,source,target,capacity,reactance,element\n"
                     "L1b,line,40,plant,north,80,0.1,\n"
                     "up-L3,capacity,10,,,60,,L3\n")
    sets = tmp_path / "sets.txt"
    sets.write_text("L1\nL2\n\n")
    res = run("redundancy", FLOW_TOWN, "--candidates", cands, "--failure-sets", sets, "--format", "csv")
    assert res.exit_code == 0, res.output
    first = res.stdout.splitlines()[1].split(",")
    assert first[1] == "L1b" and float(first[4]) > 0


def flow_and_v1(tmp_path) -> Path:
    """flow_town plus a v1 communication layer (rule source)."""
    town = tmp_path / "town"
    shutil.copytree(FLOW_TOWN, town)
    with open(town / "nodes.csv", "a") as fh:
        fh.write("c1,comm,source,0,,,\nc2,comm,,1,,,\nc3,comm,,1,,,\n")
    with open(town / "edges.csv", "a") as fh:
        fh.write("C1,c1,c2,,\n")
    with open(town / "system.toml", "a") as fh:
        fh.write('[layers.comm]\nrule = "source"\n')
    return town


BAD = [
    ("x,capacity,1,P9,50,,,,,", "element 'P9' is not an edge of the system"),
    ("x,supply,1,,,tamk,300,,,", "node 'tamk' is not a node of the system"),
    ("x,capacity,1,P5,-5,,,,,", "'capacity' is negative"),
    ("x,capacity,1,P5,40,,,,,", "the new capacity 40 of 'P5' is not above its capacity 50"),
    ("x,capacity,1,P1,40,,,,,", "edge 'P1' has no capacity limit to raise"),
    ("x,capacity,1,C1,40,,,,,", "capacities act in flow and dcflow layers only"),
    ("x,supply,1,,,c1,5,,,", "supplies act in flow and dcflow layers only"),
    ("x,supply,1,,,tank,150,,,", "the new supply 150 of 'tank' is not above its supply 150"),
    ("x,line,1,,,,,c2,c3,", "a line needs a flow or dcflow layer, and layer 'comm' uses the source rule"),
    ("x,line,1,,80,,,plant,north,0", "'reactance' must not be 0"),
    ("x,line,1,,80,,,plant,north,", "a line in dcflow layer 'power' needs 'reactance'"),
    ("x,line,1,,80,,,tank,east,0.1", "'reactance' applies to dcflow layers only"),
    ("x,line,1,,80,,,tank,north,0.1", "line joins layer 'water' to layer 'power'"),
    ("x,link,1,,,,,tank,east,", "layer 'water' uses the flow rule; add the edge as a 'line'"),
    ("x,supply,1,,,tank,lots,,,", "'supply' is not a number: 'lots'"),
    ("x,capacity,1,P5,,,,,,", "a capacity needs 'capacity'"),
]


@pytest.mark.parametrize("row, words", BAD)
def test_bad_rows_of_flow_measures_exit_2_with_one_line(tmp_path, row, words):
    town = flow_and_v1(tmp_path)
    cands = tmp_path / "c.csv"
    cands.write_text("id,type,cost,element,capacity,node,supply,source,target,reactance\n" + row + "\n")
    sets = tmp_path / "sets.txt"
    sets.write_text("L1\n")
    out = tmp_path / "out.json"
    res = run("redundancy", town, "--candidates", cands, "--failure-sets", sets, "--output", out)
    assert res.exit_code == 2, res.output
    assert words in res.stderr and f"{cands}, line 2" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_real_process_bad_row_and_resilience(tmp_path):
    cands = tmp_path / "c.csv"
    cands.write_text("id,type,cost,source,target,capacity,reactance\nx,line,1,plant,north,80,0\n")
    sets = tmp_path / "sets.txt"
    sets.write_text("L1\n")
    proc = subprocess.run([CASCADE, "redundancy", str(FLOW_TOWN), "--candidates", str(cands), "--failure-sets",
                           str(sets)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr == f"error: {cands}, line 2: 'reactance' must not be 0 (negative is a series capacitor)\n"
    cands.write_text("id,type,cost,source,target,capacity,reactance\nx,line,1,plant,north,80,0.1\n")
    proc = subprocess.run([CASCADE, "redundancy", str(FLOW_TOWN), "--candidates", str(cands), "--failure-sets",
                           str(sets), "--metric", "resilience", "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # the new line keeps the north served while L1 is repaired: less lost service over time
    assert out["metric"] == "resilience" and out["base_loss"] > 0
    assert [r["id"] for r in out["ranking"]] == ["x"] and out["ranking"][0]["benefit"] > 0


def test_write_candidates_adds_flow_columns_only_for_flow_measures():
    town = read_system(FLOW_TOWN)
    ms = rows(town, [dict(id="L1b", type="line", cost="40", source="plant", target="north", capacity="80",
                          reactance="0.1"), dict(id="s", type="supply", cost="1", node="tank", supply="200")])
    text = write_candidates(ms)
    assert text.splitlines()[0].endswith("capacity,supply,reactance,description")
    again = rows(town, pd.read_csv(pd.io.common.StringIO(text), dtype=str).fillna("").to_dict("records"))
    assert again == [m.__class__(**{**m.__dict__, "line": r.line}) for m, r in zip(ms, again)]
    feed = rows(town, [dict(id="f", type="feed", cost="1", node="pump", supplier="north")])
    assert write_candidates(feed).splitlines()[0] == ("id,type,cost,node,group,hours,supplier,source,target,"
                                                      "directed,element,factor,description")


def test_modified_flow_systems_pass_the_loaders_checks_and_both_engines_agree():
    """Every flow measure leaves a system that the loader's validation accepts (dispatch for every
    source of a dcflow layer or none, reactances, shifts) and on which the core and the reference
    engine agree.  A new source in flow_town's power layer is dispatched at 0."""
    town = read_system(FLOW_TOWN)
    ms = rows(town, [dict(id="gen-north", type="supply", cost="1", node="north", supply="30"),
                     dict(id="more-peaker", type="supply", cost="1", node="peaker", supply="60"),
                     dict(id="L3b", type="line", cost="1", source="north", target="south", reactance="0.2",
                          capacity="30"),
                     dict(id="W2", type="line", cost="1", source="tank", target="east", directed="true"),
                     dict(id="up-P5", type="capacity", cost="1", element="P5", capacity="120")])
    after = apply_measures(town, ms)
    nodes = after.nodes.set_index("id")
    assert nodes.loc["north", "supply"] == 30 and nodes.loc["north", "dispatch"] == 0
    assert nodes.loc["peaker", "supply"] == 60 and nodes.loc["peaker", "dispatch"] == 20
    again = InfrastructureSystem.from_tables(after.nodes, after.edges, after.dependencies, rules=after.rules,
                                             units=after.units)
    assert list(again.edges["id"]) == [*town.edges["id"], "L3b", "W2"]
    for fail in ([], ["L1"], ["plant"], ["P2"], ["L2", "P3"]):
        core, ref = simulate(after, fail), simulate(after, fail, engine="reference")
        assert np.array_equal(core.working, ref.working)
        assert core.served == pytest.approx(ref.served, abs=1e-9)
        assert list(core.trips["id"]) == list(ref.trips["id"])

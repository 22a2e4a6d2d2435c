"""The other commands on a system with flow layers (the bundled networks/flow_town), as a user
runs them: `info`, `critical` (N-1 by served demand lost, overload trips included), `scenario`
(ensembles whose loss counts served amounts), and the one-line refusals of the commands that
do not take flow layers yet."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cascade import read_system, simulate
from cascade.cli import cli
from cascade.criticality import sweep
from cascade.ensemble import run_ensemble
from cascade.hazards import load_scenario

ROOT = Path(__file__).resolve().parent.parent
FLOW_TOWN = ROOT / "networks" / "flow_town"
CASCADE = str(Path(sys.executable).parent / "cascade")
RANDOM = """[scenario]
name = "random flow"
seed = 3
samples = 40
[hazard]
type = "random"
elements = "all"
[hazard.fraction]
power = 0.1
water = 0.1
"""


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def served_amounts(result):
    """Per layer: Σ demand × served fraction (the service's numerator)."""
    c = result.compiled
    return np.bincount(c.node_layer, weights=c.demand * result.served, minlength=len(c.layer_names))


def test_info_describes_a_flow_system():
    res = run("info", FLOW_TOWN, "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {k: v["rule"] for k, v in data["layers"].items()} == {"power": "dcflow", "water": "flow"}
    assert data["layers"]["power"]["unit"] == "MW"
    table = run("info", FLOW_TOWN)
    assert table.exit_code == 0 and "dcflow" in table.stdout


def test_info_warns_about_shortage_and_overloads_of_the_intact_system(tmp_path):
    """With L1 rated 50 instead of 80, the intact flow of 63 trips it (and then L2, L3, as when L1
    fails): info says so, and that power serves 40/120 = 33.3 % with nothing failed."""
    import shutil

    town = tmp_path / "town"
    shutil.copytree(FLOW_TOWN, town)
    edges = town / "edges.csv"
    edges.write_text(edges.read_text().replace("L1,plant,north,0.1,80", "L1,plant,north,0.1,50"))
    res = run("info", town, "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["layers"]["power"]["service"] == pytest.approx(40 / 120)
    assert "layer 'power' serves 33.3% of its demand with nothing failed" in data["warnings"]
    assert "3 branch(es) trip on overload with nothing failed: L1, L2, L3" in data["warnings"]
    clean = json.loads(run("info", FLOW_TOWN, "--format", "json").stdout)
    assert clean["warnings"] == [] and clean["layers"]["water"]["service"] == pytest.approx(1.0)


def test_critical_finds_the_line_whose_loss_trips_others():
    """Losing L1 trips L2 and L3 (tests/test_flow_reference.py's worked example): north is
    stranded (60 MW), south falls to 0.6 (20 MW short) and the pump stops (400 m3/h of water
    lost): score 80/120 + 400/500.  L3, whose loss trips nothing, loses nothing."""
    res = run("critical", FLOW_TOWN, "--elements", "edges", "--format", "json")
    assert res.exit_code == 0, res.output
    rows = {r["id"]: r for r in json.loads(res.stdout)["ranking"]}
    assert rows["L1"]["rank"] == 1
    assert rows["L1"]["demand_lost_power"] == pytest.approx(80.0)
    assert rows["L1"]["demand_lost_water"] == pytest.approx(400.0)
    assert rows["L1"]["score"] == pytest.approx(80 / 120 + 400 / 500)
    assert rows["L3"]["score"] == pytest.approx(0.0) and rows["L3"]["nodes_lost"] == 0
    table = run("critical", FLOW_TOWN, "--elements", "all", "--no-compare")
    assert table.exit_code == 0 and "partial service and overload trips counted" in table.stdout


def test_critical_counts_partial_service_as_one_cascade_per_element_does():
    """Every row (core, 2 threads) equals the reference engine's cascade of that element alone:
    served amount intact - served amount after, per layer; nodes lost."""
    system = read_system(FLOW_TOWN)
    ranked = sweep(system, "all", threads=2)
    ref_ranked = sweep(system, "all", engine="reference")
    intact = served_amounts(simulate(system, [], engine="reference"))
    for row in ranked.itertuples(index=False):
        after = simulate(system, [row.id], engine="reference")
        lost = intact - served_amounts(after)
        assert [getattr(row, f"demand_lost_{name}") for name in ("power", "water")] == pytest.approx(lost, abs=1e-9)
        assert row.nodes_lost == int((after.baseline_working & ~after.working).sum())
    assert list(ranked["id"]) == list(ref_ranked["id"])
    assert np.allclose(ranked["score"], ref_ranked["score"], rtol=1e-9, atol=1e-12)


def test_critical_worst_set_on_flow_layers():
    res = run("critical", FLOW_TOWN, "--elements", "edges", "-k", "2", "--format", "json")
    assert res.exit_code == 0, res.output
    worst = json.loads(res.stdout)["worst_set"]
    assert worst[0]["id"] in ("L1", "L2") and len(worst) == 2 and worst[1]["score"] > worst[0]["score"]


def test_scenario_loss_counts_served_amounts(tmp_path):
    """Each sample's loss equals 1 - served amount / demand of the reference cascade of that
    sample's direct failures."""
    path = tmp_path / "random.toml"
    path.write_text(RANDOM)
    system = read_system(FLOW_TOWN)
    scenario = load_scenario(path)
    result = run_ensemble(system, scenario, 40, threads=2)
    c = result.compiled
    demand = np.bincount(c.node_layer, weights=c.demand)
    partial = 0
    for i in range(40):
        nodes, edges = scenario.sample(c, i, seed=scenario.seed)
        after = simulate(system, [c.node_ids[v] for v in nodes] + [c.edge_ids[e] for e in edges],
                         engine="reference")
        expected = 1 - served_amounts(after) / demand
        assert result.loss[i, :2] == pytest.approx(expected, abs=1e-9)
        partial += bool(((after.served > 0) & (after.served < 1)).any())
    assert partial > 0                      # some samples only shed part of a demand
    res = run("scenario", FLOW_TOWN, path, "--format", "json", "--threads", "2")
    assert res.exit_code == 0, res.output


def test_redundancy_resilience_on_flow_layers_is_the_recover_loss(tmp_path):
    """`--metric resilience` on flow layers: the base loss is `cascade recover`'s resilience loss
    of the same failure set (Q(t) from served amounts), computed by a separate process."""
    sets = tmp_path / "sets.txt"
    sets.write_text("L1\n")
    cand = tmp_path / "cand.csv"
    cand.write_text("id,type,cost,node,supplier\nf,feed,1,pump,north\n")
    proc = subprocess.run([CASCADE, "redundancy", str(FLOW_TOWN), "--candidates", str(cand), "--failure-sets",
                           str(sets), "--metric", "resilience", "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    rec = subprocess.run([CASCADE, "recover", str(FLOW_TOWN), "--fail", "L1", "--format", "json"],
                         capture_output=True, text=True, timeout=300)
    assert rec.returncode == 0, rec.stderr
    loss = json.loads(rec.stdout)["resilience_loss"]
    assert loss > 0 and plan["base_loss"] == pytest.approx(loss, rel=1e-12)


def test_real_process_critical_and_scenario(tmp_path):
    proc = subprocess.run([CASCADE, "critical", str(FLOW_TOWN), "--elements", "edges", "--format", "csv"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split(",")[1] in ("L1", "L2")
    path = tmp_path / "random.toml"
    path.write_text(RANDOM)
    proc = subprocess.run([CASCADE, "scenario", str(FLOW_TOWN), str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "water (m3/h" in proc.stdout, proc.stderr


def test_export_and_map_results_mark_tripped_branches_with_their_flows(tmp_path):
    """A flow system's `simulate --format json` read back (export, map): L2 and L3 tripped, so
    not usable although both their ends work; L4 carries 40 MW."""
    sim = tmp_path / "sim.json"
    assert run("simulate", FLOW_TOWN, "--fail", "L1", "--format", "json", "--output", sim).exit_code == 0
    out = tmp_path / "x.geojson"
    proc = subprocess.run([CASCADE, "export", str(FLOW_TOWN), "--format", "geojson", "--result", str(sim),
                           "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    props = {f["properties"]["id"]: f["properties"] for f in json.loads(out.read_text())["features"]
             if f["properties"]["feature"] == "edge"}
    assert [props[e]["usable"] for e in ("L1", "L2", "L3", "L4", "L5")] == [False, False, False, True, True]
    assert [props[e]["tripped"] for e in ("L1", "L2", "L3", "L4")] == [False, True, True, False]
    assert props["L4"]["flow"] == pytest.approx(40.0) and props["L2"]["flow"] is None
    assert props["P4"]["usable"] and props["P4"]["flow"] is None


def test_critical_on_flow_layers_does_not_depend_on_threads():
    system = read_system(FLOW_TOWN)
    one, two = sweep(system, "all", threads=1), sweep(system, "all", threads=2)
    assert one.equals(two)


def test_a_cancelled_flow_batch_stops_like_a_v1_one(tmp_path):
    """Ctrl-C sets the cancel flag; a flow batch checks it between blocks, as run_batch does."""
    import threading

    from cascade import compile_system
    from cascade.ensemble import run_batch

    path = tmp_path / "random.toml"
    path.write_text('[scenario]\nseed = 1\n[hazard]\ntype = "random"\nfraction = 0.2\n')
    system = read_system(FLOW_TOWN)
    compiled = compile_system(system)
    scenario = load_scenario(path)
    scenario.prepare(system, compiled)
    base = np.ones(compiled.n_nodes, np.int32)
    cancel = threading.Event()
    cancel.set()
    assert run_batch(compiled, scenario, 1, 0, 40, base, np.zeros(len(compiled.layer_names) + 1),
                     cancel=cancel) is None
    done = run_batch(compiled, scenario, 1, 0, 40, base, np.zeros(len(compiled.layer_names) + 1))
    assert done[0] == 0 and done[1].shape == (40, len(compiled.layer_names) + 1)

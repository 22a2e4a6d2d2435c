"""`cascade critical` as a user runs it: click's CliRunner and a real process."""
import io
import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
from click.testing import CliRunner

from cascade import InfrastructureSystem, write_system
from cascade.cli import cli
from cascade.criticality import greedy_worst_set, sweep

CASCADE = Path(sys.executable).parent / "cascade"


def run(*args):
    return CliRunner().invoke(cli, ["critical", *[str(a) for a in args]])


def two_layers():
    power = nx.DiGraph([("plant", "sub1"), ("sub1", "sub2")])
    water = nx.Graph([("pump", "tap1"), ("tap1", "tap2")])
    demand = {"plant": 0, "sub1": 10, "sub2": 5, "pump": 0, "tap1": 7, "tap2": 3}
    for g, src in ((power, "plant"), (water, "pump")):
        for v in g.nodes:
            g.nodes[v]["kind"] = "source" if v == src else ""
            g.nodes[v]["demand"] = demand[v]
    deps = [("pump", "sub2"), ("tap2", "sub1", {"group": "g"}), ("tap2", "sub2", {"group": "g"})]
    return InfrastructureSystem.from_networkx({"power": power, "water": water}, deps, name="twin",
                                              units={"power": "MW", "water": "L/s"})


@pytest.fixture
def system_dir(tmp_path):
    system = two_layers()
    write_system(system, tmp_path / "twin")
    return tmp_path / "twin"


@pytest.fixture
def big_dir(tmp_path):
    """Thirty power feeders in a row, so that the table's default top 20 cuts."""
    g = nx.path_graph([f"n{i:02d}" for i in range(30)])
    g.nodes["n00"]["kind"] = "source"
    for v in g.nodes:
        g.nodes[v]["demand"] = 1.0
    write_system(InfrastructureSystem.from_networkx({"power": g}), tmp_path / "line")
    return tmp_path / "line"


def test_csv_shape_and_order(system_dir):
    res = run(system_dir, "--format", "csv", "--elements", "all")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(io.StringIO(res.stdout))
    assert list(table.columns) == ["rank", "id", "element", "layer", "score", "nodes_lost",
                                   "cross_layer_lost", "lost_power", "lost_water",
                                   "demand_lost_power", "demand_lost_water"]
    assert list(table["rank"]) == list(range(1, 11))  # 6 nodes + 4 edges: all by default
    expected = sweep(two_layers(), "all")
    assert list(table["id"]) == list(expected["id"])
    assert list(table["nodes_lost"]) == list(expected["nodes_lost"])
    # Sorted by score, then nodes lost, descending.
    keys = list(zip(-table["score"], -table["nodes_lost"], table["id"]))
    assert keys == sorted(keys)
    assert table.iloc[0].to_dict() == {"rank": 1, "id": "plant", "element": "node", "layer": "power",
                                       "score": 2.0, "nodes_lost": 6, "cross_layer_lost": 3,
                                       "lost_power": 3, "lost_water": 3, "demand_lost_power": 15.0,
                                       "demand_lost_water": 10.0}


def test_json_is_a_list_of_the_same_records(system_dir):
    res = run(system_dir, "--format", "json", "--top", "2")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["units"] == {"power": "MW", "water": "L/s"}
    assert data["weights"] == {"power": 1.0, "water": 1.0}
    assert "lost fraction" in data["score"]
    ranking = data["ranking"]
    assert isinstance(ranking, list) and len(ranking) == 2
    assert ranking[1] == {"rank": 2, "id": "sub1", "element": "node", "layer": "power",
                          "score": 2.0, "nodes_lost": 5, "cross_layer_lost": 3, "lost_power": 2,
                          "lost_water": 3, "demand_lost_power": 15.0, "demand_lost_water": 10.0}


def test_json_with_k(system_dir):
    res = run(system_dir, "--format", "json", "-k", "2")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert set(data) == {"system", "score", "units", "weights", "ranking", "worst_set"}
    expected = greedy_worst_set(two_layers(), 2)
    assert [r["id"] for r in data["worst_set"]] == list(expected["id"])
    assert [r["score"] for r in data["worst_set"]] == list(expected["score"])
    # plant alone loses every node: N-k stops after one step
    assert len(data["worst_set"]) == 1


def test_table_top_and_blind_spots(system_dir, big_dir):
    res = run(system_dir, "--top", "3", "--k", "2")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "N-1 over 6 nodes" in out
    assert "Worst set of 2" in out
    assert "(stopped after 1 step(s): no remaining element loses anything more)" in out
    # units on the amounts, columns named for what they are, both run times
    assert "Demand per layer: power 15 MW, water 10 L/s." in out
    assert "nodes lost in other lifelines" in out
    assert "power 15 MW; water 10 L/s" in out          # plant's demand lost per layer
    assert "sweep " in out and " s, comparison " in out
    assert "degree" in out and "betweenness" in out
    # sub2 takes all of water through the pump: a blind spot of the power-only view.
    assert "sub2 (power): rank 3 coupled, rank 5 alone" in out
    lines = [line for line in out.splitlines() if line.strip().startswith(("1 ", "2 ", "3 ", "4 "))]
    assert [line.split()[1] for line in lines[:3]] == ["plant", "sub1", "sub2"]
    # Default: 20 rows in the table.
    res = run(big_dir, "--no-compare")
    assert res.exit_code == 0
    assert "(top 20 of 30; --top 0 lists all)" in res.stdout
    assert "blind spots" not in res.stdout
    assert len(pd.read_csv(io.StringIO(run(big_dir, "--format", "csv").stdout))) == 30


def test_reference_engine_and_threads_agree(system_dir):
    core = run(system_dir, "--format", "csv", "--elements", "all", "--threads", "3")
    ref = run(system_dir, "--format", "csv", "--elements", "all", "--engine", "reference")
    assert core.exit_code == ref.exit_code == 0
    assert core.stdout == ref.stdout


def test_layer_option(system_dir):
    res = run(system_dir, "--format", "csv", "--layer", "water", "--elements", "edges")
    table = pd.read_csv(io.StringIO(res.stdout))
    assert list(table["id"]) == ["pump->tap1", "tap1->tap2"]


def test_output_file(system_dir, tmp_path):
    out = tmp_path / "rank.csv"
    res = run(system_dir, "--format", "csv", "--output", out)
    assert res.exit_code == 0
    assert f"wrote {out}" in res.stderr
    assert pd.read_csv(out)["id"].iloc[0] == "plant"


@pytest.mark.parametrize("args, words", [
    (["--layer", "sewage"], "unknown layer 'sewage'"),
    (["--k", "2", "--format", "csv"], "--k has no CSV form"),
])
def test_bad_options(system_dir, tmp_path, args, words):
    out = tmp_path / "never.csv"
    res = run(system_dir, *args, "--output", out)
    assert res.exit_code == 2
    assert words in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_system(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "nodes.csv").write_text("id,layer\na,power\na,power\n")
    (bad / "edges.csv").write_text("source,target\n")
    out = tmp_path / "never.csv"
    res = run(bad, "--output", out)
    assert res.exit_code == 2
    assert "duplicate node id 'a'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()
    res = run(tmp_path / "missing")
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1


def test_threads_must_be_positive(system_dir):
    res = run(system_dir, "--threads", "0")
    assert res.exit_code == 2


def test_real_process(system_dir, tmp_path):
    out = tmp_path / "rank.csv"
    proc = subprocess.run([str(CASCADE), "critical", str(system_dir), "--elements", "all",
                           "--format", "csv", "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert list(table.columns)[:7] == ["rank", "id", "element", "layer", "score", "nodes_lost",
                                       "cross_layer_lost"]
    assert len(table) == 10
    proc = subprocess.run([str(CASCADE), "critical", str(system_dir)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "plant" in proc.stdout
    proc = subprocess.run([str(CASCADE), "critical", str(system_dir), "--layer", "gas", "-o",
                           str(tmp_path / "x.csv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "unknown layer 'gas'" in proc.stderr
    assert not (tmp_path / "x.csv").exists()


def test_no_unit_is_labelled(tmp_path):
    system = two_layers()
    system.units.clear()
    write_system(system, tmp_path / "plain")
    res = run(tmp_path / "plain", "--no-compare")
    assert res.exit_code == 0
    assert "power 15 (no unit), water 10 (no unit)" in res.stdout


def test_comparison_sweep_honours_layer(system_dir, monkeypatch):
    """The decoupled sweep of the blind spots runs on --layer's elements only."""
    import cascade.criticality as crit

    seen = []
    real = crit.core_sweep

    def spy(compiled, el_node, el_edge, *args, **kwargs):
        nodes = el_node[el_node >= 0]
        seen.append((compiled.n_groups, {compiled.layer_names[i] for i in compiled.node_layer[nodes]}))
        return real(compiled, el_node, el_edge, *args, **kwargs)

    monkeypatch.setattr(crit, "core_sweep", spy)
    res = run(system_dir, "--layer", "water")
    assert res.exit_code == 0, res.output
    # the coupled sweep, then the one without dependencies, both on water's nodes alone
    assert [groups > 0 for groups, _ in seen] == [True, False]
    assert all(layers == {"water"} for _, layers in seen)

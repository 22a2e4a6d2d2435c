"""`cascade recover` on systems with flow layers (cascade/recovery.py, FlowWorkspace): Q(t) from
served amounts checked against an independent static run of the reference engine at every step,
partial service in the curve, tripped branches re-closed at the next event, backups, `optimal`
against a brute force over every order, and the command as a user runs it."""
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cascade import InfrastructureSystem, read_system, simulate
from cascade.cli import cli
from cascade.compiled import compile_system
from cascade.recovery import _order_policy, _play, _Problem, recover, recover_many
from cascade.units import layer_weights

ROOT = Path(__file__).resolve().parent.parent
FLOW_TOWN = ROOT / "networks" / "flow_town"
CASCADE = str(Path(sys.executable).parent / "cascade")


def build(nodes, edges, deps=(), rules=None, **settings):
    return InfrastructureSystem.from_tables(
        pd.DataFrame(nodes), pd.DataFrame(edges),
        pd.DataFrame(list(deps), columns=None if deps else ["dependent", "supplier"]), rules=rules, **settings)


def flow_town(seed: int, n_bus=6, n_water=5):
    """A seeded coupled town: a dcflow grid (two generators, ratings some lines can exceed), a
    flow water network (capacities, one pumped source depending on a bus), repair times in
    whole hours."""
    rng = np.random.default_rng(seed)
    nodes, edges, deps = [], [], []
    for i in range(n_bus):
        nodes.append(dict(id=f"b{i}", layer="power", supply=[60.0, 40.0][i] if i < 2 else 0.0,
                          demand=0.0 if i < 2 else float(rng.choice([10, 15, 20])),
                          repair_time=float(rng.integers(1, 4))))
    for i in range(1, n_bus):
        for j in {int(rng.integers(0, i)), (i - 1)}:
            edges.append(dict(id=f"l{j}-{i}", source=f"b{j}", target=f"b{i}",
                              reactance=float(rng.choice([0.1, 0.2])), capacity=float(rng.choice([25, 40, 80])),
                              repair_time=float(rng.integers(1, 3))))
    for i in range(n_water):
        nodes.append(dict(id=f"w{i}", layer="water", supply=[30.0, 15.0][i] if i < 2 else 0.0,
                          demand=0.0 if i < 2 else float(rng.choice([5, 10, 15])),
                          repair_time=float(rng.integers(1, 4))))
    for i in range(1, n_water):
        j = int(rng.integers(0, i))
        edges.append(dict(id=f"p{j}-{i}", source=f"w{j}", target=f"w{i}", capacity=float(rng.choice([8, 20, 40])),
                          repair_time=float(rng.integers(1, 3))))
    deps.append(dict(dependent="w1", supplier=f"b{int(rng.integers(2, n_bus))}", threshold=0.5))
    return build(nodes, edges, deps, rules={"power": "dcflow", "water": "flow"}, units={"power": "MW"})


def damage(system, k, seed):
    rng = np.random.default_rng(seed)
    ids = list(system.nodes["id"]) + list(system.edges["id"])
    return [str(x) for x in rng.choice(ids, size=k, replace=False)]


def reference_q(system, damaged) -> float:
    """Q from an independent static run of the reference engine (networkx max-flow, dense DC
    flow): weighted mean of the layers' served fractions (docs/format.md, "Service")."""
    r = simulate(system, list(damaged), engine="reference")
    service = r.layers()["service"].to_numpy()
    w = layer_weights(system, r.compiled.layer_names)
    return float(w @ service / w.sum())


@pytest.mark.parametrize("seed", range(6))
def test_q_at_every_step_is_the_reference_engines_served_fraction(seed):
    """Between events the damaged set is what no crew has finished: each curve point equals
    the reference engine's weighted served fractions for that set, and Q0 for none."""
    system = flow_town(seed)
    failed = damage(system, 5, seed)
    for r in recover_many(system, failed, ["greedy", "critical", "random"], crews=1, seed=seed):
        assert r.metrics["baseline_service"] == pytest.approx(reference_q(system, []), abs=1e-9)
        finish = dict(zip(r.schedule["id"], r.schedule["finish"]))
        for t, q in zip(r.curve["time"], r.curve["service"]):
            damaged = [e for e in failed if finish[e] > t + 1e-9]
            assert q == pytest.approx(reference_q(system, damaged), abs=1e-9), (r.strategy, t)
        assert r.curve["service"].iloc[-1] == pytest.approx(r.metrics["baseline_service"], abs=1e-9)


def test_partial_service_shows_in_the_curve():
    """networks/flow_town: with the plant lost, the peaker (40 MW) serves a third of 120 MW."""
    r = recover(read_system(FLOW_TOWN), ["plant", "L3"], strategy="greedy")
    first = r.curve.iloc[0]
    assert first["power"] == pytest.approx(40 / 120)
    assert 0 < first["service"] < 1
    assert r.curve["power"].iloc[-1] == pytest.approx(1.0)


def two_lines(capacity=50.0):
    """g (100 MW) feeds load b (80 MW) over two equal lines of `capacity` each."""
    return build([dict(id="g", layer="power", supply=100.0), dict(id="b", layer="power", demand=80.0)],
                 [dict(id="L1", source="g", target="b", reactance=0.1, capacity=capacity, repair_time=5.0),
                  dict(id="L2", source="g", target="b", reactance=0.1, capacity=capacity, repair_time=5.0)],
                 rules={"power": "dcflow"})


def test_a_branch_tripped_on_overload_is_closed_again_at_the_next_event():
    """L1 damaged: L2 carries 80 MW > 50 and trips, b is dark.  Once L1 is repaired the
    operators close L2 again: 40 MW each, b served in full (were L2 left open, L1 would carry
    80 MW and trip too)."""
    system = two_lines()
    after = simulate(system, ["L1"])
    assert list(after.trips["id"]) == ["L2"]
    r = recover(system, ["L1"])
    assert r.curve["service"].tolist() == [0.0, 1.0] and r.curve["time"].tolist() == [0.0, 5.0]
    assert r.metrics["resilience_loss"] == pytest.approx(5.0)


def test_a_backup_holds_a_dependent_of_a_flow_layer():
    """A pump (water flow layer) runs 3 h on its backup when its bus is dark; the bus comes back
    after 5 h: water is lost from 3 h to 5 h."""
    system = build([dict(id="g", layer="power", supply=10.0, repair_time=5.0),
                    dict(id="bus", layer="power", demand=10.0),
                    dict(id="pump", layer="water", supply=20.0), dict(id="tap", layer="water", demand=20.0)],
                   [dict(id="L", source="g", target="bus", reactance=0.1),
                    dict(id="P", source="pump", target="tap", capacity=30.0)],
                   [dict(dependent="pump", supplier="bus", delay=3.0)],
                   rules={"power": "dcflow", "water": "flow"})
    r = recover(system, ["g"])
    assert r.curve["time"].tolist() == [0.0, 3.0, 5.0]
    assert r.curve["water"].tolist() == [1.0, 0.0, 1.0]
    assert r.curve["power"].tolist() == [0.0, 0.0, 1.0]
    assert r.metrics["resilience_loss"] == pytest.approx(0.5 * 5 + 0.5 * 2)


@pytest.mark.parametrize("seed", range(4))
def test_optimal_equals_a_brute_force_over_every_order(seed):
    system = flow_town(seed + 10)
    failed = damage(system, 5, seed)
    p = _Problem(system, compile_system(system), failed, {"pool": 2})
    brute = min(_play(p, _order_policy(p, np.array(order))).loss
                for order in itertools.permutations(range(p.k)))
    results = recover_many(system, failed, ["optimal", "greedy", "critical", "random"], crews={"pool": 2})
    assert results[0].metrics["resilience_loss"] == pytest.approx(brute, abs=1e-9)
    assert all(results[0].metrics["resilience_loss"] <= r.metrics["resilience_loss"] + 1e-9 for r in results)


def test_every_strategy_with_pool_and_per_layer_crews():
    system = flow_town(3)
    failed = damage(system, 6, 3)
    for crews in (1, {"pool": 2}, {"power": 2, "pool": 1}):
        for r in recover_many(system, failed, ["greedy", "critical", "random", "optimal"], crews=crews):
            assert sorted(r.schedule["id"]) == sorted(failed)
            assert np.isfinite(r.metrics["resilience_loss"]) and r.metrics["resilience_loss"] >= -1e-9


# --------------------------------------------------------------------------- the command
def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_table_shows_served_amounts_in_the_layers_units():
    res = run("recover", FLOW_TOWN, "-f", "plant", "-f", "P2", "-s", "greedy", "-s", "critical")
    assert res.exit_code == 0, res.output
    assert "power 40.0 MW of 120.0 MW" in res.output and "water" in res.output
    assert "does not take flow layers" not in res.output


def test_cli_json_and_a_real_process_agree(tmp_path):
    res = run("recover", FLOW_TOWN, "-f", "plant", "-f", "P2", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["curve"][0][1] == pytest.approx(reference_q(read_system(FLOW_TOWN), ["plant", "P2"]))
    out = tmp_path / "r.json"
    proc = subprocess.run([CASCADE, "recover", str(FLOW_TOWN), "-f", "plant", "-f", "P2", "--format", "json",
                           "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text()) == data


def test_cli_bad_input_on_a_flow_system_is_one_line(tmp_path):
    proc = subprocess.run([CASCADE, "recover", str(FLOW_TOWN), "-f", "nowhere", "-o", str(tmp_path / "o.txt")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "nowhere" in proc.stderr
    assert not (tmp_path / "o.txt").exists()


def test_crews_on_roads_in_a_flow_system():
    """Crews drive on a `transport` layer (rule giant) to the elements of flow layers: a repair
    starts on arrival (1 h per road edge at 30 km/h), a damaged road blocks until repaired, and
    every strategy, milp included, gives the same travel-aware replay of its order."""
    nodes = [dict(id="g", layer="power", supply=50.0, x=0.0, y=0.0, repair_time=2.0),
             dict(id="b", layer="power", demand=30.0, x=2000.0, y=0.0, repair_time=2.0),
             dict(id="src", layer="water", supply=20.0, x=0.0, y=10.0, repair_time=2.0),
             dict(id="tap", layer="water", demand=20.0, x=2000.0, y=10.0, repair_time=2.0)]
    nodes += [dict(id=f"r{i}", layer="transport", x=1000.0 * i, y=5.0, repair_time=1.0) for i in range(3)]
    edges = [dict(id="L", source="g", target="b", reactance=0.1, capacity=40.0, repair_time=2.0),
             dict(id="P", source="src", target="tap", capacity=30.0, repair_time=2.0)]
    edges += [dict(id=f"r{i}-r{i + 1}", source=f"r{i}", target=f"r{i + 1}", length=30000.0, repair_time=1.0)
              for i in range(2)]
    system = build(nodes, edges, rules={"power": "dcflow", "water": "flow", "transport": "giant"})
    failed = ["b", "tap", "r1-r2"]
    results = recover_many(system, failed, ["greedy", "critical", "random", "milp"], crews={"pool": 1},
                           depots=["r0"], period=1.0)
    for r in results:
        rows = r.schedule.set_index("id")
        # b and tap are reached at r2, behind the damaged road r1-r2: it is repaired first.
        assert r.schedule["id"].iloc[0] == "r1-r2", r.strategy
        assert (rows["start"] >= rows["depart"] + rows["travel"] - 1e-9).all()
        assert rows.loc["r1-r2", "travel"] == pytest.approx(1.0)
        assert r.curve["service"].iloc[-1] == pytest.approx(r.metrics["baseline_service"])
        assert r.metrics["resilience_loss"] > 0

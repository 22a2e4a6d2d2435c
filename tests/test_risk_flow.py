"""`cascade risk` on a system with flow layers (networks/flow_town): the expected annual loss
counts served amounts, agrees with the mean of `cascade scenario` runs, and the asset
contributions split each sample's loss as worked out here with the reference engine."""
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cascade import read_system, simulate
from cascade.cli import cli
from cascade.hazards import load_scenario
from cascade.risk import annual_risk

ROOT = Path(__file__).resolve().parent.parent
FLOW_TOWN = ROOT / "networks" / "flow_town"
CASCADE = str(Path(sys.executable).parent / "cascade")
SCENARIO = """[scenario]
name = "random flow"
seed = 3
samples = 40
annual_rate = 0.1
[hazard]
type = "random"
elements = "all"
[hazard.fraction]
power = 0.1
water = 0.1
"""


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "random.toml"
    path.write_text(SCENARIO)
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def reference_losses(system, scenario_path, samples):
    """Per sample: (direct failure ids, lost fraction per layer) by the reference engine."""
    from cascade import compile_system

    sc = load_scenario(scenario_path)
    c = compile_system(system)
    sc.prepare(system, c)
    demand = np.bincount(c.node_layer, weights=c.demand)

    def loss(ids):
        r = simulate(system, ids, engine="reference")
        return 1 - np.bincount(c.node_layer, weights=c.demand * r.served) / demand

    out = []
    for i in range(samples):
        nodes, edges = sc.sample(c, i, seed=sc.seed)
        ids = [str(c.node_ids[v]) for v in nodes] + [str(c.edge_ids[e]) for e in edges]
        out.append((ids, loss(ids), loss))
    return out


def test_eal_agrees_with_the_mean_of_scenario_runs(scenario):
    res = run("scenario", FLOW_TOWN, scenario, "--format", "json")
    assert res.exit_code == 0, res.output
    mean = {k: v["mean"] for k, v in json.loads(res.stdout)["loss"].items()}
    res = run("risk", FLOW_TOWN, scenario, "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for layer, demand, unit in (("power", 120, "MW"), ("water", 500, "m3/h")):
        got = data["layers"][layer]
        assert got["eal_fraction"] == pytest.approx(0.1 * mean[layer], abs=1e-12)
        assert got["eal_amount"] == pytest.approx(0.1 * mean[layer] * demand, abs=1e-9)
        assert got["unit"] == unit and got["intact"] == demand
    assert data["eal_score"] == pytest.approx(0.1 * mean["overall"], abs=1e-12)
    assert mean["power"] > 0 and mean["water"] > 0


@pytest.mark.parametrize("how", ["equal", "marginal"])
def test_contributions_by_hand_with_the_reference_engine(scenario, how):
    """Each sample's lost fractions (reference engine) split among its direct failures: equally,
    or in proportion to what sparing each one alone avoids (equal where none avoids any)."""
    system = read_system(FLOW_TOWN)
    result = annual_risk(system, [load_scenario(scenario)], attribution=how, threads=2)
    want: dict = {}
    eal = np.zeros(2)
    for ids, loss, again in reference_losses(system, scenario, 40):
        eal += 0.1 * loss / 40
        k = len(ids)
        if not k:
            continue
        shares = np.tile(loss / k, (k, 1))
        if how == "marginal" and k > 1 and (loss > 0).any():
            avoided = np.array([np.maximum(loss - again(ids[:j] + ids[j + 1:]), 0) for j in range(k)])
            total = avoided.sum(axis=0)
            shares = np.where(total > 0, loss * avoided / np.where(total > 0, total, 1), shares)
        for name, share in zip(ids, shares):
            want[name] = want.get(name, 0) + 0.1 * share / 40
    assert result.eal == pytest.approx(eal, abs=1e-9)
    got = result.assets.set_index("id")
    assert set(got.index) == {name for name, v in want.items() if v.sum() > 0}
    for name, v in want.items():
        if v.sum() > 0:
            assert got.loc[name, "contribution_power"] == pytest.approx(v[0], abs=1e-9)
            assert got.loc[name, "contribution_water"] == pytest.approx(v[1], abs=1e-9)
            assert got.loc[name, "contribution"] == pytest.approx(v.mean(), abs=1e-9)
    assert result.assets["contribution"].sum() == pytest.approx(result.eal_score, abs=1e-12)


def test_thread_counts_give_the_same_marginal_contributions(scenario):
    system = read_system(FLOW_TOWN)
    one = annual_risk(system, [load_scenario(scenario)], attribution="marginal", threads=1)
    two = annual_risk(system, [load_scenario(scenario)], attribution="marginal", threads=2)
    assert one.assets.equals(two.assets) and np.array_equal(one.eal, two.eal)


def test_real_process_table_and_csv(scenario, tmp_path):
    proc = subprocess.run([CASCADE, "risk", str(FLOW_TOWN), str(scenario), "--top", "3"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Annual risk on flow-town" in proc.stdout
    assert "MW/yr" in proc.stdout and "120 MW" in proc.stdout
    # a rate unit per year is bracketed, never m3/h/yr; the amount is the fraction x the intact
    assert "m3/h/yr" not in proc.stdout and "(m3/h)/yr" in proc.stdout
    row = next(line.split() for line in proc.stdout.splitlines() if line.startswith("water "))
    fraction, amount, intact = float(row[1].rstrip("%/yr")), float(row[2]), float(row[4])
    assert row[3] == "(m3/h)/yr" and amount == pytest.approx(fraction / 100 * intact, rel=1e-3)
    out = tmp_path / "assets.csv"
    proc = subprocess.run([CASCADE, "risk", str(FLOW_TOWN), str(scenario), "--format", "csv", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows and set(rows[0]) >= {"id", "contribution", "contribution_power", "contribution_water"}



def test_a_local_dask_cluster_gives_the_threads_numbers(scenario):
    """The ensemble runs on the Dask workers, the asset shares locally: the same JSON."""
    pytest.importorskip("distributed")
    args = ["risk", str(FLOW_TOWN), str(scenario), "--format", "json", "--top", "0", "-n", "60"]
    dask = subprocess.run([CASCADE, *args, "--workers", "1"], capture_output=True, text=True, timeout=300)
    threads = subprocess.run([CASCADE, *args, "--threads", "2"], capture_output=True, text=True, timeout=300)
    assert dask.returncode == 0 and threads.returncode == 0, dask.stderr + threads.stderr
    a, b = json.loads(dask.stdout), json.loads(threads.stdout)
    for key in ("layers", "eal_score", "exceedance", "assets"):
        assert a[key] == b[key]
    assert a["assets"]


def test_per_year_brackets_ratio_units():
    from cascade.units import per_year

    assert per_year("m3/h") == "(m3/h)/yr" and per_year("L/s") == "(L/s)/yr"
    assert per_year("MW") == "MW/yr" and per_year("people") == "people/yr"
    assert per_year("") == "(no unit)/yr" and per_year(None) == "(no unit)/yr"

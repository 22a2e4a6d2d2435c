"""``cascade risk``: expected annual loss, loss exceedance and contributions, against hand
computations on a small town, through the CLI (CliRunner and subprocesses), and on Dask."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cascade import read_system
from cascade.cli import cli
from cascade.hazards import load_scenario
from cascade.risk import annual_risk

from conftest import write_dir
from test_ensemble import dask_cluster

ROOT = Path(__file__).resolve().parent.parent
CASCADE = str(Path(sys.executable).parent / "cascade")


@pytest.fixture
def hamlet(tmp_path):
    """plant -> sub1 (demand 100), sub2 (50); the water source `pump` depends on sub1 and feeds
    tap1 (80) and tap2 (20).  Two deterministic events (region hazards, probability 1):

    * `small` (rate 0.1 / yr) fails sub2: power loses 50/150 = 1/3, water 0;
    * `big` (return period 100 yr) fails sub1: power loses 100/150 = 2/3 and the pump, so
      water loses 100/100 = 1.
    """
    system = write_dir(
        tmp_path / "hamlet",
        """id,layer,kind,demand,x,y
           plant,power,source,0,0,0
           sub1,power,,100,100,0
           sub2,power,,50,200,0
           pump,water,source,0,1000,0
           tap1,water,,80,1100,0
           tap2,water,,20,1200,0""",
        """source,target,directed
           plant,sub1,true
           plant,sub2,true
           pump,tap1,false
           tap1,tap2,false""",
        """dependent,supplier,group,delay
           pump,sub1,,0""",
        """[system]
           name = "hamlet"
        """)
    files = []
    for name, centre, rate in (("small", 200, "annual_rate = 0.1"), ("big", 100, "return_period = 100")):
        f = tmp_path / f"{name}.toml"
        f.write_text(f'[scenario]\nname = "{name}"\nseed = 3\nsamples = 5\n{rate}\n'
                     f'[hazard]\ntype = "region"\ncenter = [{centre}, 0]\nradius = 10\n')
        files.append(f)
    return system, files


def test_expected_annual_loss_curve_and_contributions_by_hand(hamlet):
    system_dir, files = hamlet
    system = read_system(system_dir)
    r = annual_risk(system, [load_scenario(f) for f in files], threads=1)
    assert r.layers == ["power", "water"]
    # EAL: power 0.1·1/3 + 0.01·2/3 = 0.04, water 0.01·1 = 0.01; amounts 0.04·150 and 0.01·100.
    assert r.eal == pytest.approx([0.04, 0.01])
    assert r.totals.tolist() == [150.0, 100.0]
    # Scores (equal weights): small (1/3 + 0)/2 = 1/6, big (2/3 + 1)/2 = 5/6;
    # EAL score 0.1/6 + 0.01·5/6 = 0.025.
    assert r.eal_score == pytest.approx(0.025)
    assert r.curve["loss"].tolist() == pytest.approx([5 / 6, 1 / 6])
    assert r.curve["rate"].tolist() == pytest.approx([0.01, 0.11])
    assert r.curve["return_period"].tolist() == pytest.approx([100.0, 1 / 0.11])
    assert r.curve["probability"].tolist() == pytest.approx([1 - np.exp(-0.01), 1 - np.exp(-0.11)])
    # Contributions: sub2 alone failed in `small` (0.1/6), sub1 alone in `big` (0.01·5/6).
    a = r.assets.set_index("id")
    assert a.loc["sub2", "contribution"] == pytest.approx(0.1 / 6)
    assert a.loc["sub1", "contribution"] == pytest.approx(0.05 / 6)
    assert r.assets["contribution"].sum() == pytest.approx(r.eal_score)
    assert a.loc["sub1", "contribution_water"] == pytest.approx(0.01)
    # Out of service: sub1 0.01/yr; tap1 with the pump 0.01/yr.
    assert a.loc["sub1", "outage_rate"] == pytest.approx(0.01)
    assert list(r.assets["id"]) == ["sub2", "sub1"]


def test_weights_change_the_score_not_the_layers(hamlet):
    system_dir, files = hamlet
    system = read_system(system_dir)
    r = annual_risk(system, [load_scenario(f) for f in files], threads=1, weights={"power": 3, "water": 1})
    assert r.weights.tolist() == [0.75, 0.25]
    assert r.eal == pytest.approx([0.04, 0.01])
    # small: 0.75/3 = 0.25; big: 0.75·2/3 + 0.25 = 0.75; EAL 0.1·0.25 + 0.01·0.75.
    assert r.eal_score == pytest.approx(0.0325)
    assert r.curve["loss"].tolist() == pytest.approx([0.75, 0.25])


def test_cli_table_json_csv_and_plot(hamlet, tmp_path):
    system_dir, files = hamlet
    args = ["risk", str(system_dir), *map(str, files), "--threads", "1"]
    r = CliRunner().invoke(cli, args + ["--unit", "power=kW"])
    assert r.exit_code == 0, r.output
    assert "Annual risk on hamlet: 2 scenario(s), 0.11 /yr in all" in r.output
    assert "4.0000%/yr" in r.output and "6 kW/yr" in r.output          # power EAL
    assert "EAL 2.5000 %/yr" in r.output
    assert "100 yr" in r.output
    r = CliRunner().invoke(cli, args + ["--format", "json"])
    data = json.loads(r.output)
    assert data["layers"]["water"]["eal_amount"] == pytest.approx(1.0)
    assert data["exceedance"][0]["rate"] == pytest.approx(0.01)
    assert [a["id"] for a in data["assets"]] == ["sub2", "sub1"]
    assert data["scenarios"][1]["annual_rate"] == pytest.approx(0.01)
    plot = tmp_path / "lec.png"
    out = tmp_path / "assets.csv"
    r = CliRunner().invoke(cli, args + ["--format", "csv", "--plot", str(plot), "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = pd.read_csv(out)
    assert list(frame.columns[:6]) == ["id", "element", "layer", "contribution", "share", "outage_rate"]
    assert frame["contribution"].sum() == pytest.approx(0.025)


@pytest.mark.parametrize("extra, message", [
    (["--weight", "sewer=1"], "--weight: no layer 'sewer'"),
    (["--weight", "power"], "--weight takes LAYER=VALUE"),
    (["--weight", "power=0", "--weight", "water=0"], "at least one layer needs a positive weight"),
    (["--plot", "x.gif"], "the plot is written as .png, .svg or .pdf"),
    (["--workers", "2", "--scheduler", "tcp://x:1"], "give either --workers or --scheduler"),
])
def test_cli_bad_options_are_one_line_exit_2(hamlet, extra, message):
    system_dir, files = hamlet
    r = CliRunner().invoke(cli, ["risk", str(system_dir), *map(str, files), *extra])
    assert r.exit_code == 2 and message in r.output


def test_subprocess_missing_rate_and_a_file_given_twice(hamlet, tmp_path):
    system_dir, files = hamlet
    bare = tmp_path / "bare.toml"
    bare.write_text('[scenario]\nseed = 1\n[hazard]\ntype = "region"\ncenter = [0, 0]\nradius = 1\n')
    out = tmp_path / "out.json"
    for extra, message in (([bare], f"{bare}: cascade risk needs the scenario's annual rate"),
                           ([files[0], files[0]], "scenario file given twice")):
        p = subprocess.run([CASCADE, "risk", str(system_dir), *map(str, extra), "-o", str(out)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and p.stdout == ""
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0]
        assert not out.exists()
    both = tmp_path / "both.toml"
    both.write_text(files[0].read_text().replace("annual_rate = 0.1", "annual_rate = 0.1\nreturn_period = 5"))
    p = subprocess.run([CASCADE, "risk", str(system_dir), str(both)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "give one of 'scenario.annual_rate' and 'scenario.return_period'" in p.stderr


def test_subprocess_rainfall_on_the_demo_town_locally_and_on_dask():
    """The demo's rain scenarios through `risk`: threads and a Dask scheduler agree."""
    demo = ROOT / "networks" / "demo_town"
    files = [ROOT / "scenarios" / f"rainfall_{t}yr.toml" for t in (100, 500)]
    args = [CASCADE, "risk", str(demo), *map(str, files), "-n", "24", "--format", "json"]
    local = subprocess.run(args + ["--threads", "2"], capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    with dask_cluster(2) as (address, _):
        remote = subprocess.run(args + ["--scheduler", address], capture_output=True, text=True, timeout=300)
    assert remote.returncode == 0, remote.stderr
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert a["layers"] == b["layers"] and a["exceedance"] == b["exceedance"]
    # Contributions are sums of per-sample shares, added in the order batches come back: equal
    # up to the rounding of that order.
    assert [x["id"] for x in a["assets"]] == [x["id"] for x in b["assets"]]
    for x, y in zip(a["assets"], b["assets"]):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], float):
                assert x[key] == pytest.approx(y[key], rel=1e-12, abs=1e-18), key
            else:
                assert x[key] == y[key], key
    assert a["eal_score"] > 0
    assert 0 < a["scenarios"][0]["mean_score"] < a["scenarios"][1]["mean_score"]
    assert a["total_annual_rate"] == pytest.approx(0.01)          # 0.008 + 0.002: the bins


def test_marginal_attribution_by_hand(hamlet, tmp_path):
    """One event fails sub1 and sub2 together (power loss 1, water loss 1).  Sparing sub1
    leaves power 1/3, water 0: it avoids (2/3, 1); sparing sub2 leaves (2/3, 1): it avoids
    (1/3, 0).  Marginal shares: power 2/3 : 1/3, water all to sub1; with equal weights the
    scores are sub1 (2/3 + 1)/2 = 5/6 and sub2 (1/3)/2 = 1/6, times the rate 0.1 (equal
    attribution would give 1/2 each)."""
    system_dir, _ = hamlet
    both = tmp_path / "both.toml"
    both.write_text('[scenario]\nseed = 1\nannual_rate = 0.1\n'
                    '[hazard]\ntype = "region"\ncenter = [150, 0]\nradius = 60\n')
    system = read_system(system_dir)
    marginal = annual_risk(system, [load_scenario(both)], samples=3, threads=1, attribution="marginal")
    a = marginal.assets.set_index("id")
    assert a.loc["sub1", "contribution"] == pytest.approx(0.1 * 5 / 6)
    assert a.loc["sub2", "contribution"] == pytest.approx(0.1 * 1 / 6)
    assert a.loc["sub1", "contribution_water"] == pytest.approx(0.1)
    assert marginal.assets["contribution"].sum() == pytest.approx(marginal.eal_score)
    equal = annual_risk(system, [load_scenario(both)], samples=3, threads=1).assets.set_index("id")
    assert equal.loc["sub1", "contribution"] == pytest.approx(equal.loc["sub2", "contribution"])


def test_marginal_attribution_reruns_the_rainfall_fixpoint(tmp_path):
    """The two-catchment case of test_rainfall (S2 floods, PB stops, S1 floods, PA stops, X and
    the cable X-T flood; power loses T = 10 of 15, drainage 2 of 2).  Sparing S2: nothing
    floods, it avoids (2/3, 1).  Sparing S1: PA keeps A at 0.20 m, X stays dry, only PB is
    down: it avoids (2/3, 1/2).  Sparing X or the cable avoids nothing (the other still cuts
    T).  Shares: power 1/3 each to S1 and S2; drainage S2 2/3, S1 1/3."""
    from test_rainfall import basin as basin_fixture

    system_dir, scen = basin_fixture.__wrapped__(tmp_path)
    r = annual_risk(read_system(system_dir), [load_scenario(scen)], samples=2, threads=1,
                    attribution="marginal")
    a = r.assets.set_index("id")
    assert a.loc["S1", "contribution_power"] == pytest.approx(0.05 / 3)
    assert a.loc["S2", "contribution_power"] == pytest.approx(0.05 / 3)
    assert a.loc["S2", "contribution_drainage"] == pytest.approx(0.05 * 2 / 3)
    assert a.loc["S1", "contribution_drainage"] == pytest.approx(0.05 / 3)
    assert set(r.assets["id"]) == {"S1", "S2"}


def test_system_toml_units_and_weights_are_the_defaults(hamlet):
    """system.toml's `unit` and `weight` apply without options; --weight/--unit override them
    (the same numbers as test_weights_change_the_score_not_the_layers, weights 3:1 from the file)."""
    system_dir, files = hamlet
    (system_dir / "system.toml").write_text('[system]\nname = "hamlet"\n[layers.power]\nunit = "MW"\n'
                                            'weight = 3\n[layers.water]\nunit = "L/s"\n')
    system = read_system(system_dir)
    scenarios = [load_scenario(f) for f in files]
    r = annual_risk(system, scenarios, threads=1)
    assert r.weights.tolist() == [0.75, 0.25] and r.units == ["MW", "L/s"]
    assert r.eal_score == pytest.approx(0.0325)
    r = annual_risk(system, scenarios, threads=1, weights={"power": 1}, units={"water": "m3/h"})
    assert r.weights.tolist() == [0.5, 0.5] and r.units == ["MW", "m3/h"]

"""`cascade redundancy` as a user runs it (CliRunner and a real process)."""
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade.cli import cli
from cascade.io import write_system

from conftest import DEMO, ROOT
from test_redundancy import make_town

CASCADE = Path(sys.executable).parent / "cascade"
COLUMNS = "rank,id,type,cost,benefit,benefit_low,benefit_high,benefit_per_cost"
CANDIDATES = """id,type,cost,node,group,hours,supplier,source,target,directed,element,factor,description
feed-PB,feed,100,PB,,,S3,,,,,,second feed of the small pump
feed-PA,feed,100,PA,,,S3,,,,,,second feed of the big pump
backup-PA,backup,50,PA,power,24,,,,,,,diesel set at PA
harden-S3,harden,5,,,,,,,,S3,,"spare substation, never flooded"
link-S1-S2,link,10,,,,,S1,S2,false,,,tie line
"""
SETS = "# one sample per line\nS1\nS2\n\nS1 S2\nS1\nW->PB\n"


@pytest.fixture
def case(tmp_path):
    system = tmp_path / "town"
    write_system(make_town(), system)
    cands = tmp_path / "cands.csv"
    cands.write_text(CANDIDATES)
    sets = tmp_path / "sets.txt"
    sets.write_text(SETS)
    return system, cands, sets


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_csv_ranking_has_the_documented_columns(case, tmp_path):
    system, cands, sets = case
    out = tmp_path / "rank.csv"
    res = run("redundancy", system, "--candidates", cands, "--failure-sets", sets, "--format", "csv",
              "--output", out)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert out.read_text().splitlines()[0] == COLUMNS
    assert [r["id"] for r in rows][0] == "feed-PA"
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5]
    by_id = {r["id"]: r for r in rows}
    # 5 samples (blank and comment lines are skipped): S1 fails in 3 of them.
    assert float(by_id["feed-PA"]["benefit"]) == pytest.approx(3 * 1000 / 1010 / 5)
    assert float(by_id["harden-S3"]["benefit"]) == 0.0
    assert float(by_id["backup-PA"]["benefit_high"]) == 0.0


def test_json_has_ranking_and_plan(case):
    system, cands, sets = case
    res = run("redundancy", system, "--candidates", cands, "--failure-sets", sets, "--format", "json",
              "--budget", "150")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {"system", "metric", "samples", "base_loss", "ranking", "plan", "source", "units"} <= set(data)
    assert data["units"]["cost"] is None and "fraction of service" in data["units"]["benefit"]
    assert data["metric"] == "served" and data["samples"] == 5
    assert data["ranking"][0]["id"] == "feed-PA"
    assert data["ranking"][0]["measure"] == {"id": "feed-PA", "type": "feed", "cost": 100.0,
                                             "node": "PA", "supplier": "S3",
                                             "description": "second feed of the big pump"}
    plan = data["plan"]
    assert [s["id"] for s in plan["steps"]] == ["feed-PA"]
    assert plan["cost"] == 100.0 and plan["budget"] == 150.0
    assert plan["exhaustive"]["ids"] == ["feed-PA"] and plan["exhaustive"]["gap"] == 0.0


def test_table_explains_each_measure_and_shows_the_plan(case):
    system, cands, sets = case
    res = run("redundancy", system, "--candidates", cands, "--failure-sets", sets, "--budget", "1000")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "rank  id" in out and "Why:" in out
    # the better plan first (here greedy and exhaustive agree), costs labelled
    assert "Best plan under budget 1000 (no currency): feed-PA, feed-PB" in out
    assert out.index("Best plan under budget") < out.index("Greedy plan (by benefit per cost")
    assert "cost (no currency)" in out and "Student t 95% interval" in out
    assert "1. feed-PA (second feed S3 -> PA): PA keeps working on S3" in out
    assert "backup-PA" in out and "static cascade treats backups as exhausted" in out
    assert "the greedy plan is optimal" in out
    why_lines = [line for line in out.splitlines() if line.startswith("  ") and ". " in line[:6]]
    assert len(why_lines) == 5


def test_suggest_without_a_candidate_list(case):
    system, _, sets = case
    res = run("redundancy", system, "--suggest", "1", "--failure-sets", sets, "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {r["type"] for r in data["ranking"]} == {"backup", "feed"}
    assert {r["measure"]["node"] for r in data["ranking"]} == {"PA"}
    assert data["suggested_candidates_csv"].startswith("id,type,cost,node,")


def test_scenario_file(case, tmp_path):
    system, cands, _ = case
    scen = tmp_path / "storm.toml"
    scen.write_text('[scenario]\nname = "storm"\nseed = 5\nsamples = 40\n\n[hazard]\ntype = "random"\n'
                    '[hazard.fraction]\npower = 0.3\n')
    res = run("redundancy", system, "--candidates", cands, "--scenario", scen, "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["samples"] == 40
    assert data["ranking"][0]["id"] == "feed-PA"
    seeded = json.loads(run("redundancy", system, "--candidates", cands, "--scenario", scen,
                            "--format", "json", "--seed", "6").stdout)
    assert seeded["base_loss"] != data["base_loss"]


@pytest.mark.parametrize("args,words", [
    (["--failure-sets", "SETS"], "give --candidates FILE, --suggest N, or both"),
    (["--candidates", "CANDS"], "give exactly one of --scenario FILE and --failure-sets FILE"),
    (["--candidates", "CANDS", "--failure-sets", "SETS", "--crews", "power=0"], "--crews"),
    (["--candidates", "CANDS", "--failure-sets", "NOPE"], "no such file"),
    (["--candidates", "BAD", "--failure-sets", "SETS"], "bad.csv, line 3: measure 'y': link joins layer"),
    (["--candidates", "CANDS", "--failure-sets", "BADSETS"], "unknown node or edge id 'S9'"),
])
def test_bad_input_exits_2_with_one_line_and_no_output(case, tmp_path, args, words):
    system, cands, sets = case
    bad = tmp_path / "bad.csv"
    bad.write_text("id,type,cost,source,target\nx,link,1,S1,S2\ny,link,1,S1,CA\n")
    badsets = tmp_path / "badsets.txt"
    badsets.write_text("S1\nS9\n")
    names = {"CANDS": cands, "SETS": sets, "BAD": bad, "BADSETS": badsets, "NOPE": tmp_path / "nope.txt"}
    out = tmp_path / "out.csv"
    res = run("redundancy", system, *[names.get(a, a) for a in args], "--output", out)
    assert res.exit_code == 2
    assert words in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_real_process(case, tmp_path):
    system, cands, sets = case
    proc = subprocess.run([str(CASCADE), "redundancy", str(system), "--candidates", str(cands),
                           "--failure-sets", str(sets), "--format", "csv"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == COLUMNS and lines[1].startswith("1,feed-PA,feed,100")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,type,cost,element\nx,harden,-3,S1\n")
    out = tmp_path / "out.json"
    proc = subprocess.run([str(CASCADE), "redundancy", str(system), "--candidates", str(bad),
                           "--failure-sets", str(sets), "--output", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {bad}, line 2: 'cost' is negative: '-3'"
    assert not out.exists()


FLOOD = ROOT / "scenarios" / "flood_heavy_rain.toml"
DEMO_CANDIDATES = ROOT / "networks" / "demo_town_candidates.csv"


def test_demo_town_flood_ranking_and_plan(tmp_path):
    """The shipped example: a real process on the demo town under its flood scenario."""
    out = tmp_path / "plan.json"
    proc = subprocess.run([str(CASCADE), "redundancy", str(DEMO), "--candidates", str(DEMO_CANDIDATES),
                           "--scenario", str(FLOOD), "--samples", "60", "--budget", "1500",
                           "--exhaustive-limit", "0", "--format", "json", "--output", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    ranking = {r["id"]: r for r in data["ranking"]}
    with open(DEMO_CANDIDATES) as fh:
        ids = [line.split(",")[0] for line in fh if line.strip() and not line.startswith(("#", "id,"))]
    assert sorted(ranking) == sorted(ids)
    assert [r["rank"] for r in data["ranking"]] == list(range(1, len(ids) + 1))
    for r in data["ranking"]:
        assert r["benefit_low"] <= r["benefit"] <= r["benefit_high"]
    # A backup does nothing in the static cascade; the plan stays in budget and re-evaluates.
    assert ranking["backup-W-PS-02"]["benefit"] == 0.0
    plan = data["plan"]
    assert 0 < plan["cost"] <= 1500
    assert plan["benefit"] == pytest.approx(sum(s["marginal_benefit"] for s in plan["steps"]))
    assert plan["exhaustive"] is None


def test_demo_town_table_and_suggestions():
    res = run("redundancy", DEMO, "--candidates", DEMO_CANDIDATES, "--scenario", FLOOD,
              "--samples", "40", "--suggest", "3", "--budget", "800", "--exhaustive-limit", "0")
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert "40 hazard sample(s)" in out and "Best plan under budget 800 (no currency)" in out
    assert "backup at" in out and "second feed" in out


def test_no_candidates_at_all(case, tmp_path):
    system, _, sets = case
    empty = tmp_path / "empty.csv"
    empty.write_text("id,type,cost\n# nothing yet\n")
    res = run("redundancy", system, "--candidates", empty, "--failure-sets", sets)
    assert res.exit_code == 2
    assert res.stderr.strip() == f"error: no candidate measures to evaluate ({empty} has none)"

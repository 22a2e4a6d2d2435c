"""`cascade recover` with --strategy milp, --crews pool=N and --depots, as a user runs it
(CliRunner and a real process), bad input included."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade.cli import cli

from conftest import write_dir

CASCADE = Path(sys.executable).parent / "cascade"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def roads(tmp_path):
    """A plant and two substations; a road r0-r1-r2-r3 of 1 h legs at 30 km/h; the far
    substation sits by r3, the near one by r0."""
    system = write_dir(
        tmp_path / "roads",
        """id,layer,kind,demand,x,y,repair_time
           plant,power,source,0,0,0,4
           near,power,,1,0,10,2
           far,power,,5,3000,0,2
           r0,transport,,0,0,5,1
           r1,transport,,0,1000,5,1
           r2,transport,,0,2000,5,1
           r3,transport,,0,3000,5,1""",
        """id,source,target,directed,length,repair_time
           plant-near,plant,near,false,10,1
           plant-far,plant,far,false,3000,1
           r0-r1,r0,r1,false,30000,3
           r1-r2,r1,r2,false,30000,3
           r2-r3,r2,r3,false,30000,3""",
        "dependent,supplier\n")
    (tmp_path / "depots.csv").write_text("node,count\nr0,2\n")
    return system, tmp_path / "depots.csv"


def test_milp_json_has_bound_gap_and_travel_legs(roads, tmp_path):
    system, depots = roads
    out = tmp_path / "r.json"
    res = run("recover", system, "-f", "far", "-f", "near", "-f", "r1-r2", "--crews", "pool=1",
              "--depots", depots, "-s", "milp", "--period", "1", "--format", "json", "-o", out)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["strategy"] == "milp" and data["crews"] == {"power": 0, "transport": 0, "pool": 1}
    info = data["milp"]
    assert info["optimal"] is True and info["gap"] == 0.0
    assert info["bound"] == pytest.approx(info["objective"])
    legs = {row["id"]: row for row in data["schedule"]}
    assert set(legs) == {"far", "near", "r1-r2"}
    assert legs["r1-r2"]["finish"] <= legs["far"]["depart"] + 1e-9      # the road first
    for row in data["schedule"]:
        assert row["start"] == pytest.approx(row["depart"] + row["travel"])
        assert row["crew"] == "pool-1" and row["from"]


def test_table_shows_travel_and_the_proof(roads):
    system, depots = roads
    res = run("recover", system, "-f", "far", "--crews", "pool=2", "--depots", depots,
              "-s", "greedy", "-s", "milp", "--period", "1")
    assert res.exit_code == 0, res.output
    assert "travel (h)" in res.stdout and "depart (h)" in res.stdout
    assert "milp: Optimal" in res.stdout and "the program is proven optimal" in res.stdout
    assert "pool 2" in res.stdout


@pytest.mark.parametrize("args, message", [
    (["--crews", "pool=x"], "--crews: 'x' is not a whole number for 'pool'"),
    (["--crews", "pool=0"], "--crews: need at least one crew for 'pool'"),
    (["--depots", "DEPOTS:node\nnowhere\n"], "line 2: unknown node 'nowhere'"),
    (["--depots", "DEPOTS:node\nplant\n"], "depot 'plant' is in layer 'power', not in 'transport'"),
    (["--depots", "DEPOTS:node,count\nr0,two\n"], "count 'two' is not a whole number"),
    (["--depots", "DEPOTS:place\nr0\n"], "missing column 'node'"),
    (["--depots", "missing.csv"], "no such depots file"),
    (["-s", "milp", "--gap", "2"], "--gap must be a fraction"),
    (["-s", "milp", "--period", "0"], "--period must be a positive number"),
])
def test_bad_input_exits_2_with_one_line(roads, tmp_path, args, message):
    system, _ = roads
    args = list(args)
    for i, a in enumerate(args):
        if a.startswith("DEPOTS:"):
            path = tmp_path / "bad.csv"
            path.write_text(a[len("DEPOTS:"):])
            args[i] = path
        elif a == "missing.csv":
            args[i] = tmp_path / "missing.csv"
    out = tmp_path / "out.json"
    res = run("recover", system, "-f", "far", *args, "--output", out)
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
    assert res.stdout == ""
    assert not out.exists()


def test_real_process_with_gantt(roads, tmp_path):
    system, depots = roads
    png = tmp_path / "g.png"
    proc = subprocess.run([str(CASCADE), "recover", str(system), "-f", "far", "-f", "r2-r3",
                           "--crews", "power=1,pool=1", "--depots", str(depots), "-s", "milp",
                           "-s", "greedy", "--time-limit", "20", "--format", "json", "--plot", str(png)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)          # nothing else on stdout (HiGHS's banner included)
    assert [d["strategy"] for d in data] == ["milp", "greedy"]
    assert "milp" in data[0] and "milp" not in data[1]
    assert png.exists() and png.stat().st_size > 10_000
